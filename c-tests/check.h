/* SPDX-License-Identifier: Apache-2.0
 * Minimal assertion helpers shared by the C tests: each failed check prints where and what,
 * and the program exits non-zero at the end (or at once with CHECK_FATAL). */
#ifndef CRUN_RS_CHECK_H
#define CRUN_RS_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                       \
  do                                                                                      \
    {                                                                                     \
      check_count++;                                                                      \
      if (!(cond))                                                                        \
        {                                                                                 \
          fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
          check_failures++;                                                               \
        }                                                                                 \
    }                                                                                     \
  while (0)

#define CHECK_INT(a, b)                                                                   \
  do                                                                                      \
    {                                                                                     \
      long long a_ = (long long) (a), b_ = (long long) (b);                               \
      check_count++;                                                                      \
      if (a_ != b_)                                                                       \
        {                                                                                 \
          fprintf (stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, \
                   #a, a_, #b, b_);                                                       \
          check_failures++;                                                               \
        }                                                                                 \
    }                                                                                     \
  while (0)

#define CHECK_STR(a, b)                                                                   \
  do                                                                                      \
    {                                                                                     \
      const char *a_ = (a), *b_ = (b);                                                    \
      check_count++;                                                                      \
      if (a_ == NULL || b_ == NULL || strcmp (a_, b_) != 0)                               \
        {                                                                                 \
          fprintf (stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__,  \
                   #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                           \
          check_failures++;                                                               \
        }                                                                                 \
    }                                                                                     \
  while (0)

#define CHECK_CONTAINS(hay, needle)                                                       \
  do                                                                                      \
    {                                                                                     \
      const char *h_ = (hay), *n_ = (needle);                                             \
      check_count++;                                                                      \
      if (h_ == NULL || strstr (h_, n_) == NULL)                                          \
        {                                                                                 \
          fprintf (stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, \
                   h_ ? h_ : "(null)", n_);                                               \
          check_failures++;                                                               \
        }                                                                                 \
    }                                                                                     \
  while (0)

static inline int
check_report (const char *name)
{
  printf ("%s: %d checks, %d failed\n", name, check_count, check_failures);
  return check_failures ? 1 : 0;
}

#endif
