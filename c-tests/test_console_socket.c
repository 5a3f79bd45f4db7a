/* SPDX-License-Identifier: Apache-2.0
 * Sockets and fd passing: libcrun_create_socket_pair, libcrun_open_unix_domain_socket,
 * libcrun_open_unix_domain_client_socket, libcrun_send_fd_to_socket[_with_payload],
 * libcrun_receive_fd_from_socket[_with_payload]: round trips across fork(), long paths, every
 * bad argument, hostile peers (raw sendmsg), and fd accounting over 10,000 round trips. */
#include "console_util.h"

static void
test_pair (void)
{
  libcrun_error_t err = NULL;
  int pair[2] = { -1, -1 }, type = 0;
  socklen_t len = sizeof type;
  CHECK_OK (libcrun_create_socket_pair (pair, &err), err);
  CHECK (is_cloexec (pair[0]) && is_cloexec (pair[1]));
  CHECK_INT (getsockopt (pair[0], SOL_SOCKET, SO_TYPE, &type, &len), 0);
  CHECK_INT (type, SOCK_SEQPACKET);
  close (pair[0]);
  close (pair[1]);
  CHECK_ERR (libcrun_create_socket_pair (NULL, &err), err, EINVAL, "pair");
}

/* The child sends a file it opened; the parent reads the file through the received fd. */
static void
test_fork_round_trip (void)
{
  libcrun_error_t err = NULL;
  int pair[2], fd;
  char buf[64] = "";
  pid_t pid;
  CHECK_OK (libcrun_create_socket_pair (pair, &err), err);
  pid = fork ();
  if (pid == 0)
    {
      char tmpl[] = "/tmp/crun-rs-fdXXXXXX";
      int f = mkstemp (tmpl); /* not O_CLOEXEC: the received copy must be anyway */
      unlink (tmpl);
      if (f < 0 || write (f, "secret", 6) != 6 || lseek (f, 0, SEEK_SET) != 0)
        _exit (2);
      if (libcrun_send_fd_to_socket (pair[1], f, &err) < 0)
        _exit (3);
      if (libcrun_send_fd_to_socket_with_payload (pair[1], f, "hello", 5, &err) < 0)
        _exit (4);
      if (libcrun_send_fd_to_socket_with_payload (pair[1], f, NULL, 0, &err) < 0)
        _exit (5);
      _exit (0);
    }
  close (pair[1]);
  fd = libcrun_receive_fd_from_socket (pair[0], &err);
  CHECK_OK (fd, err);
  CHECK (is_cloexec (fd));
  CHECK_INT (read (fd, buf, sizeof buf - 1), 6);
  CHECK_STR (buf, "secret");
  close (fd);

  memset (buf, 0, sizeof buf);
  fd = libcrun_receive_fd_from_socket_with_payload (pair[0], buf, sizeof buf - 1, &err);
  CHECK_OK (fd, err);
  CHECK_STR (buf, "hello");
  CHECK (is_cloexec (fd));
  close (fd);
  memset (buf, 0, sizeof buf);
  fd = libcrun_receive_fd_from_socket_with_payload (pair[0], buf, sizeof buf - 1, &err);
  CHECK_OK (fd, err);
  CHECK_STR (buf, " "); /* an empty payload is sent as one space */
  close (fd);
  CHECK (child_ok (pid));
  /* The child is gone and closed its end. */
  CHECK_ERR (libcrun_receive_fd_from_socket (pair[0], &err), err, ECONNRESET,
             "connection closed before a file descriptor was received");
  close (pair[0]);
}

/* A directory path longer than sun_path (108). */
static char *
long_dir (const char *base)
{
  char *d = strdup (base);
  while (strlen (d) < 130)
    {
      char *n;
      if (asprintf (&n, "%s/0123456789abcdefghij", d) < 0)
        abort ();
      free (d);
      d = n;
      mkdir (d, 0700);
    }
  return d;
}

static void
test_long_paths (void)
{
  libcrun_error_t err = NULL;
  char *tmp = make_tmpdir ("longsock"), *dir = long_dir (tmp), *path;
  int l, c, a, fd;
  char buf[8] = "";
  if (asprintf (&path, "%s/console.sock", dir) < 0)
    abort ();
  CHECK (strlen (path) >= sizeof (((struct sockaddr_un *) 0)->sun_path));

  l = libcrun_open_unix_domain_socket (path, 0, &err);
  CHECK_OK (l, err);
  CHECK (is_cloexec (l));
  CHECK_INT (access (path, F_OK), 0);
  c = libcrun_open_unix_domain_client_socket (path, 0, &err);
  CHECK_OK (c, err);
  CHECK (is_cloexec (c));
  a = accept4 (l, NULL, NULL, SOCK_CLOEXEC);
  CHECK (a >= 0);
  CHECK_OK (libcrun_send_fd_to_socket_with_payload (c, 0, "xy", 2, &err), err);
  fd = libcrun_receive_fd_from_socket_with_payload (a, buf, sizeof buf - 1, &err);
  CHECK_OK (fd, err);
  CHECK_STR (buf, "xy");
  close (fd);
  close (a);
  close (c);
  /* Binding again is EADDRINUSE, naming the path. */
  CHECK_ERR (libcrun_open_unix_domain_socket (path, 0, &err), err, EADDRINUSE, path);
  close (l);
  unlink (path);

  /* Datagram sockets through the same routes. */
  l = libcrun_open_unix_domain_socket (path, 1, &err);
  CHECK_OK (l, err);
  c = libcrun_open_unix_domain_client_socket (path, 1, &err);
  CHECK_OK (c, err);
  CHECK_OK (libcrun_send_fd_to_socket (c, 1, &err), err);
  fd = libcrun_receive_fd_from_socket (l, &err);
  CHECK_OK (fd, err);
  close (fd);
  close (c);
  close (l);

  rm_rf (tmp);
  free (path);
  free (dir);
  free (tmp);
}

static void
test_bad_paths (void)
{
  libcrun_error_t err = NULL;
  char *tmp = make_tmpdir ("badsock"), *p, *longname;
  int fd;

  CHECK_ERR (libcrun_open_unix_domain_socket (NULL, 0, &err), err, EINVAL, "path");
  CHECK_ERR (libcrun_open_unix_domain_client_socket (NULL, 0, &err), err, EINVAL, "path");
  CHECK_ERR (libcrun_open_unix_domain_client_socket ("", 0, &err), err, EINVAL, "empty");

  if (asprintf (&p, "%s/missing.sock", tmp) < 0)
    abort ();
  CHECK_ERR (libcrun_open_unix_domain_client_socket (p, 0, &err), err, ENOENT, p);
  free (p);
  if (asprintf (&p, "%s/no/such/dir/x.sock", tmp) < 0)
    abort ();
  CHECK_ERR (libcrun_open_unix_domain_socket (p, 0, &err), err, ENOENT, p);
  free (p);

  /* Not a socket. */
  if (asprintf (&p, "%s/file", tmp) < 0)
    abort ();
  fd = open (p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  close (fd);
  CHECK_ERR (libcrun_open_unix_domain_client_socket (p, 0, &err), err, ENOTSOCK, "is not a socket");
  free (p);

  /* Too long for any route: a 200-byte file name fits neither sun_path nor /proc/self/fd/N/. */
  longname = malloc (201);
  memset (longname, 'n', 200);
  longname[200] = '\0';
  if (asprintf (&p, "%s/%s", tmp, longname) < 0)
    abort ();
  CHECK_ERR (libcrun_open_unix_domain_socket (p, 0, &err), err, ENAMETOOLONG, "too long");
  free (p);
  /* A component longer than NAME_MAX cannot even be opened O_PATH. */
  longname = realloc (longname, 301);
  memset (longname, 'n', 300);
  longname[300] = '\0';
  if (asprintf (&p, "%s/%s", tmp, longname) < 0)
    abort ();
  CHECK_ERR (libcrun_open_unix_domain_client_socket (p, 0, &err), err, ENAMETOOLONG, "connect socket to");
  free (p);
  free (longname);

  /* Permission denied: an unprivileged user connecting into a 0700 directory. */
  if (getuid () == 0)
    {
      pid_t pid;
      int l;
      if (asprintf (&p, "%s/priv.sock", tmp) < 0)
        abort ();
      l = libcrun_open_unix_domain_socket (p, 0, &err);
      CHECK_OK (l, err);
      CHECK_INT (chmod (tmp, 0700), 0);
      pid = fork ();
      if (pid == 0)
        {
          int r;
          check_failures = 0;
          if (setgid (65534) < 0 || setuid (65534) < 0)
            _exit (2);
          r = libcrun_open_unix_domain_client_socket (p, 0, &err);
          CHECK_ERR (r, err, EACCES, p);
          free (p); /* the child's copies, for valgrind's leak check */
          free (tmp);
          _exit (check_failures ? 1 : 0);
        }
      CHECK (child_ok (pid));
      close (l);
      free (p);
    }
  else
    fprintf (stderr, "skipped: permission-denied connect check needs root\n");

  rm_rf (tmp);
  free (tmp);
}

static void
test_bad_fds (void)
{
  libcrun_error_t err = NULL;
  int pair[2], closed, pipefd[2];
  char buf[4];
  CHECK_OK (libcrun_create_socket_pair (pair, &err), err);
  closed = dup (0);
  close (closed);

  CHECK_ERR (libcrun_send_fd_to_socket (-1, 0, &err), err, EBADF, "socket");
  CHECK_ERR (libcrun_send_fd_to_socket (closed, 0, &err), err, EBADF, "not open");
  CHECK_ERR (libcrun_send_fd_to_socket (pair[0], -1, &err), err, EBADF, "file descriptor to send");
  CHECK_ERR (libcrun_send_fd_to_socket (pair[0], closed, &err), err, EBADF, "file descriptor to send");
  CHECK_ERR (libcrun_send_fd_to_socket_with_payload (pair[0], 0, NULL, 3, &err), err, EINVAL, "payload");
  CHECK_ERR (libcrun_receive_fd_from_socket (-1, &err), err, EBADF, "socket");
  CHECK_ERR (libcrun_receive_fd_from_socket (closed, &err), err, EBADF, "not open");
  CHECK_ERR (libcrun_receive_fd_from_socket_with_payload (pair[1], NULL, 4, &err), err, EINVAL, "buf");
  CHECK_ERR (libcrun_receive_fd_from_socket_with_payload (pair[1], buf, 0, &err), err, EINVAL, "length 0");
  /* Not a socket at all. */
  CHECK_INT (pipe2 (pipefd, O_CLOEXEC), 0);
  CHECK_ERR (libcrun_receive_fd_from_socket (pipefd[0], &err), err, ENOTSOCK, "receive fd from socket");
  CHECK_ERR (libcrun_send_fd_to_socket (pipefd[1], 0, &err), err, ENOTSOCK, "send fd 0 to socket");
  close (pipefd[0]);
  close (pipefd[1]);
  /* A peer that went away: EPIPE, not SIGPIPE. */
  close (pair[1]);
  CHECK_ERR (libcrun_send_fd_to_socket (pair[0], 0, &err), err, EPIPE, "send fd 0");
  close (pair[0]);
}

/* Each hostile message: the receiver fails with the errno and message given, and no fd leaks. */
static void
hostile (int type, const void *data, size_t len, int nfds, int passcred, int creds, int close_peer,
         int want_errno, const char *want)
{
  libcrun_error_t err = NULL;
  int sv[2], fds[253], i, before, ret, on = 1;
  CHECK_INT (socketpair (AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
  if (passcred)
    CHECK_INT (setsockopt (sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on), 0);
  for (i = 0; i < nfds; i++)
    fds[i] = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  if (len > 0 || nfds > 0 || creds)
    CHECK (raw_send (sv[0], data, len, fds, nfds, creds) >= 0);
  for (i = 0; i < nfds; i++)
    close (fds[i]);
  if (close_peer)
    close (sv[0]);
  before = count_fds ();
  ret = libcrun_receive_fd_from_socket (sv[1], &err);
  CHECK_ERR (ret, err, want_errno, want);
  CHECK_INT (count_fds (), before);
  if (!close_peer)
    close (sv[0]);
  close (sv[1]);
}

static void
test_hostile_peers (void)
{
  /* Closes without sending anything. */
  hostile (SOCK_SEQPACKET, NULL, 0, 0, 0, 0, 1, ECONNRESET,
           "connection closed before a file descriptor was received");
  hostile (SOCK_STREAM, NULL, 0, 0, 0, 0, 1, ECONNRESET,
           "connection closed before a file descriptor was received");
  /* Data but no fd. */
  hostile (SOCK_SEQPACKET, "x", 1, 0, 0, 0, 0, EBADMSG, "no file descriptor");
  hostile (SOCK_STREAM, "/dev/ptmx", 9, 0, 0, 0, 1, EBADMSG, "no file descriptor");
  /* An fd with a zero-length payload: delivered on SEQPACKET (rejected), dropped by the
     kernel on STREAM (so the receiver sees a close). */
  hostile (SOCK_SEQPACKET, "", 0, 1, 0, 0, 0, EBADMSG, "zero-length payload");
  hostile (SOCK_STREAM, "", 0, 1, 0, 0, 1, ECONNRESET, "connection closed before");
  /* Two or more fds in one message. */
  hostile (SOCK_SEQPACKET, " ", 1, 2, 0, 0, 0, EBADMSG, "received 2 file descriptors");
  hostile (SOCK_STREAM, " ", 1, 3, 0, 0, 0, EBADMSG, "received 3 file descriptors");
  /* More fds than the control buffer holds: MSG_CTRUNC. */
  hostile (SOCK_SEQPACKET, " ", 1, 200, 0, 0, 0, EBADMSG, "MSG_CTRUNC");
  hostile (SOCK_STREAM, " ", 1, 253, 0, 0, 0, EBADMSG, "MSG_CTRUNC");
  /* A control message that is not SCM_RIGHTS (credentials, next to the fd). */
  hostile (SOCK_SEQPACKET, " ", 1, 1, 1, 1, 0, EBADMSG, "unexpected control message");
  hostile (SOCK_STREAM, " ", 1, 1, 1, 0, 0, EBADMSG, "unexpected control message");
  hostile (SOCK_SEQPACKET, " ", 1, 0, 1, 1, 0, EBADMSG, "unexpected control message");
}

static void
test_many_round_trips (void)
{
  libcrun_error_t err = NULL;
  int pair[2], i, before, devnull, bad = 0;
  devnull = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  CHECK_OK (libcrun_create_socket_pair (pair, &err), err);
  before = count_fds ();
  for (i = 0; i < 10000; i++)
    {
      int fd;
      if (libcrun_send_fd_to_socket (pair[0], devnull, &err) < 0)
        {
          bad++;
          libcrun_error_release (&err);
          continue;
        }
      fd = libcrun_receive_fd_from_socket (pair[1], &err);
      if (fd < 0)
        {
          bad++;
          libcrun_error_release (&err);
          continue;
        }
      if (!is_cloexec (fd))
        bad++;
      close (fd);
    }
  CHECK_INT (bad, 0);
  CHECK_INT (count_fds (), before);
  /* 1,000 rejected (two-fd) messages leak nothing either. */
  for (i = 0; i < 1000; i++)
    {
      int two[2] = { devnull, devnull };
      if (raw_send (pair[0], " ", 1, two, 2, 0) != 1)
        bad++;
      if (libcrun_receive_fd_from_socket (pair[1], &err) != -EBADMSG - 1)
        bad++;
      libcrun_error_release (&err);
    }
  CHECK_INT (bad, 0);
  CHECK_INT (count_fds (), before);
  close (pair[0]);
  close (pair[1]);
  close (devnull);
}

int
main (void)
{
  int before = count_fds ();
  test_pair ();
  test_fork_round_trip ();
  test_long_paths ();
  test_bad_paths ();
  test_bad_fds ();
  test_hostile_peers ();
  test_many_round_trips ();
  CHECK_INT (count_fds (), before);
  return check_report ("test_console_socket");
}
