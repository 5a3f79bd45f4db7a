/* SPDX-License-Identifier: Apache-2.0
 * The pty half of the console API: libcrun_new_terminal (and its devpts hardening, including
 * a container-style /dev with /dev/ptmx -> pts/ptmx), libcrun_set_stdio,
 * libcrun_set_raw/libcrun_restore_terminal and libcrun_terminal_setup_size. */
#include "console_util.h"

#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <termios.h>

/* Read what is available on fd within 2 s into buf (NUL-terminated).  A master whose slave is
   not open (yet) polls as POLLHUP and reads EIO: keep trying until data arrives. */
static ssize_t
read_some (int fd, char *buf, size_t len)
{
  int i;
  for (i = 0; i < 200; i++)
    {
      struct pollfd p = { .fd = fd, .events = POLLIN };
      ssize_t n;
      if (poll (&p, 1, 10) == 1 && (p.revents & POLLIN))
        {
          do
            n = read (fd, buf, len - 1);
          while (n < 0 && errno == EINTR);
          if (n > 0)
            {
              buf[n] = '\0';
              return n;
            }
        }
      usleep (10000);
    }
  buf[0] = '\0';
  return -1;
}

/* Read until `needle` shows up (earlier output, e.g. echoes, may come first). */
static int
read_until (int fd, const char *needle)
{
  char acc[1024] = "", buf[256];
  int i;
  for (i = 0; i < 10 && strstr (acc, needle) == NULL; i++)
    if (read_some (fd, buf, sizeof buf) > 0 && strlen (acc) + strlen (buf) < sizeof acc)
      strcat (acc, buf);
  if (strstr (acc, needle) == NULL)
    fprintf (stderr, "read_until: got \"%s\", wanted \"%s\"\n", acc, needle);
  return strstr (acc, needle) != NULL;
}

/* Whether fd is this process's controlling terminal: tty_nr in /proc/self/stat (not
   tcgetsid, whose ioctl valgrind does not know). */
static int
is_ctty (int fd)
{
  char buf[1024], *p;
  struct stat st;
  unsigned long tty_nr = 0, dev;
  FILE *f = fopen ("/proc/self/stat", "re");
  size_t n;
  if (f == NULL)
    return 0;
  n = fread (buf, 1, sizeof buf - 1, f);
  fclose (f);
  buf[n] = '\0';
  p = strrchr (buf, ')');
  if (p == NULL || sscanf (p + 2, "%*c %*d %*d %*d %lu", &tty_nr) != 1 || fstat (fd, &st) < 0)
    return 0;
  dev = (minor (st.st_rdev) & 0xff) | (major (st.st_rdev) << 8) | ((minor (st.st_rdev) & ~0xffUL) << 12);
  return tty_nr == dev;
}

static void
get_size (int fd, int *rows, int *cols)
{
  struct winsize ws = { 0 };
  CHECK_INT (ioctl (fd, TIOCGWINSZ, &ws), 0);
  *rows = ws.ws_row;
  *cols = ws.ws_col;
}

static void
test_new_terminal (void)
{
  libcrun_error_t err = NULL;
  char *path = NULL;
  int master = libcrun_new_terminal (&path, &err);
  CHECK_OK (master, err);
  CHECK (path != NULL && strncmp (path, "/dev/pts/", 9) == 0);
  CHECK (is_cloexec (master));
  CHECK (isatty (master));
  /* The master is opened O_RDWR|O_NOCTTY. */
  CHECK_INT (fcntl (master, F_GETFL) & O_ACCMODE, O_RDWR);
  /* The slave was never opened and closed behind the caller's back: the master is not hung up
     (a receiver polling it before the container opens the slave must not see POLLHUP). */
  {
    struct pollfd p = { .fd = master, .events = POLLIN };
    CHECK_INT (poll (&p, 1, 0), 0);
  }
  free (path);
  close (master);

  CHECK_ERR (libcrun_new_terminal (NULL, &err), err, EINVAL, "pty_path");
}

/* Write on the slave, read it back on the master, and the other way round. */
static void
test_echo (void)
{
  libcrun_error_t err = NULL;
  char *path = NULL, buf[256];
  int master = libcrun_new_terminal (&path, &err), slave;
  CHECK_OK (master, err);
  if (master < 0)
    return;
  slave = open (path, O_RDWR | O_NOCTTY | O_CLOEXEC);
  CHECK (slave >= 0);
  CHECK_INT (write (slave, "ping\n", 5), 5);
  CHECK (read_some (master, buf, sizeof buf) > 0);
  CHECK_CONTAINS (buf, "ping");
  CHECK_INT (write (master, "pong\n", 5), 5);
  CHECK (read_some (slave, buf, sizeof buf) > 0);
  CHECK_CONTAINS (buf, "pong");
  close (slave);
  close (master);
  free (path);
}

static void
test_size (void)
{
  libcrun_error_t err = NULL;
  char *path = NULL;
  int rows, cols, slave;
  int master = libcrun_new_terminal (&path, &err);
  pid_t pid;
  CHECK_OK (master, err);
  if (master < 0)
    return;
  slave = open (path, O_RDWR | O_NOCTTY | O_CLOEXEC);
  CHECK (slave >= 0);

  CHECK_OK (libcrun_terminal_setup_size (master, 24, 80, &err), err);
  get_size (slave, &rows, &cols);
  CHECK_INT (rows, 24);
  CHECK_INT (cols, 80);
  CHECK_OK (libcrun_terminal_setup_size (slave, 33, 132, &err), err);
  get_size (master, &rows, &cols);
  CHECK_INT (rows, 33);
  CHECK_INT (cols, 132);

  /* 0 with stdin not a terminal: nothing to copy, success, size unchanged. */
  pid = fork ();
  if (pid == 0)
    {
      check_failures = 0;
      int null = open ("/dev/null", O_RDONLY);
      dup2 (null, 0);
      CHECK_OK (libcrun_terminal_setup_size (master, 0, 0, &err), err);
      get_size (master, &rows, &cols);
      CHECK_INT (rows, 33);
      CHECK_INT (cols, 132);
      _exit (check_failures ? 1 : 0);
    }
  CHECK (child_ok (pid));

  /* 0 with a pty as stdin: the caller's size is copied (both values, as crun). */
  pid = fork ();
  if (pid == 0)
    {
      check_failures = 0;
      char *path2 = NULL;
      int m2 = libcrun_new_terminal (&path2, &err), s2;
      CHECK_OK (m2, err);
      CHECK_OK (libcrun_terminal_setup_size (m2, 42, 99, &err), err);
      s2 = open (path2, O_RDWR | O_NOCTTY);
      CHECK (s2 >= 0);
      CHECK_INT (dup2 (s2, 0), 0);
      CHECK (isatty (0));
      CHECK_OK (libcrun_terminal_setup_size (master, 0, 0, &err), err);
      get_size (slave, &rows, &cols);
      CHECK_INT (rows, 42);
      CHECK_INT (cols, 99);
      CHECK_OK (libcrun_terminal_setup_size (m2, 7, 11, &err), err);
      CHECK_OK (libcrun_terminal_setup_size (master, 0, 50, &err), err);
      get_size (slave, &rows, &cols);
      CHECK_INT (rows, 7);
      CHECK_INT (cols, 11);
      _exit (check_failures ? 1 : 0);
    }
  CHECK (child_ok (pid));

  CHECK_ERR (libcrun_terminal_setup_size (-1, 1, 1, &err), err, EBADF, "-1");
  {
    int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
    CHECK_ERR (libcrun_terminal_setup_size (null, 1, 1, &err), err, ENOTTY, "TIOCSWINSZ");
    close (null);
    /* A closed fd. */
    CHECK_ERR (libcrun_terminal_setup_size (null, 1, 1, &err), err, EBADF, "not open");
  }
  close (slave);
  close (master);
  free (path);
}

static void
test_raw (void)
{
  libcrun_error_t err = NULL;
  char *path = NULL;
  void *saved = NULL;
  struct termios before, raw, after;
  int master = libcrun_new_terminal (&path, &err), slave, null;
  CHECK_OK (master, err);
  if (master < 0)
    return;
  slave = open (path, O_RDWR | O_NOCTTY | O_CLOEXEC);
  CHECK_INT (tcgetattr (slave, &before), 0);
  CHECK (before.c_lflag & ICANON);

  CHECK_OK (libcrun_set_raw (slave, &saved, &err), err);
  CHECK (saved != NULL);
  CHECK_INT (tcgetattr (slave, &raw), 0);
  CHECK_INT (raw.c_lflag & (ICANON | ECHO | ISIG), 0);
  CHECK_INT (raw.c_iflag, 0);
  CHECK_INT (raw.c_oflag, 0);
  libcrun_restore_terminal (saved);
  CHECK_INT (tcgetattr (slave, &after), 0);
  CHECK_INT (after.c_lflag, before.c_lflag);
  CHECK_INT (after.c_iflag, before.c_iflag);
  CHECK_INT (after.c_oflag, before.c_oflag);
  CHECK_INT (after.c_cflag, before.c_cflag);

  /* Saved but only freed: the terminal stays raw. */
  saved = NULL;
  CHECK_OK (libcrun_set_raw (slave, &saved, &err), err);
  libcrun_free_terminal_status (saved);
  CHECK_INT (tcgetattr (slave, &raw), 0);
  CHECK_INT (raw.c_lflag & ICANON, 0);
  /* NULL `saved`: raw mode without a copy. */
  CHECK_INT (tcsetattr (slave, TCSANOW, &before), 0);
  CHECK_OK (libcrun_set_raw (slave, NULL, &err), err);
  CHECK_INT (tcgetattr (slave, &raw), 0);
  CHECK_INT (raw.c_lflag & ICANON, 0);
  libcrun_restore_terminal (NULL);
  libcrun_free_terminal_status (NULL);
  /* The saved status is malloc'd: a caller may also just free() it. */
  saved = NULL;
  CHECK_OK (libcrun_set_raw (slave, &saved, &err), err);
  CHECK (saved != NULL);
  free (saved);

  CHECK_ERR (libcrun_set_raw (-1, &saved, &err), err, EBADF, "-1");
  null = open ("/dev/null", O_RDWR | O_CLOEXEC);
  CHECK_ERR (libcrun_set_raw (null, &saved, &err), err, ENOTTY, "tcgetattr");
  close (null);
  CHECK_ERR (libcrun_set_raw (null, &saved, &err), err, EBADF, "not open");
  close (slave);
  close (master);
  free (path);
}

static void
test_set_stdio (void)
{
  libcrun_error_t err = NULL;
  char *path = NULL, buf[256];
  int master = libcrun_new_terminal (&path, &err);
  pid_t pid;
  CHECK_OK (master, err);
  if (master < 0)
    return;

  pid = fork ();
  if (pid == 0)
    {
      check_failures = 0;
      int ok = 1;
      char *name;
      setsid ();
      if (libcrun_set_stdio (path, &err) < 0)
        _exit (2);
      name = ttyname (0);
      ok &= name != NULL && strcmp (name, path) == 0;
      ok &= isatty (1) && isatty (2);
      ok &= is_ctty (0); /* it is our controlling terminal */
      ok &= !is_cloexec (0) && !is_cloexec (1) && !is_cloexec (2);
      if (ok)
        {
          const char *m = "from-child\n";
          if (write (1, m, strlen (m)) < 0)
            _exit (4);
          /* A session leader's exit hangs up its terminal and may discard unread output: wait
             until the parent has read it. */
          if (read (0, buf, sizeof buf) <= 0)
            _exit (5);
        }
      _exit (ok ? 0 : 3);
    }
  CHECK (read_some (master, buf, sizeof buf) > 0);
  CHECK_CONTAINS (buf, "from-child");
  CHECK_INT (write (master, "done\n", 5), 5);
  CHECK (child_ok (pid));

  /* With stdin closed, open() returns 0 itself: it must stay open and lose FD_CLOEXEC. */
  pid = fork ();
  if (pid == 0)
    {
      int before_fds, ok = 1;
      char *name;
      setsid ();
      close (0);
      before_fds = count_fds ();
      if (libcrun_set_stdio (path, &err) < 0)
        _exit (2);
      name = ttyname (0);
      ok &= name != NULL && strcmp (name, path) == 0;
      ok &= !is_cloexec (0) && isatty (1) && isatty (2);
      ok &= count_fds () == before_fds + 1; /* only fd 0 is new */
      if (ok && write (1, "fd0-ok\n", 7) != 7)
        _exit (4);
      if (ok && read (0, buf, sizeof buf) <= 0)
        _exit (5);
      _exit (ok ? 0 : 3);
    }
  CHECK (read_until (master, "fd0-ok"));
  CHECK_INT (write (master, "done\n", 5), 5);
  CHECK (child_ok (pid));

  /* Not a session leader: TIOCSCTTY fails with EPERM and says so. */
  pid = fork ();
  if (pid == 0)
    {
      check_failures = 0;
      int r = libcrun_set_stdio (path, &err);
      if (r != -EPERM - 1 || err == NULL || strstr (err->msg, "TIOCSCTTY") == NULL)
        _exit (1);
      if (is_ctty (0)) /* the pty was dup'd but did not become the controlling terminal */
        _exit (6);
      _exit (0);
    }
  CHECK (child_ok (pid));

  CHECK_ERR (libcrun_set_stdio (NULL, &err), err, EINVAL, "pty_path");
  CHECK_ERR (libcrun_set_stdio ("/nonexistent/pts/9", &err), err, ENOENT, "/nonexistent/pts/9");
  CHECK_ERR (libcrun_set_stdio ("/dev/null", &err), err, ENOTTY, "/dev/null");
  /* stdio untouched by the failures above. */
  CHECK (!isatty (1) || ttyname (1) == NULL || strcmp (ttyname (1), path) != 0);
  close (master);
  free (path);
}

/* In a private mount namespace: a tmpfs /dev with a devpts newinstance on /dev/pts and
   /dev/ptmx -> pts/ptmx (crun's test setup), then a mknod'ed ptmx, then hostile variants. */
static int
container_child (void)
{
  libcrun_error_t err = NULL;
  char *path = NULL, buf[64];
  int m, s, fd;

  check_failures = 0;
  if (unshare (CLONE_NEWNS) < 0 || mount ("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
    {
      perror ("unshare/mount private");
      return 1;
    }
  if (mount ("tmpfs", "/dev", "tmpfs", 0, "mode=0755") < 0 || mkdir ("/dev/pts", 0755) < 0
      || mount ("devpts", "/dev/pts", "devpts", 0, "newinstance,ptmxmode=0666,mode=0620") < 0
      || symlink ("pts/ptmx", "/dev/ptmx") < 0)
    {
      perror ("set up /dev");
      return 1;
    }
  m = libcrun_new_terminal (&path, &err);
  CHECK_OK (m, err);
  CHECK_STR (path, "/dev/pts/0");
  s = open ("/dev/pts/0", O_RDWR | O_NOCTTY);
  CHECK (s >= 0);
  CHECK_INT (write (s, "in-container\n", 13), 13);
  CHECK (read_some (m, buf, sizeof buf) > 0);
  CHECK_CONTAINS (buf, "in-container");
  close (s);
  close (m);
  free (path);

  /* A devtmpfs-style ptmx node next to the devpts instance. */
  unlink ("/dev/ptmx");
  CHECK_INT (mknod ("/dev/ptmx", S_IFCHR | 0666, makedev (5, 2)), 0);
  path = NULL;
  m = libcrun_new_terminal (&path, &err);
  CHECK_OK (m, err);
  CHECK (path != NULL && strncmp (path, "/dev/pts/", 9) == 0);
  close (m);
  free (path);

  /* Hostile: /dev/ptmx is a symlink to a regular file. */
  unlink ("/dev/ptmx");
  fd = open ("/dev/fake", O_CREAT | O_WRONLY, 0666);
  close (fd);
  CHECK_INT (symlink ("fake", "/dev/ptmx"), 0);
  CHECK_ERR (libcrun_new_terminal (&path, &err), err, EPERM, "is not the ptmx device");

  /* Hostile: /dev/ptmx -> another char device. */
  unlink ("/dev/ptmx");
  CHECK_INT (mknod ("/dev/null", S_IFCHR | 0666, makedev (1, 3)), 0);
  CHECK_INT (symlink ("null", "/dev/ptmx"), 0);
  CHECK_ERR (libcrun_new_terminal (&path, &err), err, EPERM, "is not the ptmx device");

  /* Hostile: the 5:2 node's sibling `pts` is not devpts (a tmpfs over it). */
  unlink ("/dev/ptmx");
  CHECK_INT (mknod ("/dev/ptmx", S_IFCHR | 0666, makedev (5, 2)), 0);
  CHECK_INT (mount ("tmpfs", "/dev/pts", "tmpfs", 0, NULL), 0);
  path = NULL;
  m = libcrun_new_terminal (&path, &err);
  CHECK (m < 0);
  CHECK (err != NULL);
  if (err)
    {
      fprintf (stderr, "(expected) %s: %d\n", err->msg, err->status);
      CHECK (err->status > 0);
      libcrun_error_release (&err);
    }
  if (m >= 0)
    close (m);
  free (path);
  return check_failures ? 1 : 0;
}

static void
test_container_devpts (void)
{
  pid_t pid;
  if (getuid () != 0)
    {
      fprintf (stderr, "skipped: container devpts test needs root\n");
      return;
    }
  pid = fork ();
  if (pid == 0)
    _exit (container_child ());
  CHECK (child_ok (pid));
}

int
main (void)
{
  int before = count_fds ();
  test_new_terminal ();
  test_echo ();
  test_size ();
  test_raw ();
  test_set_stdio ();
  test_container_devpts ();
  CHECK_INT (count_fds (), before);
  return check_report ("test_console_pty");
}
