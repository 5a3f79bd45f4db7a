/* SPDX-License-Identifier: Apache-2.0
 * The error API: struct layout, make/wrap/release/get_errno, write_warning_and_release byte for
 * byte, fail_with_error's output and exit status, NULL and bad arguments. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libcrun.h>

#include "check.h"

/* Read a whole file into a malloc'd string. */
static char *
slurp (FILE *f)
{
  long len;
  char *buf;
  fflush (f);
  fseek (f, 0, SEEK_END);
  len = ftell (f);
  rewind (f);
  buf = calloc (1, len + 1);
  if (fread (buf, 1, len, f) != (size_t) len)
    {
      free (buf);
      return NULL;
    }
  return buf;
}

static void
test_layout (void)
{
  CHECK_INT (sizeof (struct libcrun_error_s), 16);
  CHECK_INT (offsetof (struct libcrun_error_s, status), 0);
  CHECK_INT (offsetof (struct libcrun_error_s, msg), 8);
  CHECK_INT (sizeof (libcrun_error_t), sizeof (void *));
}

static void
test_make_error (void)
{
  libcrun_error_t err = NULL;
  int ret;

  ret = libcrun_make_error (&err, ENOENT, "open `%s` (%d)", "/x", 42);
  CHECK_INT (ret, -ENOENT - 1);
  CHECK (err != NULL);
  CHECK_INT (err->status, ENOENT);
  CHECK_STR (err->msg, "open `/x` (42)");
  CHECK_INT (libcrun_error_get_errno (&err), ENOENT);
  CHECK_INT (libcrun_error_release (&err), 0);
  CHECK (err == NULL);

  /* status 0 returns -1 */
  ret = libcrun_make_error (&err, 0, "plain");
  CHECK_INT (ret, -1);
  CHECK_INT (err->status, 0);
  libcrun_error_release (&err);

  /* a negative errno is stored positive: the "Unknown error -22" bug class cannot happen */
  ret = libcrun_make_error (&err, -EINVAL, "could not start krun");
  CHECK_INT (err->status, EINVAL);
  CHECK_INT (ret, -EINVAL - 1);
  libcrun_error_release (&err);

  /* crun's alias */
  ret = crun_make_error (&err, EPERM, "alias");
  CHECK_INT (ret, -EPERM - 1);
  CHECK_INT (err->status, EPERM);
  libcrun_error_release (&err);

  /* NULL err: only the return value */
  CHECK_INT (libcrun_make_error (NULL, EBUSY, "nowhere"), -EBUSY - 1);

  /* a long message is not truncated */
  {
    char big[10000];
    memset (big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    libcrun_make_error (&err, E2BIG, "%s", big);
    CHECK_INT (strlen (err->msg), sizeof big - 1);
    libcrun_error_release (&err);
  }
}

static void
test_null_format (void)
{
  libcrun_error_t err = NULL;
  const char *fmt = NULL;
  /* Through a variable so the compiler's format checking does not reject the call. */
  int ret = libcrun_make_error (&err, ENOENT, fmt);
  CHECK_INT (ret, -EINVAL - 1);
  CHECK (err != NULL);
  if (err)
    {
      CHECK_INT (err->status, EINVAL);
      CHECK_CONTAINS (err->msg, "format string is NULL");
    }
  libcrun_error_release (&err);
}

static void
test_release_null_safe (void)
{
  libcrun_error_t err = NULL;
  CHECK_INT (libcrun_error_release (NULL), 0);
  CHECK_INT (libcrun_error_release (&err), 0);
  CHECK_INT (libcrun_error_get_errno (NULL), 0);
  CHECK_INT (libcrun_error_get_errno (&err), 0);
}

static void
test_wrap (void)
{
  libcrun_error_t err = NULL;
  int ret;

  libcrun_make_error (&err, EACCES, "open `%s`", "/etc/x");
  ret = libcrun_error_wrap (&err, "load config `%s`", "b");
  CHECK_INT (ret, -EACCES - 1);
  ret = libcrun_error_wrap (&err, "create container");
  CHECK_INT (ret, -EACCES - 1);
  CHECK_STR (err->msg, "create container: load config `b`: open `/etc/x`");
  CHECK_INT (err->status, EACCES);
  libcrun_error_release (&err);

  /* no error to wrap */
  CHECK_INT (libcrun_error_wrap (&err, "x"), 0);
  CHECK_INT (libcrun_error_wrap (NULL, "x"), 0);
}

static void
test_write_warning (void)
{
  libcrun_error_t err = NULL;
  libcrun_error_t *errp = &err;
  FILE *f = tmpfile ();
  char *out;

  libcrun_make_error (&err, ENOENT, "executable file `%s` not found in $PATH", "nope");
  libcrun_error_write_warning_and_release (f, &errp);
  CHECK (err == NULL);
  libcrun_make_error (&err, 0, "no errno here");
  libcrun_error_write_warning_and_release (f, &errp);
  CHECK (err == NULL);
  libcrun_make_error (&err, -EINVAL, "negative in");
  libcrun_error_write_warning_and_release (f, &errp);

  /* NULL-safe */
  libcrun_error_write_warning_and_release (f, NULL);
  libcrun_error_write_warning_and_release (f, &errp);

  out = slurp (f);
  CHECK_STR (out, "executable file `nope` not found in $PATH: No such file or directory\n"
                  "no errno here\n"
                  "negative in: Invalid argument\n");
  free (out);
  fclose (f);
}

static void
test_write_warning_to_stderr (void)
{
  libcrun_error_t err = NULL;
  libcrun_error_t *errp = &err;
  FILE *f = tmpfile ();
  int saved = dup (2);
  char *out;

  fflush (stderr);
  dup2 (fileno (f), 2);
  libcrun_make_error (&err, EPERM, "to stderr");
  libcrun_error_write_warning_and_release (NULL, &errp);
  fflush (stderr);
  dup2 (saved, 2);
  close (saved);
  out = slurp (f);
  CHECK_STR (out, "to stderr: Operation not permitted\n");
  free (out);
  fclose (f);
}

static void
test_fail_with_error (void)
{
  FILE *f = tmpfile ();
  pid_t pid;
  int status = 0;
  char *out;

  fflush (NULL);
  pid = fork ();
  if (pid == 0)
    {
      dup2 (fileno (f), 2);
      libcrun_fail_with_error (ENOENT, "fatal `%s`", "thing");
    }
  waitpid (pid, &status, 0);
  CHECK (WIFEXITED (status));
  CHECK_INT (WEXITSTATUS (status), 1);
  out = slurp (f);
  CHECK_STR (out, "fatal `thing`: No such file or directory\n");
  free (out);
  fclose (f);
}

static void
test_verbosity_and_format (void)
{
  libcrun_error_t err = NULL;
  CHECK_INT (libcrun_get_verbosity (), LIBCRUN_VERBOSITY_ERROR);
  libcrun_set_verbosity (LIBCRUN_VERBOSITY_DEBUG);
  CHECK_INT (libcrun_get_verbosity (), LIBCRUN_VERBOSITY_DEBUG);
  libcrun_set_verbosity (LIBCRUN_VERBOSITY_ERROR);

  CHECK_INT (libcrun_set_log_format ("json", &err), 0);
  CHECK_INT (libcrun_set_log_format ("text", &err), 0);
  CHECK (err == NULL);
  CHECK_INT (libcrun_set_log_format ("yaml", &err), -1);
  CHECK (err != NULL && err->status == 0);
  if (err)
    CHECK_CONTAINS (err->msg, "yaml");
  libcrun_error_release (&err);
  CHECK_INT (libcrun_set_log_format (NULL, &err), -EINVAL - 1);
  CHECK (err != NULL && err->status == EINVAL);
  if (err)
    CHECK_CONTAINS (err->msg, "`format` is NULL");
  libcrun_error_release (&err);
  /* NULL err pointer is tolerated */
  CHECK_INT (libcrun_set_log_format ("bad", NULL), -1);
}

int
main (void)
{
  test_layout ();
  test_make_error ();
  test_null_format ();
  test_release_null_safe ();
  test_wrap ();
  test_write_warning ();
  test_write_warning_to_stderr ();
  test_fail_with_error ();
  test_verbosity_and_format ();
  return check_report ("test_error");
}
