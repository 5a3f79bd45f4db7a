/* SPDX-License-Identifier: Apache-2.0
 * Helpers shared by the console C tests: error checks, fd accounting, temp dirs and a raw
 * sendmsg "hostile peer" that can send any data and any control messages. */
#ifndef CRUN_RS_CONSOLE_UTIL_H
#define CRUN_RS_CONSOLE_UTIL_H

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libcrun.h>

#include "check.h"

/* Check that a call failed with -errno-1, *err->status == errno and a message containing
   `needle`; then release the error. */
#define CHECK_ERR(ret, err, errno_, needle)                                                    \
  do                                                                                           \
    {                                                                                          \
      CHECK_INT ((ret), -(errno_) - 1);                                                        \
      CHECK ((err) != NULL);                                                                   \
      if ((err) != NULL)                                                                       \
        {                                                                                      \
          CHECK_INT ((err)->status, (errno_));                                                 \
          CHECK_CONTAINS ((err)->msg, (needle));                                               \
          libcrun_error_release (&(err));                                                      \
        }                                                                                      \
      CHECK ((err) == NULL);                                                                   \
    }                                                                                          \
  while (0)

/* Check success (ret >= 0, no error set); print the error otherwise. */
#define CHECK_OK(ret, err)                                                                     \
  do                                                                                           \
    {                                                                                          \
      CHECK ((ret) >= 0);                                                                      \
      if ((err) != NULL)                                                                       \
        {                                                                                      \
          fprintf (stderr, "%s:%d: unexpected error: %s (%d)\n", __FILE__, __LINE__,           \
                   (err)->msg, (err)->status);                                                 \
          check_failures++;                                                                    \
          libcrun_error_release (&(err));                                                      \
        }                                                                                      \
    }                                                                                          \
  while (0)

static inline int
count_fds (void)
{
  int n = 0;
  struct dirent *de;
  DIR *d = opendir ("/proc/self/fd");
  if (d == NULL)
    return -1;
  while ((de = readdir (d)))
    if (de->d_name[0] != '.')
      n++;
  closedir (d);
  return n - 1; /* the DIR's own fd */
}

static inline int
is_cloexec (int fd)
{
  int fl = fcntl (fd, F_GETFD);
  return fl >= 0 && (fl & FD_CLOEXEC);
}

static inline int
fd_is_open (int fd)
{
  return fcntl (fd, F_GETFD) >= 0;
}

/* A fresh temporary directory (malloc'd path). */
static inline char *
make_tmpdir (const char *tag)
{
  char *p;
  if (asprintf (&p, "/tmp/crun-rs-%s-XXXXXX", tag) < 0)
    abort ();
  if (mkdtemp (p) == NULL)
    abort ();
  return p;
}

static inline void
rm_rf (const char *path)
{
  char *cmd;
  if (asprintf (&cmd, "rm -rf '%s'", path) < 0)
    abort ();
  if (system (cmd) != 0)
    fprintf (stderr, "warning: could not remove %s\n", path);
  free (cmd);
}

/* Hostile peer: one sendmsg with `len` data bytes and, if nfds > 0, one SCM_RIGHTS message
   holding `fds`; with `creds`, an SCM_CREDENTIALS message first. */
static inline ssize_t
raw_send (int sock, const void *data, size_t len, const int *fds, int nfds, int creds)
{
  union
  {
    char buf[CMSG_SPACE (sizeof (int) * 253) + CMSG_SPACE (sizeof (struct ucred))];
    struct cmsghdr align;
  } u;
  struct iovec iov = { .iov_base = (void *) data, .iov_len = len };
  struct msghdr msg = { 0 };
  struct cmsghdr *c;
  size_t clen = 0;
  ssize_t r;

  memset (&u, 0, sizeof u);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = u.buf;
  msg.msg_controllen = sizeof u.buf;
  c = CMSG_FIRSTHDR (&msg);
  if (creds)
    {
      struct ucred uc = { .pid = getpid (), .uid = getuid (), .gid = getgid () };
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_CREDENTIALS;
      c->cmsg_len = CMSG_LEN (sizeof uc);
      memcpy (CMSG_DATA (c), &uc, sizeof uc);
      clen += CMSG_SPACE (sizeof uc);
      c = (struct cmsghdr *) ((char *) c + CMSG_SPACE (sizeof uc));
    }
  if (nfds > 0)
    {
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN (sizeof (int) * nfds);
      memcpy (CMSG_DATA (c), fds, sizeof (int) * nfds);
      clen += CMSG_SPACE (sizeof (int) * nfds);
    }
  msg.msg_controllen = clen;
  if (clen == 0)
    msg.msg_control = NULL;
  do
    r = sendmsg (sock, &msg, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  return r;
}

/* Wait for a child and return 1 if it exited 0. */
static inline int
child_ok (pid_t pid)
{
  int st;
  while (waitpid (pid, &st, 0) < 0)
    if (errno != EINTR)
      return 0;
  if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
    {
      fprintf (stderr, "child %d failed: status 0x%x\n", (int) pid, st);
      return 0;
    }
  return 1;
}

#endif
