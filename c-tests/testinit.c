/* testinit: a static multi-call init for crun-rs runtime tests and the demo bundle.
 *
 * Build: gcc -static -O2 -o init c-tests/testinit.c
 * Usage: /init COMMAND [ARGS...]
 *   true | false | exit N | echo ARGS... | printenv VAR | cat FILE | readlink PATH
 *   isatty FD | cwd | id | groups | gethostname | getdomainname | pid | pause (exits on TERM/INT) | sleep SECS
 *   ls DIR | write FILE TEXT | exists PATH | caps | status-field NAME | umask
 *   rlimit-nofile | sid | ttyname FD | winsize | mountinfo PATH
 * Exits 0 on success, 1 with a message on stderr on failure.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <termios.h>
#include <unistd.h>

static int fail(const char *what) {
  fprintf(stderr, "testinit: %s: %s\n", what, strerror(errno));
  return 1;
}

static int cat(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail(path);
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    if (write(1, buf, (size_t)n) != n)
      return fail("write");
  close(fd);
  return n < 0 ? fail("read") : 0;
}

static int status_field(const char *name) {
  FILE *f = fopen("/proc/self/status", "re");
  if (!f)
    return fail("/proc/self/status");
  char line[512];
  size_t len = strlen(name);
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, name, len) == 0 && line[len] == ':') {
      char *v = line + len + 1;
      while (*v == ' ' || *v == '\t')
        v++;
      fputs(v, stdout);
      fclose(f);
      return 0;
    }
  }
  fclose(f);
  errno = ENOENT;
  return fail(name);
}

static void on_term(int sig) { _exit(128 + sig); }

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s COMMAND [ARGS...]\n", argv[0]);
    return 1;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "true"))
    return 0;
  if (!strcmp(cmd, "false"))
    return 1;
  if (!strcmp(cmd, "exit"))
    return argc > 2 ? atoi(argv[2]) : 0;
  if (!strcmp(cmd, "echo")) {
    for (int i = 2; i < argc; i++)
      printf("%s%s", argv[i], i + 1 < argc ? " " : "");
    printf("\n");
    return 0;
  }
  if (!strcmp(cmd, "printenv") && argc > 2) {
    const char *v = getenv(argv[2]);
    if (!v)
      return 1;
    printf("%s\n", v);
    return 0;
  }
  if (!strcmp(cmd, "cat") && argc > 2)
    return cat(argv[2]);
  if (!strcmp(cmd, "readlink") && argc > 2) {
    char buf[4096];
    ssize_t n = readlink(argv[2], buf, sizeof buf - 1);
    if (n < 0)
      return fail(argv[2]);
    buf[n] = 0;
    printf("%s\n", buf);
    return 0;
  }
  if (!strcmp(cmd, "isatty") && argc > 2) {
    printf("%s\n", isatty(atoi(argv[2])) ? "true" : "false");
    return 0;
  }
  if (!strcmp(cmd, "ttyname") && argc > 2) {
    char *t = ttyname(atoi(argv[2]));
    if (!t)
      return fail("ttyname");
    printf("%s\n", t);
    return 0;
  }
  if (!strcmp(cmd, "winsize")) {
    struct winsize ws;
    if (ioctl(0, TIOCGWINSZ, &ws) < 0)
      return fail("TIOCGWINSZ");
    printf("%u %u\n", ws.ws_row, ws.ws_col);
    return 0;
  }
  if (!strcmp(cmd, "cwd")) {
    char buf[4096];
    if (!getcwd(buf, sizeof buf))
      return fail("getcwd");
    printf("%s\n", buf);
    return 0;
  }
  if (!strcmp(cmd, "id")) {
    printf("%u %u\n", getuid(), getgid());
    return 0;
  }
  if (!strcmp(cmd, "groups")) {
    gid_t g[64];
    int n = getgroups(64, g);
    if (n < 0)
      return fail("getgroups");
    for (int i = 0; i < n; i++)
      printf("%s%u", i ? " " : "", g[i]);
    printf("\n");
    return 0;
  }
  if (!strcmp(cmd, "gethostname")) {
    char buf[256];
    if (gethostname(buf, sizeof buf) < 0)
      return fail("gethostname");
    printf("%s\n", buf);
    return 0;
  }
  if (!strcmp(cmd, "getdomainname")) {
    char buf[256];
    if (getdomainname(buf, sizeof buf) < 0)
      return fail("getdomainname");
    printf("%s\n", buf);
    return 0;
  }
  if (!strcmp(cmd, "pid")) {
    printf("%d\n", getpid());
    return 0;
  }
  if (!strcmp(cmd, "sid")) {
    printf("%d %d\n", getsid(0), getpid());
    return 0;
  }
  if (!strcmp(cmd, "umask")) {
    mode_t m = umask(0);
    printf("%04o\n", m);
    return 0;
  }
  if (!strcmp(cmd, "rlimit-nofile")) {
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) < 0)
      return fail("getrlimit");
    printf("%llu %llu\n", (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max);
    return 0;
  }
  if (!strcmp(cmd, "pause")) {
    /* As pid 1 of a pid namespace, default dispositions are ignored: exit on TERM/INT. */
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    for (;;)
      pause();
  }
  if (!strcmp(cmd, "sleep") && argc > 2) {
    sleep((unsigned)atoi(argv[2]));
    return 0;
  }
  if (!strcmp(cmd, "ls") && argc > 2) {
    DIR *d = opendir(argv[2]);
    if (!d)
      return fail(argv[2]);
    struct dirent *e;
    while ((e = readdir(d)))
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
        printf("%s\n", e->d_name);
    closedir(d);
    return 0;
  }
  if (!strcmp(cmd, "write") && argc > 3) {
    int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
      return fail(argv[2]);
    size_t l = strlen(argv[3]);
    if (write(fd, argv[3], l) != (ssize_t)l)
      return fail("write");
    close(fd);
    return 0;
  }
  if (!strcmp(cmd, "exists") && argc > 2) {
    struct stat st;
    printf("%s\n", lstat(argv[2], &st) == 0 ? "true" : "false");
    return 0;
  }
  if (!strcmp(cmd, "caps"))
    return status_field("CapEff");
  if (!strcmp(cmd, "status-field") && argc > 2)
    return status_field(argv[2]);
  fprintf(stderr, "testinit: unknown command `%s`\n", cmd);
  return 1;
}
