/* SPDX-License-Identifier: Apache-2.0
 * Why the sign of an errno matters: strerror(-EINVAL) is "Unknown error -22".  An error built
 * through libcrun from a negative errno (as libkrun returns them) must still read
 * "Invalid argument". */
#include <errno.h>
#include <unistd.h>

#include <libcrun.h>

#include "check.h"

int
main (void)
{
  libcrun_error_t err = NULL;
  libcrun_error_t *errp = &err;
  char line[256] = "";
  FILE *f = tmpfile ();
  int ret;

  printf ("strerror(EINVAL)  = \"%s\"\n", strerror (EINVAL));
  printf ("strerror(-EINVAL) = \"%s\"\n", strerror (-EINVAL));
  CHECK_STR (strerror (EINVAL), "Invalid argument");
  CHECK_STR (strerror (-EINVAL), "Unknown error -22");

  /* what krun_start_enter returns on failure, passed straight in */
  ret = libcrun_make_error (&err, -EINVAL, "could not start krun");
  CHECK_INT (ret, -EINVAL - 1);
  CHECK_INT (err->status, EINVAL);
  libcrun_error_write_warning_and_release (f, &errp);
  rewind (f);
  if (fgets (line, sizeof line, f) == NULL)
    line[0] = '\0';
  printf ("libcrun renders     \"%.*s\"\n", (int) strcspn (line, "\n"), line);
  CHECK_STR (line, "could not start krun: Invalid argument\n");
  CHECK (strstr (line, "Unknown error") == NULL);
  fclose (f);
  return check_report ("errno_sign");
}
