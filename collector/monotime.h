/* SPDX-License-Identifier: MIT */
/*
 * monotime.h - the collector's clock: CLOCK_MONOTONIC in nanoseconds, the
 * clock of every record's time_ns (faultline.h), read by the loop, the
 * channel consumer and the smaps sampler alike.
 */
#ifndef FL_MONOTIME_H
#define FL_MONOTIME_H

#include <linux/types.h>
#include <time.h>

static inline __u64 fl_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

#endif /* FL_MONOTIME_H */
