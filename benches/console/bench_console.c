/* SPDX-License-Identifier: Apache-2.0
 * Benchmark (not a test): fd-passing round trips per second through libcrun's API versus a bare
 * sendmsg/recvmsg loop doing the same work (1 byte ' ' + one SCM_RIGHTS fd, MSG_CMSG_CLOEXEC,
 * close the received fd).  Two shapes:
 *   pair:    over one SOCK_SEQPACKET socket pair (libcrun_send_fd_to_socket +
 *            libcrun_receive_fd_from_socket);
 *   handoff: the console-socket protocol, a new connection per fd (libcrun_send_console_socket +
 *            libcrun_receive_console_fd vs socket/connect/sendmsg/close + accept4/recvmsg).
 * Usage: bench_console [iterations]   (run by scripts/bench-console.sh) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libcrun.h>

static double
now (void)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void
die (const char *what, libcrun_error_t err)
{
  fprintf (stderr, "%s: %s (%d)\n", what, err ? err->msg : strerror (errno), err ? err->status : errno);
  exit (1);
}

static int
bare_send (int sock, int fd)
{
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = { .iov_base = " ", .iov_len = 1 };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf };
  struct cmsghdr *c = CMSG_FIRSTHDR (&msg);
  ssize_t r;
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (c), &fd, sizeof fd);
  do
    r = sendmsg (sock, &msg, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  return r == 1 ? 0 : -1;
}

static int
bare_recv (int sock)
{
  char data[1];
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = { .iov_base = data, .iov_len = 1 };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf };
  struct cmsghdr *c;
  ssize_t r;
  int fd;
  do
    r = recvmsg (sock, &msg, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  c = CMSG_FIRSTHDR (&msg);
  if (r <= 0 || c == NULL || c->cmsg_type != SCM_RIGHTS)
    return -1;
  memcpy (&fd, CMSG_DATA (c), sizeof fd);
  return fd;
}

static double
pair_lib (long n, int payload_fd)
{
  libcrun_error_t err = NULL;
  int sv[2];
  long i;
  double t0;
  if (libcrun_create_socket_pair (sv, &err) < 0)
    die ("libcrun_create_socket_pair", err);
  t0 = now ();
  for (i = 0; i < n; i++)
    {
      int fd;
      if (libcrun_send_fd_to_socket (sv[0], payload_fd, &err) < 0)
        die ("libcrun_send_fd_to_socket", err);
      fd = libcrun_receive_fd_from_socket (sv[1], &err);
      if (fd < 0)
        die ("libcrun_receive_fd_from_socket", err);
      close (fd);
    }
  t0 = now () - t0;
  close (sv[0]);
  close (sv[1]);
  return n / t0;
}

static double
pair_bare (long n, int payload_fd)
{
  int sv[2];
  long i;
  double t0;
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    die ("socketpair", NULL);
  t0 = now ();
  for (i = 0; i < n; i++)
    {
      int fd;
      if (bare_send (sv[0], payload_fd) < 0)
        die ("sendmsg", NULL);
      fd = bare_recv (sv[1]);
      if (fd < 0)
        die ("recvmsg", NULL);
      close (fd);
    }
  t0 = now () - t0;
  close (sv[0]);
  close (sv[1]);
  return n / t0;
}

static double
handoff_lib (long n, int payload_fd, const char *path)
{
  libcrun_error_t err = NULL;
  int l = libcrun_open_unix_domain_socket (path, 0, &err);
  long i;
  double t0;
  if (l < 0)
    die ("libcrun_open_unix_domain_socket", err);
  t0 = now ();
  for (i = 0; i < n; i++)
    {
      int fd;
      if (libcrun_send_console_socket (path, payload_fd, &err) < 0)
        die ("libcrun_send_console_socket", err);
      fd = libcrun_receive_console_fd (l, -1, &err);
      if (fd < 0)
        die ("libcrun_receive_console_fd", err);
      close (fd);
    }
  t0 = now () - t0;
  close (l);
  unlink (path);
  return n / t0;
}

static double
handoff_bare (long n, int payload_fd, const char *path)
{
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  int l = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  long i;
  double t0;
  strncpy (a.sun_path, path, sizeof a.sun_path - 1);
  if (l < 0 || bind (l, (struct sockaddr *) &a, sizeof a) < 0 || listen (l, 128) < 0)
    die ("bind", NULL);
  t0 = now ();
  for (i = 0; i < n; i++)
    {
      int c = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), s, fd;
      if (c < 0 || connect (c, (struct sockaddr *) &a, sizeof a) < 0 || bare_send (c, payload_fd) < 0)
        die ("connect/sendmsg", NULL);
      close (c);
      s = accept4 (l, NULL, NULL, SOCK_CLOEXEC);
      if (s < 0)
        die ("accept4", NULL);
      fd = bare_recv (s);
      if (fd < 0)
        die ("recvmsg", NULL);
      close (fd);
      close (s);
    }
  t0 = now () - t0;
  close (l);
  unlink (path);
  return n / t0;
}

static double
best (double a, double b)
{
  return a > b ? a : b;
}

int
main (int argc, char **argv)
{
  long n = argc > 1 ? atol (argv[1]) : 200000;
  int devnull = open ("/dev/null", O_RDONLY | O_CLOEXEC), r;
  double lib = 0, bare = 0, hlib = 0, hbare = 0;
  char path[64];
  snprintf (path, sizeof path, "/tmp/crun-rs-bench-%d.sock", (int) getpid ());
  unlink (path);

  /* Warm up, then alternate and keep the best of 3 of each. */
  pair_lib (n / 10, devnull);
  pair_bare (n / 10, devnull);
  for (r = 0; r < 3; r++)
    {
      lib = best (lib, pair_lib (n, devnull));
      bare = best (bare, pair_bare (n, devnull));
      hlib = best (hlib, handoff_lib (n / 10, devnull, path));
      hbare = best (hbare, handoff_bare (n / 10, devnull, path));
    }
  printf ("%-34s %14s %14s %8s\n", "round trips/s", "libcrun", "bare C", "ratio");
  printf ("%-34s %14.0f %14.0f %7.2fx\n", "fd over socket pair", lib, bare, bare / lib);
  printf ("%-34s %14.0f %14.0f %7.2fx\n", "console handoff (connect per fd)", hlib, hbare, hbare / hlib);
  printf ("(ratio = bare / libcrun; 1.00x means no overhead; target <= 1.20x; %ld iterations)\n", n);
  close (devnull);
  return 0;
}
