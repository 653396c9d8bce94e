/* SPDX-License-Identifier: MIT */
/* lib_map for e2e_unwind: built twice, with frames of FRAME bytes (no frame pointer). */
#include <stddef.h>

void *lib_map(void *(*map)(size_t));

void *lib_map(void *(*map)(size_t))
{
	volatile char frame[FRAME];
	void *page;

	frame[0] = 1;
	page = map(4096);
	frame[FRAME - 1] = frame[0];
	return page;
}
