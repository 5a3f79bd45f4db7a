/* SPDX-License-Identifier: Apache-2.0 */
/* An out-of-tree handler plug-in for the tests: `run_oci_handler_get_handler` returns a vtable
 * named "fake" (alias "fake-alias", feature "FAKE") whose callbacks log what they receive.
 * It uses only the struct definitions from libcrun.h and no libcrun function, so it loads into
 * any process.
 *
 * Environment:
 *   FAKE_HANDLER_LOG=path          one line per callback
 *   FAKE_HANDLER_CAN_HANDLE=1      can_handle_container says yes
 *   FAKE_HANDLER_FAIL=callback     that callback fails with EPERM "fake <callback> failure"
 *   FAKE_HANDLER_RUN_RET=n         run_func / exec_func return n (default 0) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libcrun.h>

static void
log_line (const char *fmt, ...)
{
  const char *path = getenv ("FAKE_HANDLER_LOG");
  char buf[4096];
  va_list ap;
  int n, fd;

  if (path == NULL)
    return;
  va_start (ap, fmt);
  n = vsnprintf (buf, sizeof buf - 1, fmt, ap);
  va_end (ap);
  if (n > (int) sizeof buf - 2)
    n = sizeof buf - 2;
  buf[n++] = '\n';
  fd = open (path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return;
  if (write (fd, buf, n) < 0)
    {
    }
  close (fd);
}

/* Fail `what` when FAKE_HANDLER_FAIL names it: set *err like crun_make_error would. */
static int
maybe_fail (const char *what, libcrun_error_t *err)
{
  const char *f = getenv ("FAKE_HANDLER_FAIL");
  char msg[128];

  if (f == NULL || strcmp (f, what) != 0)
    return 0;
  snprintf (msg, sizeof msg, "fake %s failure", what);
  if (err)
    {
      *err = malloc (sizeof (**err));
      if (*err == NULL)
        abort ();
      (*err)->status = EPERM;
      (*err)->msg = strdup (msg);
    }
  return -EPERM - 1;
}

struct cookie
{
  int magic;
};

static int
fake_load (void **cookie, libcrun_error_t *err)
{
  struct cookie *c;
  int ret = maybe_fail ("load", err);

  log_line ("load");
  if (ret)
    return ret;
  c = malloc (sizeof *c);
  if (c == NULL)
    abort ();
  c->magic = 4242;
  *cookie = c;
  return 0;
}

static int
fake_unload (void *cookie, libcrun_error_t *err)
{
  struct cookie *c = cookie;

  (void) err;
  log_line ("unload magic=%d", c ? c->magic : -1);
  free (c);
  return 0;
}

static int
ret_from_env (void)
{
  const char *r = getenv ("FAKE_HANDLER_RUN_RET");
  return r ? atoi (r) : 0;
}

static void
log_exec (const char *what, void *cookie, libcrun_container_t *container, const char *pathname,
          char *const argv[])
{
  char buf[1024] = "";
  size_t n = 0;
  int i;

  for (i = 0; argv && argv[i] && n < sizeof buf - 1; i++)
    n += snprintf (buf + n, sizeof buf - n, "%s%s", i ? "|" : "", argv[i]);
  log_line ("%s magic=%d id=%s path=%s argv=%s", what, cookie ? ((struct cookie *) cookie)->magic : -1,
            container && container->context && container->context->id ? container->context->id : "(null)",
            pathname, buf);
}

static int
fake_run (void *cookie, libcrun_container_t *container, const char *pathname, char *const argv[])
{
  log_exec ("run", cookie, container, pathname, argv);
  return ret_from_env ();
}

static int
fake_exec (void *cookie, libcrun_container_t *container, const char *pathname, char *const argv[])
{
  log_exec ("exec", cookie, container, pathname, argv);
  return ret_from_env ();
}

static int
fake_configure_container (void *cookie, enum handler_configure_phase phase, libcrun_context_t *context,
                          libcrun_container_t *container, const char *rootfs, libcrun_error_t *err)
{
  char what[32];

  log_line ("configure phase=%d magic=%d id=%s bundle=%s handler=%s rootfs=%s def=%s", (int) phase,
            cookie ? ((struct cookie *) cookie)->magic : -1, context && context->id ? context->id : "(null)",
            context && context->bundle ? context->bundle : "(null)",
            context && context->handler ? context->handler : "(null)", rootfs ? rootfs : "(null)",
            container && container->container_def ? "set" : "NULL");
  snprintf (what, sizeof what, "configure%d", (int) phase);
  return maybe_fail (what, err);
}

static int
fake_can_handle (libcrun_container_t *container, libcrun_error_t *err)
{
  const char *c = getenv ("FAKE_HANDLER_CAN_HANDLE");
  int ret = maybe_fail ("can_handle", err);

  log_line ("can_handle def=%s", container && container->container_def ? "set" : "NULL");
  if (ret)
    return ret;
  return c && strcmp (c, "1") == 0;
}

static int
fake_modify (void *cookie, libcrun_context_t *context, struct runtime_spec_schema_config_schema *def,
             libcrun_error_t *err)
{
  (void) context;
  log_line ("modify magic=%d def=%s", cookie ? ((struct cookie *) cookie)->magic : -1, def ? "set" : "NULL");
  return maybe_fail ("modify", err);
}

static int
fake_close_fds (void *cookie, libcrun_container_t *container, int preserve_fds, libcrun_error_t *err)
{
  (void) cookie;
  (void) container;
  log_line ("close_fds preserve=%d", preserve_fds);
  return maybe_fail ("close_fds", err);
}

static struct custom_handler_s fake_handler = {
  .name = "fake",
  .feature_string = "FAKE",
  .alias = "fake-alias",
  .load = fake_load,
  .unload = fake_unload,
  .run_func = fake_run,
  .exec_func = fake_exec,
  .configure_container = fake_configure_container,
  .can_handle_container = fake_can_handle,
  .modify_oci_configuration = fake_modify,
  .close_fds = fake_close_fds,
};

struct custom_handler_s *run_oci_handler_get_handler (void);

struct custom_handler_s *
run_oci_handler_get_handler (void)
{
  return &fake_handler;
}
