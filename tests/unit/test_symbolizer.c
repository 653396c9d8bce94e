/* SPDX-License-Identifier: MIT */
/*
 * The symbolizer on its own (collector/symbolizer.c): a frame of this very
 * program is named on the thread, with its source line; a module whose path
 * is now a FIFO (a target can put one where a file it mapped was) names
 * nothing and holds nobody, neither the thread nor the caller's
 * frame-pointer check; without the thread, frames are named on the caller's.
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "symbolizer.h"

__attribute__((noinline)) int marker_function(int x)
{
	return x * 3 + 1;
}

struct seen {
	__s64 id;
	char function[128], file[PATH_MAX];
	int line, n;
};

static void keep(void *ctx, const struct fl_symbol *s)
{
	struct seen *v = ctx;

	for (int i = 0; i < 4; i++)
		if (v[i].id == s->frame_id) {
			snprintf(v[i].function, sizeof(v[i].function), "%s", s->function ? s->function : "");
			snprintf(v[i].file, sizeof(v[i].file), "%s", s->file ? s->file : "");
			v[i].line = s->line;
			v[i].n++;
		}
}

/* The file offset of addr in the file this program runs from (its PT_LOAD mapping). */
static unsigned long file_offset(const void *addr, char *path, size_t len)
{
	unsigned long lo, hi, off = 0, got = 0;
	char line[PATH_MAX + 128], perms[8], file[PATH_MAX];
	FILE *f = fopen("/proc/self/maps", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %4095s", &lo, &hi, perms, &off, file) == 5 &&
		    (unsigned long)addr >= lo && (unsigned long)addr < hi) {
			snprintf(path, len, "%s", file);
			got = (unsigned long)addr - lo + off;
		}
	if (f)
		fclose(f);
	return got;
}

static void run(bool threaded, const char *fifo)
{
	struct fl_symbolizer *sy = fl_symbolizer_new();
	struct seen v[4] = { { .id = 1 }, { .id = 2 } };
	char self[PATH_MAX] = "";
	unsigned long rel = file_offset((const void *)marker_function, self, sizeof(self));

	CHECK(sy && rel && self[0] == '/', "the symbolizer made, this program found in its maps (%s)", self);
	if (!sy || !rel)
		return;
	if (threaded)
		fl_symbolizer_start(sy, NULL, NULL);
	CHECK(fl_symbolizer_add(sy, 1, 1, self, rel, 0) == 0, "a frame of this program queued");
	CHECK(fl_symbolizer_add(sy, 2, 2, fifo, 4096, 0) == 0, "a frame of a FIFO queued");
	fl_symbolizer_take(sy, true, NULL, NULL, keep, v);
	CHECK(v[0].n == 1 && !strcmp(v[0].function, "marker_function") && strstr(v[0].file, "test_symbolizer.c") &&
	      v[0].line > 0, "%s: named %d time(s): %s at %s:%d", threaded ? "thread" : "caller", v[0].n,
	      v[0].function, v[0].file, v[0].line);
	CHECK(v[1].n == 0, "the FIFO's frame: no name (%d)", v[1].n);
	CHECK(fl_symbolizer_frame_pointer(sy, 2, fifo, 4096, 0) == FL_CALLERS_NO_UNWIND_INFO,
	      "the FIFO's frame pointer: no unwind information, no wait");
	fl_symbolizer_free(sy);
}

int main(int argc, char **argv)
{
	char fifo[PATH_MAX];

	snprintf(fifo, sizeof(fifo), "%s/test_symbolizer.fifo", argc > 1 ? argv[1] : "/tmp");
	unlink(fifo);
	if (mkfifo(fifo, 0600)) {
		perror("mkfifo");
		return 1;
	}
	alarm(60); /* a wait in open() on the FIFO ends the test as a failure */
	run(true, fifo);
	run(false, fifo);
	unlink(fifo);
	return failures ? 1 : 0;
}
