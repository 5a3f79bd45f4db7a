/* SPDX-License-Identifier: Apache-2.0
 * The rest of crun's container C API: libcrun_get_container_state_string,
 * libcrun_container_update_from_file / _from_values (checked in the v1 cgroup files) and
 * LIBCRUN_CREATE_OPTIONS_PREFORK.  Needs root and a bundle (CRUN_RS_BUNDLE, CRUN_RS_STATE). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libcrun.h>

#include "check.h"

static long long
read_cgroup (const char *controller, const char *cgroup, const char *file)
{
  char path[4096];
  snprintf (path, sizeof path, "/sys/fs/cgroup/%s/%s/%s", controller, cgroup, file);
  FILE *f = fopen (path, "re");
  if (f == NULL)
    {
      fprintf (stderr, "open %s: %s\n", path, strerror (errno));
      return -2;
    }
  char buf[64] = "";
  if (fgets (buf, sizeof buf, f) == NULL)
    buf[0] = '\0';
  fclose (f);
  if (strncmp (buf, "max", 3) == 0)
    return -1;
  return atoll (buf);
}

/* The state string of `id` and whether it runs; NULL on error. */
static const char *
state_string (const char *state, const char *id, int *running)
{
  libcrun_error_t err = NULL;
  libcrun_container_status_t st;
  memset (&st, 0, sizeof st);
  if (libcrun_read_container_status (&st, state, id, &err) < 0)
    {
      fprintf (stderr, "read status %s: %s\n", id, err->msg);
      libcrun_error_release (&err);
      return NULL;
    }
  const char *s = NULL;
  int ret = libcrun_get_container_state_string (id, &st, state, &s, running, &err);
  libcrun_free_container_status (&st);
  if (ret < 0)
    {
      fprintf (stderr, "state string %s: %s\n", id, err->msg);
      libcrun_error_release (&err);
      return NULL;
    }
  return s;
}

static char *
cgroup_of (const char *state, const char *id)
{
  libcrun_error_t err = NULL;
  libcrun_container_status_t st;
  memset (&st, 0, sizeof st);
  if (libcrun_read_container_status (&st, state, id, &err) < 0)
    {
      libcrun_error_release (&err);
      return NULL;
    }
  char *cg = st.cgroup_path ? strdup (st.cgroup_path) : NULL;
  libcrun_free_container_status (&st);
  return cg;
}

static void
test_state_and_update (const char *bundle, const char *state, unsigned int create_options)
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
  ctx.id = "capix";
  ctx.bundle = bundle;
  ctx.fifo_exec_wait_fd = -1;

  /* Reap what an earlier round left (a killed init that was our child). */
  while (waitpid (-1, NULL, WNOHANG) > 0)
    ;
  int ret = libcrun_container_create (&ctx, c, create_options, &err);
  CHECK_INT (ret, 0);
  if (ret < 0)
    {
      fprintf (stderr, "create: %s\n", err->msg);
      libcrun_error_release (&err);
      libcrun_container_free (c);
      return;
    }

  if (create_options & LIBCRUN_CREATE_OPTIONS_PREFORK)
    {
      /* The forked runtime created it: nothing here is our child. */
      errno = 0;
      CHECK_INT (waitpid (-1, NULL, WNOHANG), -1);
      CHECK_INT (errno, ECHILD);
    }

  int running = -1;
  const char *s = state_string (state, "capix", &running);
  CHECK_STR (s, "created");
  CHECK_INT (running, 1);

  char *cg = cgroup_of (state, "capix");
  CHECK (cg != NULL && cg[0] != '\0');

  /* update_from_values. */
  struct libcrun_update_value_s values[] = {
    { "memory", "limit", true, "33554432" },
    { "pids", "limit", true, "23" },
  };
  CHECK_INT (libcrun_container_update_from_values (&ctx, "capix", values, 2, &err), 0);
  if (err)
    fprintf (stderr, "update_from_values: %s\n", err->msg);
  libcrun_error_release (&err);
  if (cg)
    {
      CHECK_INT (read_cgroup ("memory", cg, "memory.limit_in_bytes"), 33554432);
      CHECK_INT (read_cgroup ("pids", cg, "pids.max"), 23);
    }

  struct libcrun_update_value_s bad[] = { { "memory", "bogus", true, "1" } };
  CHECK (libcrun_container_update_from_values (&ctx, "capix", bad, 1, &err) < 0);
  CHECK (err && err->status == EINVAL && strstr (err->msg, "memory.bogus") != NULL);
  libcrun_error_release (&err);
  struct libcrun_update_value_s bad2[] = { { "nosuch", "limit", true, "1" } };
  CHECK (libcrun_container_update_from_values (&ctx, "capix", bad2, 1, &err) < 0);
  CHECK (err && err->status == EINVAL && strstr (err->msg, "nosuch") != NULL);
  libcrun_error_release (&err);

  /* update_from_file. */
  char file[4096];
  snprintf (file, sizeof file, "%s/../resources.json", bundle);
  FILE *f = fopen (file, "we");
  CHECK (f != NULL);
  if (f)
    {
      fputs ("{\"memory\": {\"limit\": 67108864}, \"pids\": {\"limit\": 31}}", f);
      fclose (f);
    }
  CHECK_INT (libcrun_container_update_from_file (&ctx, "capix", file, &err), 0);
  if (err)
    fprintf (stderr, "update_from_file: %s\n", err->msg);
  libcrun_error_release (&err);
  if (cg)
    {
      CHECK_INT (read_cgroup ("memory", cg, "memory.limit_in_bytes"), 67108864);
      CHECK_INT (read_cgroup ("pids", cg, "pids.max"), 31);
    }
  unlink (file);
  CHECK (libcrun_container_update_from_file (&ctx, "capix", file, &err) < 0);
  CHECK (err && err->status == ENOENT && strstr (err->msg, file) != NULL);
  libcrun_error_release (&err);
  free (cg);

  /* running, paused, stopped. */
  CHECK_INT (libcrun_container_start (&ctx, "capix", &err), 0);
  libcrun_error_release (&err);
  s = state_string (state, "capix", &running);
  CHECK_STR (s, "running");
  CHECK_INT (running, 1);
  CHECK_INT (libcrun_container_pause (&ctx, "capix", &err), 0);
  libcrun_error_release (&err);
  s = state_string (state, "capix", &running);
  CHECK_STR (s, "paused");
  CHECK_INT (libcrun_container_unpause (&ctx, "capix", &err), 0);
  libcrun_error_release (&err);
  CHECK_INT (libcrun_container_kill (&ctx, "capix", "SIGKILL", &err), 0);
  libcrun_error_release (&err);
  for (int i = 0; i < 200; i++)
    {
      s = state_string (state, "capix", &running);
      if (s && strcmp (s, "stopped") == 0)
        break;
      usleep (20000);
    }
  CHECK_STR (s, "stopped");
  CHECK_INT (running, 0);
  CHECK_INT (libcrun_container_delete (&ctx, NULL, "capix", true, &err), 0);
  libcrun_error_release (&err);
  libcrun_container_free (c);
}

static void
test_null_args (void)
{
  libcrun_error_t err = NULL;
  libcrun_container_status_t st;
  memset (&st, 0, sizeof st);
  const char *s = NULL;
  int running = 0;
  CHECK (libcrun_get_container_state_string ("x", NULL, NULL, &s, &running, &err) < 0);
  CHECK (err && err->status == EINVAL);
  libcrun_error_release (&err);
  CHECK (libcrun_get_container_state_string (NULL, &st, NULL, &s, &running, &err) < 0);
  CHECK (err && err->status == EINVAL);
  libcrun_error_release (&err);
  libcrun_context_t ctx;
  memset (&ctx, 0, sizeof ctx);
  CHECK (libcrun_container_update_from_values (&ctx, "x", NULL, 1, &err) < 0);
  CHECK (err && err->status == EINVAL);
  libcrun_error_release (&err);
  CHECK (libcrun_container_update_from_file (&ctx, "x", NULL, &err) < 0);
  CHECK (err && err->status == EINVAL);
  libcrun_error_release (&err);
}

int
main (void)
{
  test_null_args ();
  const char *bundle = getenv ("CRUN_RS_BUNDLE");
  const char *state = getenv ("CRUN_RS_STATE");
  if (geteuid () != 0 || bundle == NULL || state == NULL)
    fprintf (stderr, "skipped: lifecycle part: needs root and CRUN_RS_BUNDLE/CRUN_RS_STATE\n");
  else
    {
      test_state_and_update (bundle, state, 0);
      test_state_and_update (bundle, state, LIBCRUN_CREATE_OPTIONS_PREFORK);
    }
  return check_report ("test_container_extra");
}
