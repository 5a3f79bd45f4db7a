/* console-demo: create a container through libcrun's C API with a console socket, receive the
 * pty master the runtime sends to it (as conmon does), start the container and print what
 * arrives on the pty.
 *
 *   usage: console-demo BUNDLE [ID]
 *
 * BUNDLE/config.json must set "process": {"terminal": true, ...}.  Run as root.  The container
 * state and the console socket live in a temporary directory that is removed at the end.
 *
 * Build against an installed libcrun (see Makefile):
 *   make install PREFIX=/tmp/p && make -C examples PKG_CONFIG_PATH=/tmp/p/lib/pkgconfig
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libcrun.h>

static int
fail (const char *what, libcrun_error_t *err)
{
  fprintf (stderr, "console-demo: %s: ", what);
  /* Prints "msg: strerror(errno)" and frees the error. */
  libcrun_error_write_warning_and_release (stderr, &err);
  return 1;
}

int
main (int argc, char **argv)
{
  libcrun_error_t err = NULL;
  libcrun_context_t ctx;
  libcrun_container_t *container = NULL;
  char tmp[] = "/tmp/console-demo.XXXXXX";
  char state[PATH_MAX], sock[PATH_MAX], config[PATH_MAX];
  const char *id;
  int listen_fd = -1, master = -1, ret = 1;
  size_t total = 0;

  if (argc < 2)
    {
      fprintf (stderr, "usage: %s BUNDLE [ID]\n", argv[0]);
      return 2;
    }
  id = argc > 2 ? argv[2] : "console-demo";
  if (mkdtemp (tmp) == NULL)
    {
      perror ("mkdtemp");
      return 1;
    }
  snprintf (state, sizeof state, "%s/state", tmp);
  snprintf (sock, sizeof sock, "%s/console.sock", tmp);
  snprintf (config, sizeof config, "%s/config.json", argv[1]);
  if (mkdir (state, 0700) < 0)
    {
      perror ("mkdir state");
      goto out;
    }

  /* 1. The console socket: a listening AF_UNIX stream socket. */
  listen_fd = libcrun_open_unix_domain_socket (sock, 0, &err);
  if (listen_fd < 0)
    {
      ret = fail ("open console socket", err);
      goto out;
    }

  /* 2. Load the config and create the container (detached, with the console socket). */
  container = libcrun_container_load_from_file (config, &err);
  if (container == NULL)
    {
      ret = fail ("load config", err);
      goto out;
    }
  memset (&ctx, 0, sizeof ctx);
  ctx.id = id;
  ctx.bundle = argv[1];
  ctx.state_root = state;
  ctx.console_socket = sock;
  ctx.fifo_exec_wait_fd = -1;
  ctx.detach = true;
  if (libcrun_container_create (&ctx, container, LIBCRUN_CREATE_OPTIONS_PREFORK, &err) < 0)
    {
      ret = fail ("create", err);
      goto out;
    }

  /* 3. The runtime sends the pty master over the console socket. */
  master = libcrun_receive_console_fd (listen_fd, 10000, &err);
  if (master < 0)
    {
      ret = fail ("receive the console fd", err);
      goto delete;
    }
  printf ("console-demo: received pty master fd %d\n", master);

  /* 4. Start, and copy what the container writes to its terminal until it closes (EIO). */
  if (libcrun_container_start (&ctx, id, &err) < 0)
    {
      ret = fail ("start", err);
      goto delete;
    }
  for (;;)
    {
      char buf[4096];
      ssize_t n = read (master, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break; /* EIO: every slave fd is closed, the container has exited. */
      fwrite (buf, 1, (size_t) n, stdout);
      total += (size_t) n;
    }
  fflush (stdout);
  printf ("console-demo: %zu bytes from the pty\n", total);
  ret = 0;

delete:
  if (libcrun_container_delete (&ctx, NULL, id, true, &err) < 0)
    ret = fail ("delete", err);
out:
  if (container)
    libcrun_container_free (container);
  if (master >= 0)
    close (master);
  if (listen_fd >= 0)
    close (listen_fd);
  unlink (sock);
  rmdir (state);
  rmdir (tmp);
  return ret;
}
