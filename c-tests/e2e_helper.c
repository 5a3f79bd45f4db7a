/* e2e_helper: a static helper run inside containers by tests/isolation_e2e.rs.
 *
 * Build: gcc -static -O2 -o e2e c-tests/e2e_helper.c
 * Usage: /e2e COMMAND [ARGS...]
 *   hog MIB [wait] allocate and touch MIB MiB (1 MiB at a time); prints "survived" if not killed.
 *                  With `wait`, prints "ready" and first waits for a byte (or EOF) on stdin.
 *   forkbomb N     fork up to N children that sleep; prints "forked K errno E (NAME)" where K is the
 *                  number of successful forks and E the errno of the first failed fork (0 if none)
 *   forkhold N     like forkbomb, but the parent and its children stay (sleep until killed)
 *   mkdir PATH     prints "mkdir errno E" (0 on success)
 *   pause          sleep until killed
 *   hooklog FILE KIND   (an OCI hook) append "KIND <stdin>" as one line to FILE
 * Exits 0 unless the arguments are wrong.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int hog(long mib, int wait) {
  if (wait) {
    char c;
    printf("ready\n");
    if (read(0, &c, 1) < 0)
      perror("read stdin");
  }
  for (long i = 0; i < mib; i++) {
    char *p = malloc(1 << 20);
    if (!p) {
      printf("malloc failed after %ld MiB\n", i);
      return 0;
    }
    memset(p, 0x5a, 1 << 20);
  }
  printf("survived\n");
  return 0;
}

static int forkbomb(int n, int hold) {
  int ok = 0, err = 0;
  pid_t kids[4096];
  if (n > 4096)
    n = 4096;
  for (int i = 0; i < n; i++) {
    pid_t p = fork();
    if (p < 0) {
      err = errno;
      break;
    }
    if (p == 0) {
      pause();
      _exit(0);
    }
    kids[ok++] = p;
  }
  printf("forked %d errno %d (%s)\n", ok, err, err ? strerrorname_np(err) : "none");
  fflush(stdout);
  while (hold)
    pause();
  for (int i = 0; i < ok; i++) {
    kill(kids[i], SIGKILL);
    waitpid(kids[i], NULL, 0);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s COMMAND [ARGS...]\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IONBF, 0);
  const char *cmd = argv[1];
  if (!strcmp(cmd, "hog") && argc > 2)
    return hog(atol(argv[2]), argc > 3 && !strcmp(argv[3], "wait"));
  if (!strcmp(cmd, "forkbomb") && argc > 2)
    return forkbomb(atoi(argv[2]), 0);
  if (!strcmp(cmd, "forkhold") && argc > 2)
    return forkbomb(atoi(argv[2]), 1);
  if (!strcmp(cmd, "mkdir") && argc > 2) {
    int r = mkdir(argv[2], 0755);
    printf("mkdir errno %d\n", r < 0 ? errno : 0);
    return 0;
  }
  if (!strcmp(cmd, "hooklog") && argc > 3) {
    static char buf[1 << 16];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(0, buf + len, sizeof buf - 1 - len)) > 0)
      len += (size_t)n;
    while (len > 0 && buf[len - 1] == '\n')
      len--;
    buf[len] = 0;
    FILE *f = fopen(argv[2], "ae");
    if (!f) {
      perror(argv[2]);
      return 1;
    }
    fprintf(f, "%s %s\n", argv[3], buf);
    return fclose(f) == 0 ? 0 : 1;
  }
  if (!strcmp(cmd, "pause")) {
    for (;;)
      pause();
  }
  fprintf(stderr, "e2e_helper: unknown command `%s`\n", cmd);
  return 2;
}
