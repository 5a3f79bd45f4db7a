/* SPDX-License-Identifier: Apache-2.0
 * The container C API: load/free, option validation, and (as root, with CRUN_RS_BUNDLE and
 * CRUN_RS_STATE set by tests/runtime_capi.rs) create/start/state/list/status/exec/kill/delete
 * and run, through libcrun.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libcrun.h>

#include "check.h"

static char *
state_of (libcrun_context_t *ctx, const char *id)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  libcrun_error_t err = NULL;
  int ret = libcrun_container_state (ctx, id, f, &err);
  fclose (f);
  if (ret < 0)
    {
      fprintf (stderr, "state %s: %s\n", id, err->msg);
      libcrun_error_release (&err);
      free (buf);
      return NULL;
    }
  return buf;
}

static void
test_load (const char *bundle)
{
  libcrun_error_t err = NULL;
  libcrun_container_t *c = libcrun_container_load_from_file (NULL, &err);
  CHECK (c == NULL);
  CHECK (err != NULL && err->status == EINVAL);
  libcrun_error_release (&err);

  c = libcrun_container_load_from_file ("/nonexistent/config.json", &err);
  CHECK (c == NULL);
  CHECK (err != NULL && err->status == ENOENT);
  if (err)
    CHECK_CONTAINS (err->msg, "load `/nonexistent/config.json`");
  libcrun_error_release (&err);

  c = libcrun_container_load_from_memory ("{\"ociVersion\": \"1.0.0\",\n oops}", &err);
  CHECK (c == NULL);
  CHECK (err != NULL && err->status == EINVAL);
  if (err)
    CHECK_CONTAINS (err->msg, "line 2 column");
  libcrun_error_release (&err);

  c = libcrun_container_load_from_memory ("{\"ociVersion\": \"3.0\"}", &err);
  CHECK (c == NULL);
  if (err)
    CHECK_CONTAINS (err->msg, "unknown version specified");
  libcrun_error_release (&err);

  c = libcrun_container_load_from_memory (
      "{\"ociVersion\": \"1.0.0\", \"process\": {\"args\": [\"x\"], \"cwd\": \"/\", "
      "\"user\": {\"uid\": 7, \"gid\": 8}}}",
      &err);
  CHECK (c != NULL);
  if (c)
    {
      CHECK (c->container_def != NULL);
      CHECK_INT (c->container_uid, 7);
      CHECK_INT (c->container_gid, 8);
      CHECK_INT (c->host_uid, geteuid ());
      CHECK_INT (c->proc_fd, -1);
      CHECK (c->config_file == NULL);
      CHECK_CONTAINS (c->config_file_content, "ociVersion");

      /* Unknown option bits are rejected before anything happens. */
      libcrun_context_t ctx;
      memset (&ctx, 0, sizeof ctx);
      ctx.id = "x";
      ctx.fifo_exec_wait_fd = -1;
      CHECK (libcrun_container_run (&ctx, c, 1u << 5, &err) < 0);
      if (err)
        {
          CHECK_INT (err->status, EINVAL);
          CHECK_STR (err->msg, "internal error: unknown options 32");
        }
      libcrun_error_release (&err);
      CHECK (libcrun_container_create (&ctx, c, LIBCRUN_RUN_OPTIONS_KEEP, &err) < 0);
      libcrun_error_release (&err);
      CHECK (libcrun_container_run (NULL, c, 0, &err) == -EINVAL - 1);
      libcrun_error_release (&err);
      libcrun_container_free (c);
    }
  libcrun_container_free (NULL);

  if (bundle)
    {
      char path[4096];
      snprintf (path, sizeof path, "%s/config.json", bundle);
      c = libcrun_container_load_from_file (path, &err);
      CHECK (c != NULL);
      if (c)
        CHECK_STR (c->config_file, path);
      libcrun_container_free (c);
    }
}

static void
test_spec_and_status (const char *state)
{
  libcrun_error_t err = NULL;
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  int n = libcrun_container_spec (true, f, &err);
  fclose (f);
  CHECK (n > 0);
  CHECK_INT (n, (long long) len);
  CHECK_CONTAINS (buf, "\"ociVersion\"");
  libcrun_container_t *c = libcrun_container_load_from_memory (buf, &err);
  CHECK (c != NULL);
  libcrun_container_free (c);
  free (buf);

  char *dir = NULL;
  CHECK (libcrun_get_state_directory (&dir, state, "abc", &err) == 0);
  char expect[4096];
  snprintf (expect, sizeof expect, "%s/abc", state);
  CHECK_STR (dir, expect);
  free (dir);
  CHECK (libcrun_get_state_directory (&dir, state, "../x", &err) < 0);
  CHECK (err && err->status == EINVAL);
  libcrun_error_release (&err);

  /* Write, read, check and delete a status by hand. */
  snprintf (expect, sizeof expect, "%s/manual", state);
  mkdir (expect, 0700);
  libcrun_container_status_t st;
  memset (&st, 0, sizeof st);
  st.pid = getpid ();
  st.bundle = "/b";
  st.rootfs = "/b/rootfs";
  st.created = "2024-01-01T00:00:00Z";
  st.owner = "root";
  st.detached = 1;
  CHECK (libcrun_write_container_status (state, "manual", &st, &err) == 0);
  libcrun_container_status_t rd;
  memset (&rd, 0, sizeof rd);
  CHECK (libcrun_read_container_status (&rd, state, "manual", &err) == 0);
  CHECK_INT (rd.pid, getpid ());
  CHECK_STR (rd.bundle, "/b");
  CHECK_STR (rd.rootfs, "/b/rootfs");
  CHECK_INT (rd.detached, 1);
  CHECK_INT (libcrun_is_container_running (&rd, &err), 1);
  rd.pid = 0;
  CHECK_INT (libcrun_is_container_running (&rd, &err), 0);
  libcrun_free_container_status (&rd);
  CHECK (rd.bundle == NULL);

  libcrun_container_list_t *list = NULL;
  CHECK_INT (libcrun_get_containers_list (&list, state, &err), 1);
  CHECK (list != NULL && strcmp (list->name, "manual") == 0 && list->next == NULL);
  libcrun_free_containers_list (list);

  CHECK (libcrun_container_delete_status (state, "manual", &err) == 0);
  CHECK (libcrun_read_container_status (&rd, state, "manual", &err) < 0);
  CHECK (err && err->status == ENOENT);
  libcrun_error_release (&err);
  CHECK (libcrun_container_delete_status (state, "manual", &err) < 0);
  libcrun_error_release (&err);
}

static int warnings_seen;
static void
handler (int errno_, const char *msg, int verbosity, void *arg)
{
  (void) errno_;
  (void) msg;
  (void) verbosity;
  (void) arg;
  warnings_seen++;
}

static void
test_lifecycle (const char *bundle, const char *state)
{
  libcrun_error_t err = NULL;
  char path[4096];
  snprintf (path, sizeof path, "%s/config.json", bundle);
  libcrun_container_t *c = libcrun_container_load_from_file (path, &err);
  CHECK (c != NULL);
  if (!c)
    return;
  libcrun_context_t ctx;
  memset (&ctx, 0, sizeof ctx);
  ctx.state_root = state;
  ctx.id = "capi1";
  ctx.bundle = bundle;
  ctx.fifo_exec_wait_fd = -1;
  ctx.output_handler = handler;

  int ret = libcrun_container_create (&ctx, c, 0, &err);
  CHECK_INT (ret, 0);
  if (ret < 0)
    {
      fprintf (stderr, "create: %s\n", err->msg);
      libcrun_error_release (&err);
      libcrun_container_free (c);
      return;
    }
  CHECK (c->context == &ctx);
  char *s = state_of (&ctx, "capi1");
  CHECK_CONTAINS (s, "\"status\": \"created\"");
  free (s);

  /* Duplicate id. */
  CHECK (libcrun_container_create (&ctx, c, 0, &err) < 0);
  CHECK (err && err->status == EEXIST);
  libcrun_error_release (&err);

  CHECK_INT (libcrun_container_start (&ctx, "capi1", &err), 0);
  s = state_of (&ctx, "capi1");
  CHECK_CONTAINS (s, "\"status\": \"running\"");
  free (s);
  CHECK (libcrun_container_start (&ctx, "capi1", &err) < 0);
  libcrun_error_release (&err);

  pid_t *pids = NULL;
  CHECK_INT (libcrun_container_read_pids (&ctx, "capi1", true, &pids, &err), 0);
  CHECK (pids != NULL && pids[0] > 0);
  free (pids);

  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  CHECK_INT (libcrun_write_json_containers_list (&ctx, f, &err), 0);
  fclose (f);
  CHECK_CONTAINS (buf, "\"id\": \"capi1\"");
  free (buf);

  /* exec: bad struct size, then a process file. */
  struct libcrun_container_exec_options_s opts;
  memset (&opts, 0, sizeof opts);
  opts.struct_size = 8;
  CHECK (libcrun_container_exec_with_options (&ctx, "capi1", &opts, &err) < 0);
  if (err)
    {
      CHECK_INT (err->status, EINVAL);
      CHECK_STR (err->msg, "invalid libcrun_container_exec_options_s struct");
    }
  libcrun_error_release (&err);
  struct runtime_spec_schema_config_schema_process *p = libcrun_process_from_json (
      "{\"args\": [\"/init\", \"exit\", \"5\"], \"cwd\": \"/\", \"user\": {\"uid\": 0, \"gid\": 0}}",
      &err);
  CHECK (p != NULL);
  opts.struct_size = sizeof opts;
  opts.process = p;
  CHECK_INT (libcrun_container_exec_with_options (&ctx, "capi1", &opts, &err), 5);
  CHECK_INT (libcrun_container_exec (&ctx, "capi1", p, &err), 5);
  libcrun_process_free (p);
  p = libcrun_process_from_json ("{\"args\": [\"nonexistent-z\"], \"cwd\": \"/\", \"user\": {\"uid\": 0, \"gid\": 0}}", &err);
  CHECK (libcrun_container_exec (&ctx, "capi1", p, &err) < 0);
  if (err)
    {
      CHECK_INT (err->status, ENOENT);
      CHECK_STR (err->msg, "executable file `nonexistent-z` not found in $PATH");
    }
  libcrun_error_release (&err);
  libcrun_process_free (p);

  CHECK (libcrun_container_delete (&ctx, NULL, "capi1", false, &err) < 0);
  CHECK (err && err->status == EBUSY);
  libcrun_error_release (&err);
  CHECK_INT (libcrun_container_kill (&ctx, "capi1", "SIGKILL", &err), 0);
  for (int i = 0; i < 200; i++)
    {
      s = state_of (&ctx, "capi1");
      int stopped = s && strstr (s, "\"stopped\"") != NULL;
      free (s);
      if (stopped)
        break;
      usleep (20000);
    }
  CHECK_INT (libcrun_container_delete (&ctx, NULL, "capi1", false, &err), 0);
  s = state_of (&ctx, "capi1");
  CHECK (s == NULL);
  free (s);
  CHECK (libcrun_container_kill (&ctx, "capi1", "TERM", &err) < 0);
  CHECK (err && err->status == ENOENT);
  libcrun_error_release (&err);

  /* run in the foreground returns the exit status and removes the container. */
  libcrun_container_free (c);
  c = libcrun_container_load_from_memory (
      "{\"ociVersion\": \"1.0.0\", \"root\": {\"path\": \"rootfs\"}, \"process\": {\"args\": "
      "[\"/init\", \"exit\", \"3\"], \"cwd\": \"/\", \"user\": {\"uid\": 0, \"gid\": 0}}, "
      "\"linux\": {\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"pid\"}]}}",
      &err);
  CHECK (c != NULL);
  ctx.id = "capi2";
  CHECK_INT (libcrun_container_run (&ctx, c, 0, &err), 3);
  s = state_of (&ctx, "capi2");
  CHECK (s == NULL);
  free (s);
  CHECK_INT (libcrun_container_run (&ctx, c, LIBCRUN_RUN_OPTIONS_KEEP, &err), 3);
  s = state_of (&ctx, "capi2");
  CHECK_CONTAINS (s, "\"stopped\"");
  free (s);
  CHECK_INT (libcrun_container_delete (&ctx, NULL, "capi2", true, &err), 0);

  /* PREFORK: the runtime runs in a forked, detached process; the exit status and errors come
     back through a pipe, and this process has no child left to reap. */
  ctx.id = "capi3";
  /* Reap what the in-process runs above left (the killed capi1 was our child). */
  while (waitpid (-1, NULL, WNOHANG) > 0)
    ;
  CHECK_INT (libcrun_container_run (&ctx, c, LIBCRUN_RUN_OPTIONS_PREFORK, &err), 3);
  CHECK (err == NULL);
  s = state_of (&ctx, "capi3");
  CHECK (s == NULL);
  free (s);
  CHECK (waitpid (-1, NULL, WNOHANG) < 0 && errno == ECHILD);
  libcrun_container_free (c);
  c = libcrun_container_load_from_memory (
      "{\"ociVersion\": \"1.0.0\", \"root\": {\"path\": \"rootfs\"}, \"process\": {\"args\": "
      "[\"/nonexistent-cmd\"], \"cwd\": \"/\", \"user\": {\"uid\": 0, \"gid\": 0}}, "
      "\"linux\": {\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"pid\"}]}}",
      &err);
  CHECK (c != NULL);
  ctx.id = "capi4";
  CHECK_INT (libcrun_container_run (&ctx, c, LIBCRUN_RUN_OPTIONS_PREFORK, &err), -ENOENT - 1);
  CHECK (err && err->status == ENOENT);
  CHECK_CONTAINS (err ? err->msg : NULL, "/nonexistent-cmd");
  libcrun_error_release (&err);
  s = state_of (&ctx, "capi4");
  CHECK (s == NULL);
  free (s);
  libcrun_container_free (c);
}

int
main (void)
{
  const char *bundle = getenv ("CRUN_RS_BUNDLE");
  const char *state = getenv ("CRUN_RS_STATE");
  test_load (bundle);
  if (state)
    test_spec_and_status (state);
  if (bundle && state && geteuid () == 0)
    test_lifecycle (bundle, state);
  else
    printf ("skipped: lifecycle checks need root, CRUN_RS_BUNDLE and CRUN_RS_STATE\n");
  return check_report ("test_container");
}
