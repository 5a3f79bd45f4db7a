/* SPDX-License-Identifier: Apache-2.0 */
/* The handler-manager C API: create, load_directory, print_feature_tags, by_name,
 * configure_handler (krun built-in vtable and an out-of-tree plug-in), instance_free, free.
 *
 * argv[1]: a directory holding fake_handler.so.  LD_LIBRARY_PATH must find the fake
 * libkrun.so.1; FAKE_KRUN_LOG / FAKE_HANDLER_LOG name the fakes' call logs (argv[2], argv[3]). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libcrun.h>

static int failures;

#define CHECK(cond, ...)                                      \
  do                                                          \
    {                                                         \
      if (! (cond))                                           \
        {                                                     \
          fprintf (stderr, "%s:%d: FAILED %s: ", __FILE__,    \
                   __LINE__, #cond);                          \
          fprintf (stderr, __VA_ARGS__);                      \
          fputc ('\n', stderr);                               \
          failures++;                                         \
        }                                                     \
    }                                                         \
  while (0)

static char *
tags (struct custom_handler_manager_s *m)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);

  libcrun_handler_manager_print_feature_tags (m, f);
  fclose (f);
  return buf;
}

static char *
slurp (const char *path)
{
  static char buf[65536];
  FILE *f = fopen (path, "re");
  size_t n;

  buf[0] = '\0';
  if (f == NULL)
    return buf;
  n = fread (buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose (f);
  return buf;
}

static const char *
msg (libcrun_error_t err)
{
  return err && err->msg ? err->msg : "(no error)";
}

int
main (int argc, char **argv)
{
  libcrun_error_t err = NULL;
  struct custom_handler_manager_s *m;
  struct custom_handler_s *krun, *fake;
  struct custom_handler_instance_s *inst = NULL;
  libcrun_context_t ctx;
  libcrun_container_t container;
  char *t;
  int ret;

  if (argc < 4)
    {
      fprintf (stderr, "usage: %s PLUGIN-DIR KRUN-LOG HANDLER-LOG\n", argv[0]);
      return 2;
    }

  m = libcrun_handler_manager_create (&err);
  CHECK (m != NULL, "create: %s", msg (err));
  t = tags (m);
  CHECK (strcmp (t, "+LIBKRUN ") == 0, "tags `%s`", t);
  free (t);

  ret = libcrun_handler_manager_load_directory (NULL, argv[1], &err);
  CHECK (ret < 0 && err && err->status == EINVAL, "NULL manager: %d %s", ret, msg (err));
  libcrun_error_release (&err);
  ret = libcrun_handler_manager_load_directory (m, "/nonexistent/crun-rs", &err);
  CHECK (ret == -ENOENT - 1 && err && err->status == ENOENT
             && strcmp (err->msg, "cannot opendir `/nonexistent/crun-rs`") == 0,
         "missing dir: %d %s", ret, msg (err));
  libcrun_error_release (&err);

  ret = libcrun_handler_manager_load_directory (m, argv[1], &err);
  CHECK (ret == 0, "load_directory: %s", msg (err));
  t = tags (m);
  CHECK (strcmp (t, "+LIBKRUN +FAKE ") == 0, "tags `%s`", t);
  free (t);

  krun = libcrun_handler_by_name (m, "krun");
  CHECK (krun && strcmp (krun->name, "krun") == 0 && strcmp (krun->feature_string, "LIBKRUN") == 0
             && krun->alias == NULL && krun->exec_func == NULL && krun->can_handle_container == NULL
             && krun->load && krun->unload && krun->run_func && krun->configure_container
             && krun->modify_oci_configuration && krun->close_fds,
         "krun vtable");
  fake = libcrun_handler_by_name (m, "fake-alias");
  CHECK (fake && strcmp (fake->name, "fake") == 0, "fake by alias");
  CHECK (libcrun_handler_by_name (m, "nope") == NULL, "unknown name");
  CHECK (libcrun_handler_by_name (m, NULL) == NULL, "NULL name");

  memset (&ctx, 0, sizeof ctx);
  memset (&container, 0, sizeof container);
  ctx.id = "ctr";
  ctx.bundle = "/bundle";
  container.context = &ctx;
  container.proc_fd = -1;

  /* Unknown handler: ENOENT naming it, no instance. */
  ctx.handler = "nope";
  inst = (void *) 1;
  ret = libcrun_configure_handler (m, &ctx, &container, &inst, &err);
  CHECK (ret == -ENOENT - 1 && inst == NULL && err && strstr (err->msg, "unknown handler `nope`"),
         "unknown: %d %s", ret, msg (err));
  libcrun_error_release (&err);

  /* A global handler without a manager. */
  ctx.handler = "krun";
  ret = libcrun_configure_handler (NULL, &ctx, &container, &inst, &err);
  CHECK (ret < 0 && err && err->status == EINVAL, "no manager: %d %s", ret, msg (err));
  libcrun_error_release (&err);
  ret = libcrun_configure_handler (m, &ctx, &container, NULL, &err);
  CHECK (ret < 0 && err && err->status == EINVAL && strstr (err->msg, "`out`"), "NULL out: %s", msg (err));
  libcrun_error_release (&err);

  /* krun through the built-in vtable: load runs krun_create_ctx in the fake. */
  ret = libcrun_configure_handler (m, &ctx, &container, &inst, &err);
  CHECK (ret == 0 && inst && inst->vtable == krun && inst->cookie, "krun: %d %s", ret, msg (err));
  if (inst)
    {
      /* No configuration: clean EINVAL errors, no crash. */
      ret = inst->vtable->configure_container (inst->cookie, (enum handler_configure_phase) 4 /* BEFORE_USERNS */, &ctx, &container,
                                               "/tmp", &err);
      CHECK (ret < 0 && err && err->status == EINVAL && strstr (err->msg, "container_def"),
             "configure without def: %s", msg (err));
      libcrun_error_release (&err);
      ret = inst->vtable->modify_oci_configuration (inst->cookie, &ctx, NULL, &err);
      CHECK (ret < 0 && err && err->status == EINVAL, "modify NULL def: %s", msg (err));
      libcrun_error_release (&err);
      libcrun_handler_instance_free (inst);
      inst = NULL;
    }
  CHECK (strstr (slurp (argv[2]), "krun_create_ctx") != NULL, "create_ctx logged: %s", slurp (argv[2]));

  /* krun_create_ctx failing: positive errno, crun's message. */
  setenv ("FAKE_KRUN_FAIL", "krun_create_ctx:12", 1);
  ret = libcrun_configure_handler (m, &ctx, &container, &inst, &err);
  CHECK (ret == -ENOMEM - 1 && inst == NULL && err && err->status == ENOMEM
             && strcmp (err->msg, "could not create krun context") == 0,
         "create_ctx failure: %d %s", ret, msg (err));
  libcrun_error_release (&err);
  unsetenv ("FAKE_KRUN_FAIL");

  /* The plug-in: load gives the cookie, instance_free unloads it. */
  ctx.handler = "fake";
  ret = libcrun_configure_handler (m, &ctx, &container, &inst, &err);
  CHECK (ret == 0 && inst && inst->vtable == fake && inst->cookie && *(int *) inst->cookie == 4242,
         "fake: %d %s", ret, msg (err));
  if (inst)
    {
      char *args[] = { "/bin/x", "y", NULL };
      ret = inst->vtable->run_func (inst->cookie, &container, "/bin/x", args);
      CHECK (ret == 0, "fake run %d", ret);
      libcrun_handler_instance_free (inst);
      inst = NULL;
    }
  t = slurp (argv[3]);
  CHECK (strstr (t, "load\nrun magic=4242 id=ctr path=/bin/x argv=/bin/x|y\nunload magic=4242\n") != NULL,
         "plug-in log: %s", t);

  /* A plug-in load failure is reported with its own errno and message. */
  setenv ("FAKE_HANDLER_FAIL", "load", 1);
  ret = libcrun_configure_handler (m, &ctx, &container, &inst, &err);
  CHECK (ret == -EPERM - 1 && inst == NULL && err && strcmp (err->msg, "fake load failure") == 0,
         "plug-in load failure: %d %s", ret, msg (err));
  libcrun_error_release (&err);
  unsetenv ("FAKE_HANDLER_FAIL");

  /* Nothing requested and nobody claims it: no handler. */
  ctx.handler = NULL;
  ret = libcrun_configure_handler (m, &ctx, &container, &inst, &err);
  CHECK (ret == 0 && inst == NULL, "no handler: %d %s", ret, msg (err));
  /* ...unless can_handle_container says yes. */
  setenv ("FAKE_HANDLER_CAN_HANDLE", "1", 1);
  ret = libcrun_configure_handler (m, &ctx, &container, &inst, &err);
  CHECK (ret == 0 && inst && inst->vtable == fake, "can_handle: %d %s", ret, msg (err));
  libcrun_handler_instance_free (inst);
  unsetenv ("FAKE_HANDLER_CAN_HANDLE");

  libcrun_handler_instance_free (NULL);
  libcrun_handler_manager_free (m);
  libcrun_handler_manager_free (NULL);

  if (failures)
    {
      fprintf (stderr, "%d check(s) failed\n", failures);
      return 1;
    }
  printf ("test_handler: ok\n");
  return 0;
}
