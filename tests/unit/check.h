/* SPDX-License-Identifier: MIT */
/* What the unit tests share: CHECK counts a failure and says where, so one
 * run reports every failed expectation, not just the first. */
#ifndef FL_UNIT_CHECK_H
#define FL_UNIT_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond, ...)                                                  \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                     \
			fputc('\n', stderr);                              \
			failures++;                                       \
		}                                                         \
	} while (0)

#endif
