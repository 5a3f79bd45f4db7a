/* SPDX-License-Identifier: Apache-2.0
 * The --console-socket protocol: libcrun_send_console_socket and libcrun_receive_console_fd.
 * A child creates a pty and sends the master; the parent receives it and reads what the child
 * wrote to the slave.  Also the wire format seen by a bare recvmsg receiver, timeouts, hostile
 * peers, bad arguments, "no connection without an fd", long paths and fd accounting. */
#include "console_util.h"

#include <poll.h>
#include <signal.h>
#include <sys/time.h>
#include <time.h>

static char *tmp;

static char *
sock_path (const char *name)
{
  char *p;
  if (asprintf (&p, "%s/%s", tmp, name) < 0)
    abort ();
  return p;
}

static ssize_t
read_master (int fd, char *buf, size_t len)
{
  int i;
  for (i = 0; i < 200; i++)
    {
      struct pollfd p = { .fd = fd, .events = POLLIN };
      if (poll (&p, 1, 10) == 1 && (p.revents & POLLIN))
        {
          ssize_t n = read (fd, buf, len - 1);
          if (n > 0)
            {
              buf[n] = '\0';
              return n;
            }
        }
      usleep (10000);
    }
  return -1;
}

static void
round_trip (const char *path)
{
  libcrun_error_t err = NULL;
  int l, m, go[2];
  char buf[256] = "";
  pid_t pid;

  l = libcrun_open_unix_domain_socket (path, 0, &err);
  CHECK_OK (l, err);
  CHECK_INT (pipe2 (go, O_CLOEXEC), 0);
  pid = fork ();
  if (pid == 0)
    {
      char *pty = NULL, c;
      int master, slave;
      close (l);
      master = libcrun_new_terminal (&pty, &err);
      if (master < 0)
        _exit (2);
      slave = open (pty, O_RDWR | O_NOCTTY | O_CLOEXEC);
      if (slave < 0 || libcrun_send_console_socket (path, master, &err) < 0)
        _exit (3);
      close (master);
      if (write (slave, "hello from the container\n", 25) != 25)
        _exit (4);
      /* Keep the slave open until the parent has read. */
      if (read (go[0], &c, 1) != 1)
        _exit (5);
      _exit (0);
    }
  close (go[0]);
  m = libcrun_receive_console_fd (l, 5000, &err);
  CHECK_OK (m, err);
  if (m >= 0)
    {
      CHECK (is_cloexec (m));
      CHECK (isatty (m));
      CHECK (read_master (m, buf, sizeof buf) > 0);
      CHECK_CONTAINS (buf, "hello from the container");
      close (m);
    }
  CHECK_INT (write (go[1], "x", 1), 1);
  close (go[1]);
  CHECK (child_ok (pid));
  close (l);
  unlink (path);
}

/* What a plain receiver (conmon, runc's recvtty) sees: one message, 1 byte ' ', one fd. */
static void
test_wire_format (void)
{
  libcrun_error_t err = NULL;
  char *path = sock_path ("wire.sock"), *pty = NULL, data[16];
  int l = libcrun_open_unix_domain_socket (path, 0, &err), c, m, nfds = 0, fd = -1;
  union
  {
    char buf[CMSG_SPACE (sizeof (int) * 4)];
    struct cmsghdr align;
  } u;
  struct iovec iov = { .iov_base = data, .iov_len = sizeof data };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf };
  struct cmsghdr *cm;
  ssize_t n;

  CHECK_OK (l, err);
  m = libcrun_new_terminal (&pty, &err);
  CHECK_OK (m, err);
  CHECK_OK (libcrun_send_console_socket (path, m, &err), err);
  c = accept4 (l, NULL, NULL, SOCK_CLOEXEC);
  CHECK (c >= 0);
  n = recvmsg (c, &msg, MSG_CMSG_CLOEXEC);
  CHECK_INT (n, 1);
  CHECK_INT (data[0], ' ');
  CHECK_INT (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC), 0);
  for (cm = CMSG_FIRSTHDR (&msg); cm; cm = CMSG_NXTHDR (&msg, cm))
    {
      CHECK_INT (cm->cmsg_level, SOL_SOCKET);
      CHECK_INT (cm->cmsg_type, SCM_RIGHTS);
      CHECK_INT (cm->cmsg_len, CMSG_LEN (sizeof (int)));
      memcpy (&fd, CMSG_DATA (cm), sizeof fd);
      nfds++;
    }
  CHECK_INT (nfds, 1);
  CHECK (fd >= 0 && isatty (fd));
  /* The sender closed the connection: EOF next. */
  CHECK_INT (read (c, data, sizeof data), 0);
  close (fd);
  close (c);
  close (m);
  close (l);
  free (pty);
  unlink (path);
  free (path);
}

static long
ms_since (const struct timespec *t0)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void
test_timeouts_and_hostile (void)
{
  libcrun_error_t err = NULL;
  char *path = sock_path ("hostile.sock");
  int l = libcrun_open_unix_domain_socket (path, 0, &err), c, before;
  struct timespec t0;
  struct pollfd p;
  CHECK_OK (l, err);
  before = count_fds ();

  /* Nobody connects. */
  clock_gettime (CLOCK_MONOTONIC, &t0);
  CHECK_ERR (libcrun_receive_console_fd (l, 150, &err), err, ETIMEDOUT, "timed out waiting for a connection");
  CHECK (ms_since (&t0) >= 140);
  CHECK (ms_since (&t0) < 3000);

  /* Connects and sends nothing. */
  c = libcrun_open_unix_domain_client_socket (path, 0, &err);
  CHECK_OK (c, err);
  CHECK_ERR (libcrun_receive_console_fd (l, 100, &err), err, ETIMEDOUT, "timed out waiting for the console file descriptor");
  close (c);

  /* Connects and closes without an fd (what monitors must not get from us). */
  c = libcrun_open_unix_domain_client_socket (path, 0, &err);
  close (c);
  CHECK_ERR (libcrun_receive_console_fd (l, 1000, &err), err, ECONNRESET,
             "connection closed before a file descriptor was received");

  /* Sends data only. */
  c = libcrun_open_unix_domain_client_socket (path, 0, &err);
  CHECK_INT (raw_send (c, "/dev/ptmx", 9, NULL, 0, 0), 9);
  close (c);
  CHECK_ERR (libcrun_receive_console_fd (l, 1000, &err), err, EBADMSG, "no file descriptor");

  /* Sends two fds. */
  c = libcrun_open_unix_domain_client_socket (path, 0, &err);
  {
    int two[2] = { 0, 1 };
    CHECK_INT (raw_send (c, " ", 1, two, 2, 0), 1);
  }
  close (c);
  CHECK_ERR (libcrun_receive_console_fd (l, 1000, &err), err, EBADMSG, "received 2 file descriptors");
  CHECK_INT (count_fds (), before);

  /* A runc-style payload ("/dev/ptmx") is accepted. */
  c = libcrun_open_unix_domain_client_socket (path, 0, &err);
  {
    int one = 0, fd;
    CHECK_INT (raw_send (c, "/dev/ptmx", 9, &one, 1, 0), 9);
    close (c);
    fd = libcrun_receive_console_fd (l, 1000, &err);
    CHECK_OK (fd, err);
    if (fd >= 0)
      close (fd);
  }

  /* Bad master: fails before connecting, so the listener sees no connection at all. */
  CHECK_ERR (libcrun_send_console_socket (path, -1, &err), err, EBADF, "pty master");
  {
    int closed = dup (0);
    close (closed);
    CHECK_ERR (libcrun_send_console_socket (path, closed, &err), err, EBADF, "pty master");
  }
  p.fd = l;
  p.events = POLLIN;
  p.revents = 0;
  CHECK_INT (poll (&p, 1, 50), 0);

  CHECK_ERR (libcrun_send_console_socket (NULL, 0, &err), err, EINVAL, "console_socket");
  {
    char *missing = sock_path ("missing.sock");
    CHECK_ERR (libcrun_send_console_socket (missing, 0, &err), err, ENOENT, missing);
    free (missing);
  }
  CHECK_ERR (libcrun_receive_console_fd (-1, 10, &err), err, EBADF, "listener");
  CHECK_INT (count_fds (), before);
  close (l);
  unlink (path);
  free (path);
}

static volatile sig_atomic_t alarms;

static void
on_alarm (int sig)
{
  (void) sig;
  alarms++;
}

/* A timer interrupts the blocking calls every 2 ms (no SA_RESTART): they must retry EINTR. */
static void
test_eintr (void)
{
  libcrun_error_t err = NULL;
  char *path = sock_path ("eintr.sock");
  struct sigaction sa, old;
  struct itimerval it = { { 0, 2000 }, { 0, 2000 } }, off = { { 0, 0 }, { 0, 0 } };
  struct timespec t0;
  int l = libcrun_open_unix_domain_socket (path, 0, &err), fd, pair[2];
  pid_t pid;
  CHECK_OK (l, err);
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigemptyset (&sa.sa_mask);
  sa.sa_flags = 0;
  CHECK_INT (sigaction (SIGALRM, &sa, &old), 0);
  CHECK_INT (setitimer (ITIMER_REAL, &it, NULL), 0);

  clock_gettime (CLOCK_MONOTONIC, &t0);
  CHECK_ERR (libcrun_receive_console_fd (l, 200, &err), err, ETIMEDOUT, "timed out");
  CHECK (ms_since (&t0) >= 190);

  pid = fork ();
  if (pid == 0)
    {
      char *pty = NULL;
      int m;
      usleep (100000);
      int ok;
      m = libcrun_new_terminal (&pty, &err);
      ok = m >= 0 && libcrun_send_console_socket (path, m, &err) == 0;
      free (pty); /* the child's copies, for valgrind's leak check */
      free (path);
      free (tmp);
      _exit (ok ? 0 : 1);
    }
  fd = libcrun_receive_console_fd (l, 5000, &err);
  CHECK_OK (fd, err);
  if (fd >= 0)
    close (fd);
  CHECK (child_ok (pid));

  CHECK_OK (libcrun_create_socket_pair (pair, &err), err);
  pid = fork ();
  if (pid == 0)
    {
      int ok;
      usleep (100000);
      ok = libcrun_send_fd_to_socket (pair[1], 0, &err) == 0;
      free (path);
      free (tmp);
      _exit (ok ? 0 : 1);
    }
  fd = libcrun_receive_fd_from_socket (pair[0], &err);
  CHECK_OK (fd, err);
  if (fd >= 0)
    close (fd);
  CHECK (child_ok (pid));

  CHECK_INT (setitimer (ITIMER_REAL, &off, NULL), 0);
  /* The handler stays installed: a SIGALRM generated before the timer stopped may still be
     delivered late (valgrind defers signals), and the default action would kill us. */
  (void) old;
  CHECK (alarms > 20);
  close (pair[0]);
  close (pair[1]);
  close (l);
  unlink (path);
  free (path);
}

static void
test_many_handoffs (void)
{
  libcrun_error_t err = NULL;
  char *path = sock_path ("many.sock"), *pty = NULL;
  int l = libcrun_open_unix_domain_socket (path, 0, &err), m, i, bad = 0, before;
  CHECK_OK (l, err);
  m = libcrun_new_terminal (&pty, &err);
  CHECK_OK (m, err);
  before = count_fds ();
  for (i = 0; i < 1000; i++)
    {
      int fd;
      if (libcrun_send_console_socket (path, m, &err) < 0)
        {
          bad++;
          libcrun_error_release (&err);
          continue;
        }
      fd = libcrun_receive_console_fd (l, 1000, &err);
      if (fd < 0)
        {
          bad++;
          libcrun_error_release (&err);
          continue;
        }
      close (fd);
    }
  CHECK_INT (bad, 0);
  CHECK_INT (count_fds (), before);
  close (m);
  close (l);
  free (pty);
  unlink (path);
  free (path);
}

int
main (void)
{
  int before = count_fds ();
  char *dir, *longp;
  tmp = make_tmpdir ("handoff");
  {
    char *p = sock_path ("console.sock");
    round_trip (p);
    free (p);
  }
  /* The same through a console socket path longer than sun_path. */
  dir = strdup (tmp);
  while (strlen (dir) < 120)
    {
      char *n;
      if (asprintf (&n, "%s/0123456789abcdefghij", dir) < 0)
        abort ();
      free (dir);
      dir = n;
      mkdir (dir, 0700);
    }
  if (asprintf (&longp, "%s/console.sock", dir) < 0)
    abort ();
  round_trip (longp);
  free (longp);
  free (dir);
  test_wire_format ();
  test_timeouts_and_hostile ();
  test_eintr ();
  test_many_handoffs ();
  rm_rf (tmp);
  free (tmp);
  CHECK_INT (count_fds (), before);
  return check_report ("test_console_handoff");
}
