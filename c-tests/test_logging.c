/* SPDX-License-Identifier: Apache-2.0
 * Logging: custom output handlers, verbosity filtering, JSON lines parsed back, file and syslog
 * targets, errors also reaching stderr when logging to a file, and bad targets. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libcrun.h>

#include "check.h"

struct captured
{
  int errno_;
  int verbosity;
  char msg[1024];
};

static struct captured cap[16];
static int ncap;
static void *seen_arg;

static void
capture (int errno_, const char *msg, int verbosity, void *arg)
{
  if (ncap < 16)
    {
      cap[ncap].errno_ = errno_;
      cap[ncap].verbosity = verbosity;
      snprintf (cap[ncap].msg, sizeof cap[ncap].msg, "%s", msg);
      ncap++;
    }
  seen_arg = arg;
}

static char *
read_file (const char *path)
{
  FILE *f = fopen (path, "r");
  char *buf;
  long len;
  if (f == NULL)
    return NULL;
  fseek (f, 0, SEEK_END);
  len = ftell (f);
  rewind (f);
  buf = calloc (1, len + 1);
  if (fread (buf, 1, len, f) != (size_t) len)
    buf[0] = '\0';
  fclose (f);
  return buf;
}

static void
test_verbosity_filter (void)
{
  int token;
  ncap = 0;
  libcrun_set_output_handler (capture, &token);
  libcrun_set_verbosity (LIBCRUN_VERBOSITY_ERROR);
  libcrun_debug ("dropped %d", 1);
  libcrun_warning ("dropped %d", 2);
  libcrun_error (EACCES, "kept %d", 3);
  CHECK_INT (ncap, 1);
  CHECK_STR (cap[0].msg, "kept 3");
  CHECK_INT (cap[0].errno_, EACCES);
  CHECK_INT (cap[0].verbosity, LIBCRUN_VERBOSITY_ERROR);
  CHECK (seen_arg == &token);

  ncap = 0;
  libcrun_set_verbosity (LIBCRUN_VERBOSITY_WARNING);
  libcrun_debug ("dropped");
  libcrun_warning ("warn %s", "w");
  CHECK_INT (ncap, 1);
  CHECK_STR (cap[0].msg, "warn w");
  CHECK_INT (cap[0].verbosity, LIBCRUN_VERBOSITY_WARNING);
  CHECK_INT (cap[0].errno_, 0);

  ncap = 0;
  libcrun_set_verbosity (LIBCRUN_VERBOSITY_DEBUG);
  libcrun_debug ("dbg");
  libcrun_warning ("wrn");
  libcrun_error (0, "err");
  CHECK_INT (ncap, 3);
  CHECK_INT (cap[0].verbosity, LIBCRUN_VERBOSITY_DEBUG);
  CHECK_INT (cap[1].verbosity, LIBCRUN_VERBOSITY_WARNING);
  CHECK_INT (cap[2].verbosity, LIBCRUN_VERBOSITY_ERROR);
  libcrun_set_verbosity (LIBCRUN_VERBOSITY_ERROR);
}

static void
test_json_handler (void)
{
  libcrun_error_t err = NULL;
  ncap = 0;
  libcrun_set_output_handler (capture, NULL);
  CHECK_INT (libcrun_set_log_format ("json", &err), 0);
  libcrun_error (ENOENT, "open \"%s\"", "quoted\\path");
  CHECK_INT (ncap, 1);
  /* errno is folded into the message; the handler gets errno 0 */
  CHECK_INT (cap[0].errno_, 0);
  CHECK (strncmp (cap[0].msg, "{\"msg\":\"open \\\"quoted\\\\path\\\": No such file or directory\","
                              "\"level\":\"error\",\"time\":\"",
                  strlen ("{\"msg\":\"open \\\"quoted\\\\path\\\": No such file or directory\","
                          "\"level\":\"error\",\"time\":\""))
         == 0);
  {
    /* time: YYYY-MM-DDTHH:MM:SS.uuuuuuZ then "} */
    const char *t = strstr (cap[0].msg, "\"time\":\"");
    CHECK (t != NULL);
    if (t)
      {
        t += strlen ("\"time\":\"");
        CHECK_INT (strlen (t), strlen ("2026-01-01T00:00:00.000000Z\"}"));
        CHECK (t[4] == '-' && t[10] == 'T' && t[19] == '.' && t[26] == 'Z');
      }
  }
  CHECK_INT (libcrun_set_log_format ("text", &err), 0);
}

static void
test_file_target (void)
{
  char dir[] = "/tmp/crun-rs-log-XXXXXX";
  char path[256], spec[300], errpath[256];
  libcrun_error_t err = NULL;
  crun_output_handler h = NULL;
  void *arg = NULL;
  char *content, *errout;
  int saved, efd;

  CHECK (mkdtemp (dir) != NULL);
  snprintf (path, sizeof path, "%s/crun.log", dir);
  snprintf (spec, sizeof spec, "file:%s", path);
  snprintf (errpath, sizeof errpath, "%s/stderr", dir);

  CHECK_INT (libcrun_init_logging (&h, &arg, "ctr", spec, &err), 0);
  CHECK (err == NULL);
  CHECK (h != NULL);
  CHECK (arg != NULL);

  efd = open (errpath, O_CREAT | O_WRONLY | O_TRUNC, 0600);
  saved = dup (2);
  dup2 (efd, 2);
  libcrun_warning ("not logged at ERROR verbosity");
  libcrun_error (EPERM, "first %d", 1);
  libcrun_error (0, "second");
  dup2 (saved, 2);
  close (saved);
  close (efd);

  content = read_file (path);
  CHECK_STR (content, "first 1: Operation not permitted\nsecond\n");
  /* errors logged to a file are also written to stderr (conmon reads stderr) */
  errout = read_file (errpath);
  CHECK_STR (errout, "first 1: Operation not permitted\nsecond\n");
  free (content);
  free (errout);

  /* JSON to a plain PATH target: one object per line */
  snprintf (path, sizeof path, "%s/json.log", dir);
  CHECK_INT (libcrun_init_logging (&h, &arg, "ctr", path, &err), 0);
  CHECK_INT (libcrun_set_log_format ("json", &err), 0);
  efd = open ("/dev/null", O_WRONLY);
  saved = dup (2);
  dup2 (efd, 2);
  libcrun_error (ENOENT, "executable file `x` not found in $PATH");
  dup2 (saved, 2);
  close (saved);
  close (efd);
  libcrun_set_log_format ("text", &err);
  content = read_file (path);
  CHECK (content != NULL);
  if (content)
    {
      CHECK (strncmp (content,
                      "{\"msg\":\"executable file `x` not found in $PATH: No such file or directory\","
                      "\"level\":\"error\",\"time\":\"",
                      80)
             == 0);
      CHECK_INT (strchr (content, '\n') - content + 1, (long) strlen (content));
    }
  free (content);
  libcrun_set_output_handler (NULL, NULL);
  unlink (path);
  snprintf (path, sizeof path, "%s/crun.log", dir);
  unlink (path);
  unlink (errpath);
  rmdir (dir);
}

static void
test_bad_targets (void)
{
  libcrun_error_t err = NULL;
  crun_output_handler h = NULL;
  void *arg = NULL;

  CHECK_INT (libcrun_init_logging (&h, &arg, "id", "journald:", &err), -ENOTSUP - 1);
  CHECK (err && err->status == ENOTSUP);
  if (err)
    CHECK_CONTAINS (err->msg, "journald");
  libcrun_error_release (&err);

  CHECK (libcrun_init_logging (&h, &arg, "id", "bogus:thing", &err) < 0);
  CHECK (err && err->status == EINVAL);
  if (err)
    CHECK_CONTAINS (err->msg, "unknown log type `bogus:thing`");
  libcrun_error_release (&err);

  CHECK_INT (libcrun_init_logging (&h, &arg, "id", "/nonexistent-dir/x.log", &err), -ENOENT - 1);
  if (err)
    CHECK_CONTAINS (err->msg, "open log file `/nonexistent-dir/x.log`");
  libcrun_error_release (&err);

  /* NULL log = stderr; the output pointers may be NULL */
  CHECK_INT (libcrun_init_logging (NULL, NULL, NULL, NULL, &err), 0);
  CHECK_INT (libcrun_init_logging (&h, &arg, NULL, NULL, &err), 0);
  CHECK (arg == NULL);
  CHECK (h == libcrun_log_write_to_stderr);
  if (h)
    {
      /* the returned handler writes to stderr, like libcrun_log_write_to_stderr */
      char dir[] = "/tmp/crun-rs-stderr-XXXXXX", path[64];
      char *out;
      int fd, saved;
      CHECK (mkdtemp (dir) != NULL);
      snprintf (path, sizeof path, "%s/err", dir);
      fd = open (path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
      saved = dup (2);
      dup2 (fd, 2);
      h (EPERM, "via handler", LIBCRUN_VERBOSITY_ERROR, NULL);
      libcrun_log_write_to_stderr (0, "via export", LIBCRUN_VERBOSITY_ERROR, NULL);
      dup2 (saved, 2);
      close (saved);
      close (fd);
      out = read_file (path);
      CHECK_STR (out, "via handler: Operation not permitted\nvia export\n");
      free (out);
      unlink (path);
      rmdir (dir);
    }
}

/* syslog: messages reach /dev/log with the identity and LOG_USER|LOG_ERR priority.  Needs a
   private mount namespace (root) to put our own socket at /dev/log. */
static void
test_syslog (void)
{
  char dir[] = "/tmp/crun-rs-syslog-XXXXXX";
  char sockpath[64], buf[512];
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  struct pollfd pfd;
  int fd, status = 0;
  ssize_t n;
  pid_t pid;

  if (geteuid () != 0)
    {
      printf ("test_syslog: skipped: needs root for a private mount namespace\n");
      return;
    }
  CHECK (mkdtemp (dir) != NULL);
  snprintf (sockpath, sizeof sockpath, "%s/log", dir);
  fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  snprintf (addr.sun_path, sizeof addr.sun_path, "%s", sockpath);
  CHECK_INT (bind (fd, (struct sockaddr *) &addr, sizeof addr), 0);

  fflush (NULL);
  pid = fork ();
  if (pid == 0)
    {
      libcrun_error_t err = NULL;
      int tfd;
      if (unshare (CLONE_NEWNS) < 0 || mount ("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0
          || mount ("tmpfs", "/dev", "tmpfs", 0, "size=64k") < 0)
        _exit (10);
      tfd = open ("/dev/log", O_CREAT | O_WRONLY, 0600);
      if (tfd < 0)
        _exit (11);
      close (tfd);
      if (mount (sockpath, "/dev/log", "none", MS_BIND, NULL) < 0)
        _exit (12);
      if (libcrun_init_logging (NULL, NULL, "ctr-id", "syslog:crun-rs-test", &err) < 0)
        _exit (13);
      libcrun_error (EPERM, "syslog test %d", 7);
      _exit (0);
    }
  waitpid (pid, &status, 0);
  CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  pfd.fd = fd;
  pfd.events = POLLIN;
  CHECK_INT (poll (&pfd, 1, 5000), 1);
  n = recv (fd, buf, sizeof buf - 1, MSG_DONTWAIT);
  CHECK (n > 0);
  if (n > 0)
    {
      buf[n] = '\0';
      printf ("syslog received: %s\n", buf);
      CHECK (strncmp (buf, "<11>", 4) == 0); /* LOG_USER | LOG_ERR */
      CHECK_CONTAINS (buf, "crun-rs-test");
      CHECK_CONTAINS (buf, "syslog test 7: Operation not permitted");
    }
  close (fd);
  unlink (sockpath);
  rmdir (dir);
}

int
main (void)
{
  test_verbosity_filter ();
  test_json_handler ();
  test_file_target ();
  test_bad_targets ();
  test_syslog ();
  libcrun_set_output_handler (NULL, NULL);
  return check_report ("test_logging");
}
