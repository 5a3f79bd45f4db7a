/* SPDX-License-Identifier: Apache-2.0 */
/* A test double for libkrun (build: gcc -shared -fPIC -Wl,-soname,libkrun.so.1).
 *
 * Environment:
 *   FAKE_KRUN_LOG=path        append one line per call: "<function> key=value ..."
 *   FAKE_KRUN_FAIL=fn:errno[,fn:errno]  make `fn` return -errno
 *   FAKE_KRUN_EXIT=n          krun_start_enter exits with status n; without it, it execs
 *                             process.args from /.krun_config.json natively (like the guest
 *                             init would) and returns -ENOEXEC if that fails.
 * Built with -DFAKE_TAG='"sev"' each log line starts with "[sev] " (flavour copies).
 * Like the real library: context ids start at 0, 0 vCPUs or 0 MiB RAM is -EINVAL, an unknown
 * context is -ENOENT, and krun_start_enter consumes the context. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_CTX 16
static bool ctx_live[MAX_CTX];
static int next_ctx;

static void
log_call (const char *fmt, ...)
{
  const char *path = getenv ("FAKE_KRUN_LOG");
#ifdef FAKE_TAG
  const char *tag = FAKE_TAG;
#else
  const char *tag = NULL;
#endif
  char buf[8192];
  int n = 0, fd;
  va_list ap;

  if (path == NULL)
    return;
  if (tag)
    n = snprintf (buf, sizeof buf, "[%s] ", tag);
  va_start (ap, fmt);
  n += vsnprintf (buf + n, sizeof buf - n - 1, fmt, ap);
  va_end (ap);
  if (n > (int) sizeof buf - 2)
    n = sizeof buf - 2;
  buf[n++] = '\n';
  fd = open (path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return;
  if (write (fd, buf, n) < 0)
    {
      /* nothing useful to do */
    }
  close (fd);
}

/* The errno FAKE_KRUN_FAIL asks `fn` to fail with, or 0. */
static int
injected (const char *fn)
{
  const char *spec = getenv ("FAKE_KRUN_FAIL");
  size_t len = strlen (fn);

  while (spec && *spec)
    {
      if (strncmp (spec, fn, len) == 0 && spec[len] == ':')
        return atoi (spec + len + 1);
      spec = strchr (spec, ',');
      if (spec)
        spec++;
    }
  return 0;
}

#define FAIL_IF_ASKED(fn)                 \
  do                                      \
    {                                     \
      int e_ = injected (fn);             \
      if (e_)                             \
        return -e_;                       \
    }                                     \
  while (0)

static bool
valid_ctx (uint32_t ctx)
{
  return ctx < MAX_CTX && ctx_live[ctx];
}

#define CHECK_CTX(ctx)          \
  do                            \
    {                           \
      if (! valid_ctx (ctx))    \
        return -ENOENT;         \
    }                           \
  while (0)

static const char *
s (const char *p)
{
  return p ? p : "(null)";
}

int32_t
krun_create_ctx (void)
{
  log_call ("krun_create_ctx");
  FAIL_IF_ASKED ("krun_create_ctx");
  if (next_ctx >= MAX_CTX)
    return -ENOMEM;
  ctx_live[next_ctx] = true;
  return next_ctx++;
}

int32_t
krun_free_ctx (uint32_t ctx)
{
  log_call ("krun_free_ctx ctx=%u", ctx);
  FAIL_IF_ASKED ("krun_free_ctx");
  CHECK_CTX (ctx);
  ctx_live[ctx] = false;
  return 0;
}

int32_t
krun_set_log_level (uint32_t level)
{
  log_call ("krun_set_log_level level=%u", level);
  FAIL_IF_ASKED ("krun_set_log_level");
  return 0;
}

int32_t
krun_set_vm_config (uint32_t ctx, uint8_t cpus, uint32_t ram_mib)
{
  log_call ("krun_set_vm_config ctx=%u cpus=%u ram_mib=%u", ctx, cpus, ram_mib);
  FAIL_IF_ASKED ("krun_set_vm_config");
  CHECK_CTX (ctx);
  if (cpus == 0 || ram_mib == 0)
    return -EINVAL;
  return 0;
}

int32_t
krun_add_virtiofs2 (uint32_t ctx, const char *tag, const char *path, uint64_t shm)
{
  log_call ("krun_add_virtiofs2 ctx=%u tag=%s path=%s shm=%llu", ctx, s (tag), s (path),
            (unsigned long long) shm);
  FAIL_IF_ASKED ("krun_add_virtiofs2");
  CHECK_CTX (ctx);
  return 0;
}

int32_t
krun_set_root (uint32_t ctx, const char *path)
{
  log_call ("krun_set_root ctx=%u path=%s", ctx, s (path));
  FAIL_IF_ASKED ("krun_set_root");
  CHECK_CTX (ctx);
  return 0;
}

int32_t
krun_set_workdir (uint32_t ctx, const char *path)
{
  log_call ("krun_set_workdir ctx=%u path=%s", ctx, s (path));
  FAIL_IF_ASKED ("krun_set_workdir");
  CHECK_CTX (ctx);
  return 0;
}

int32_t
krun_set_kernel (uint32_t ctx, const char *path, uint32_t format, const char *initrd, const char *cmdline)
{
  log_call ("krun_set_kernel ctx=%u path=%s format=%u initrd=%s cmdline=%s", ctx, s (path), format,
            s (initrd), s (cmdline));
  FAIL_IF_ASKED ("krun_set_kernel");
  CHECK_CTX (ctx);
  if (format > 5)
    return -EINVAL;
  return 0;
}

int32_t
krun_set_gpu_options (uint32_t ctx, uint32_t flags)
{
  log_call ("krun_set_gpu_options ctx=%u flags=%u", ctx, flags);
  FAIL_IF_ASKED ("krun_set_gpu_options");
  CHECK_CTX (ctx);
  return 0;
}

int32_t
krun_check_nested_virt (void)
{
  log_call ("krun_check_nested_virt");
  FAIL_IF_ASKED ("krun_check_nested_virt");
  return 1;
}

int32_t
krun_set_nested_virt (uint32_t ctx, bool enabled)
{
  log_call ("krun_set_nested_virt ctx=%u enabled=%d", ctx, enabled);
  FAIL_IF_ASKED ("krun_set_nested_virt");
  CHECK_CTX (ctx);
  return 0;
}

int32_t
krun_add_net_unixstream (uint32_t ctx, const char *path, int fd, uint8_t *const mac, uint32_t features,
                         uint32_t flags)
{
  (void) mac;
  log_call ("krun_add_net_unixstream ctx=%u path=%s fd=%d features=%u flags=%u", ctx, s (path), fd, features,
            flags);
  FAIL_IF_ASKED ("krun_add_net_unixstream");
  CHECK_CTX (ctx);
  if (path == NULL && fcntl (fd, F_GETFD) < 0)
    return -EBADF;
  return 0;
}

int32_t
krun_set_root_disk (uint32_t ctx, const char *path)
{
  log_call ("krun_set_root_disk ctx=%u path=%s", ctx, s (path));
  FAIL_IF_ASKED ("krun_set_root_disk");
  CHECK_CTX (ctx);
  return 0;
}

int32_t
krun_set_tee_config_file (uint32_t ctx, const char *path)
{
  log_call ("krun_set_tee_config_file ctx=%u path=%s", ctx, s (path));
  FAIL_IF_ASKED ("krun_set_tee_config_file");
  CHECK_CTX (ctx);
  return 0;
}

int32_t
krun_set_console_output (uint32_t ctx, const char *path)
{
  log_call ("krun_set_console_output ctx=%u path=%s", ctx, s (path));
  FAIL_IF_ASKED ("krun_set_console_output");
  CHECK_CTX (ctx);
  return 0;
}

int32_t
krun_set_exec (uint32_t ctx, const char *path, const char *const argv[], const char *const envp[])
{
  char buf[4096];
  size_t n = 0;
  int i;

  buf[0] = '\0';
  for (i = 0; argv && argv[i] && n < sizeof buf - 1; i++)
    n += snprintf (buf + n, sizeof buf - n, "%s%s", i ? "|" : "", argv[i]);
  log_call ("krun_set_exec ctx=%u path=%s argv=%s envc=%d", ctx, s (path), buf,
            envp ? (int) ({ int c = 0; while (envp[c]) c++; c; }) : -1);
  FAIL_IF_ASKED ("krun_set_exec");
  CHECK_CTX (ctx);
  return 0;
}

/* Parse a JSON string literal at *p (pointing at the opening quote) into a malloc'd string. */
static char *
json_string (const char **p)
{
  const char *q = *p + 1;
  char *out = malloc (strlen (q) + 1), *o = out;

  if (out == NULL)
    return NULL;
  while (*q && *q != '"')
    {
      if (*q == '\\' && q[1])
        {
          q++;
          switch (*q)
            {
            case 'n': *o++ = '\n'; break;
            case 't': *o++ = '\t'; break;
            case 'r': *o++ = '\r'; break;
            case 'u':
              {
                unsigned v = 0;
                sscanf (q + 1, "%4x", &v);
                *o++ = (char) (v < 0x80 ? v : '?');
                q += 4;
                break;
              }
            default: *o++ = *q; break;
            }
          q++;
        }
      else
        *o++ = *q++;
    }
  *o = '\0';
  *p = *q ? q + 1 : q;
  return out;
}

/* Exec process.args from /.krun_config.json, as libkrun's guest init would. */
static void
exec_config (void)
{
  static char data[1 << 20];
  char *argv[256];
  const char *p;
  int argc = 0;
  ssize_t n;
  int fd = open ("/.krun_config.json", O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return;
  n = read (fd, data, sizeof data - 1);
  close (fd);
  if (n <= 0)
    return;
  data[n] = '\0';
  p = strstr (data, "\"args\"");
  if (p == NULL)
    return;
  p = strchr (p, '[');
  if (p == NULL)
    return;
  p++;
  while (*p && *p != ']' && argc < 255)
    {
      if (*p == '"')
        argv[argc++] = json_string (&p);
      else
        p++;
    }
  argv[argc] = NULL;
  if (argc == 0)
    return;
  execv (argv[0], argv);
}

int32_t
krun_start_enter (uint32_t ctx)
{
  const char *status = getenv ("FAKE_KRUN_EXIT");

  log_call ("krun_start_enter ctx=%u", ctx);
  FAIL_IF_ASKED ("krun_start_enter");
  CHECK_CTX (ctx);
  ctx_live[ctx] = false;
  if (status)
    exit (atoi (status));
  exec_config ();
  return -ENOEXEC;
}
