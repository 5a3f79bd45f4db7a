/* SPDX-License-Identifier: Apache-2.0
 *
 * The printf-style entry points of libcrun.  Stable Rust cannot define C variadic functions,
 * so each one here only formats its arguments and hands the string to a crun_rs_* bridge
 * (src/ffi/error.rs).  Keep this file free of logic.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct libcrun_error_s;
typedef struct libcrun_error_s *libcrun_error_t;

int crun_rs_make_error (libcrun_error_t *err, int status, char *msg);
int crun_rs_error_wrap (libcrun_error_t *err, char *prefix);
void crun_rs_log (int errno_, int verbosity, const char *msg);
void crun_rs_fail (int errno_, const char *msg) __attribute__ ((noreturn));

/* Returns a malloc'd string, or NULL when fmt is NULL; exits like crun when out of memory. */
static char *
format_message (const char *fmt, va_list ap)
{
  char *msg = NULL;
  if (fmt == NULL)
    return NULL;
  if (vasprintf (&msg, fmt, ap) < 0)
    {
      fputs ("out of memory\n", stderr);
      _exit (1);
    }
  return msg;
}

#define FORMAT(fmt, out)        \
  do                            \
    {                           \
      va_list ap_;              \
      va_start (ap_, fmt);      \
      out = format_message (fmt, ap_); \
      va_end (ap_);             \
    }                           \
  while (0)

int
libcrun_make_error (libcrun_error_t *err, int status, const char *fmt, ...)
{
  char *msg;
  FORMAT (fmt, msg);
  return crun_rs_make_error (err, status, msg);
}

int
libcrun_error_wrap (libcrun_error_t *err, const char *fmt, ...)
{
  char *prefix;
  FORMAT (fmt, prefix);
  return crun_rs_error_wrap (err, prefix);
}

static void
log_and_free (int errno_, int verbosity, char *msg)
{
  crun_rs_log (errno_, verbosity, msg);
  free (msg);
}

void
libcrun_error (int errno_, const char *fmt, ...)
{
  char *msg;
  FORMAT (fmt, msg);
  log_and_free (errno_, 0, msg);
}

void
libcrun_warning (const char *fmt, ...)
{
  char *msg;
  FORMAT (fmt, msg);
  log_and_free (0, 1, msg);
}

void
libcrun_debug (const char *fmt, ...)
{
  char *msg;
  FORMAT (fmt, msg);
  log_and_free (0, 2, msg);
}

void
libcrun_fail_with_error (int errno_, const char *fmt, ...)
{
  char *msg;
  FORMAT (fmt, msg);
  crun_rs_fail (errno_, msg);
}
