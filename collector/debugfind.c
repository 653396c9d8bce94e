/* SPDX-License-Identifier: MIT */
/* debugfind.c - where a module's debug file is (see debugfind.h). */
#include <dlfcn.h>
#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <pthread.h>
#include <gelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "debugcache.h"
#include "debugfind.h"

#define DEBUG_ROOT "/usr/lib/debug" /* libdw's DEFAULT_DEBUGINFO_PATH ":.debug:/usr/lib/debug" */
#define MAX_CRC_BYTES (1l << 32)

bool fl_debuginfod_configured(void)
{
	const char *urls = getenv("DEBUGINFOD_URLS");

	return urls && urls[strspn(urls, " \t\n")]; /* libdebuginfod: URLs separated by white space */
}

/*
 * libdebuginfod's client, loaded at the first question (its ~30 libraries:
 * debugfind.h).  Asked by build ID only, once the places on this machine
 * came up empty: libdw's own search, which asks it last, opens its
 * candidates there blocking, and a FIFO a target put beside its program
 * held the recorder.  A client per question: the symbolizer's thread and
 * the recorder's both name frames at the end.  The file it returns is in
 * root's debuginfod cache, written by the client from the configured server.
 */
struct debuginfod_client;
static struct {
	struct debuginfod_client *(*begin)(void);
	int (*find_debuginfo)(struct debuginfod_client *c, const unsigned char *id, int n, char **path);
	void (*end)(struct debuginfod_client *c);
} client;

static void load_debuginfod(void)
{
	void *lib = dlopen("libdebuginfod.so.1", RTLD_LAZY); /* kept: a client may live on any thread */

	if (!lib)
		return;
	*(void **)&client.begin = dlsym(lib, "debuginfod_begin");
	*(void **)&client.end = dlsym(lib, "debuginfod_end");
	if (client.begin && client.end)
		*(void **)&client.find_debuginfo = dlsym(lib, "debuginfod_find_debuginfo");
}

static pthread_once_t client_once = PTHREAD_ONCE_INIT;

bool fl_debuginfod_load(void)
{
	return fl_debuginfod_configured() && !pthread_once(&client_once, load_debuginfod) && client.find_debuginfo;
}

static int ask_debuginfod(const unsigned char *id, int n, char **found)
{
	struct debuginfod_client *c;
	int fd;

	if (n <= 0 || !fl_debuginfod_load() || !(c = client.begin()))
		return -1;
	fd = client.find_debuginfo(c, id, n, found);
	client.end(c);
	return fd >= 0 ? fd : -1;
}

/* What a candidate must be to be the module's debug file. */
struct wanted {
	struct stat module;        /* the module's own file, which is not its debug file */
	const unsigned char *id;   /* its build ID, n bytes (n <= 0: none) */
	int n;
	GElf_Word crc;             /* without a build ID: the .gnu_debuglink CRC, 0 for none to check */
};

/* The CRC-32 of the file at fd (the .gnu_debuglink one is zlib's) is crc. */
static bool crc_matches(int fd, GElf_Word crc)
{
	unsigned char buf[1 << 16];
	uLong sum = crc32(0L, Z_NULL, 0);
	off_t at = 0;
	ssize_t got;

	while ((got = pread(fd, buf, sizeof(buf), at)) > 0) {
		sum = crc32(sum, buf, (uInt)got);
		at += got;
	}
	return got == 0 && (GElf_Word)sum == crc;
}

/*
 * The file at fd, of size bytes, is the debug file w wants (libdw's
 * validate()).  The places are named after a file the target mapped: a
 * file without a build ID larger than any debug file (a link to /proc/kcore
 * says 128 TiB) is not read whole for its CRC.
 */
static bool believed(int fd, off_t size, const struct wanted *w)
{
	if (w->n > 0) {
		Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
		const void *got = NULL;
		bool same = elf && dwelf_elf_gnu_build_id(elf, &got) == w->n && !memcmp(got, w->id, (size_t)w->n);

		elf_end(elf);
		return same;
	}
	return !w->crc || (size <= MAX_CRC_BYTES && crc_matches(fd, w->crc));
}

int fl_open_regular(const char *path, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd >= 0 && (fstat(fd, st) || !S_ISREG(st->st_mode))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* The file at path, open (fl_open_regular), when it is the one w wants (its name into *found); else -1. */
static int try_path(const char *path, const struct wanted *w, char **found)
{
	struct stat st;
	int fd = fl_open_regular(path, &st);

	if (fd < 0)
		return -1;
	if ((st.st_dev == w->module.st_dev && st.st_ino == w->module.st_ino) || !believed(fd, st.st_size, w) ||
	    !(*found = strdup(path))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* name in dir (dirlen bytes of it), or in root/dir when root is not NULL; -1 when it is not the one. */
static int try_in(const char *root, const char *dir, size_t dirlen, const char *name, const struct wanted *w,
		  char **found)
{
	char path[PATH_MAX];
	int len = root ? snprintf(path, sizeof(path), "%s/%.*s/%s", root, (int)dirlen, dir, name)
		       : snprintf(path, sizeof(path), "%.*s/%s", (int)dirlen, dir, name);

	return len > 0 && (size_t)len < sizeof(path) ? try_path(path, w, found) : -1;
}

/*
 * libdw's places for the debug file named link of the absolute file: beside
 * it, in its .debug/, under DEBUG_ROOT by its directory, then by each tail
 * of that directory (/usr/lib/debug/a/b/L, b/L, L for /a/b/F).  invented:
 * link is F.debug, made up for a module without a .gnu_debuglink, and F
 * itself is tried too where it cannot be the module.
 */
static int find_by_link(const char *file, const char *link, bool invented, const struct wanted *w, char **found)
{
	const char *base = strrchr(file, '/') + 1, *end = base - 1; /* the directory is [file, end) */
	char sub[NAME_MAX + sizeof(".debug/")];
	int fd = try_in(NULL, file, (size_t)(end - file), link, w, found);

	for (int i = 0; fd < 0 && i < 1 + invented; i++)
		if (snprintf(sub, sizeof(sub), ".debug/%s", i ? base : link) < (int)sizeof(sub))
			fd = try_in(NULL, file, (size_t)(end - file), sub, w, found);
	for (const char *slash = file; fd < 0 && slash; slash = memchr(slash + 1, '/', (size_t)(end - slash - 1))) {
		size_t len = (size_t)(end - slash - 1);

		if (slash >= end)
			break;
		fd = try_in(DEBUG_ROOT, slash + 1, len, link, w, found);
		if (fd < 0 && invented)
			fd = try_in(DEBUG_ROOT, slash + 1, len, base, w, found);
	}
	for (int i = 0; fd < 0 && i < 1 + invented; i++)
		fd = try_in(NULL, DEBUG_ROOT, strlen(DEBUG_ROOT), i ? base : link, w, found);
	return fd;
}

/* The places of find_by_link for file, then for the file it links to when it is a symbolic link. */
static int find_on_disk(const char *file, const char *link, GElf_Word crc, const struct wanted *want, char **found)
{
	char name[NAME_MAX + 1];
	struct wanted w = *want;
	bool invented = !link;
	int fd = -1;

	if (!file || file[0] != '/' || stat(file, &w.module))
		return -1;
	if (invented) { /* no .gnu_debuglink: F.debug, its CRC unknown */
		if (snprintf(name, sizeof(name), "%s.debug", strrchr(file, '/') + 1) >= (int)sizeof(name))
			return -1;
		link = name;
	}
	w.crc = invented ? 0 : crc;
	fd = find_by_link(file, link, invented, &w, found);
	if (fd < 0) {
		char *real = realpath(file, NULL);

		if (real && strcmp(real, file))
			fd = find_by_link(real, link, invented, &w, found);
		free(real);
	}
	return fd;
}

/*
 * mod's dwz alternate file, whose debug file (at file) names it altname in
 * its .gnu_debugaltlink, with the build ID it must carry: by that build ID
 * under /usr/lib/debug, then where libdw looks (beside the debug file, in
 * its .dwz/, under /usr/lib/debug and its .dwz/ by base name) and at
 * altname itself when it is absolute.  Each candidate as try_path opens
 * it: a debug file a target made can name a FIFO there, and libdw's own
 * search waited in open() for ever (e2e/debuglink).
 */
static int find_alt(Dwfl_Module *mod, const char *file, const char *altname, char **found)
{
	Dwarf_Addr bias;
	Dwarf *dw = dwfl_module_getdwarf(mod, &bias); /* set when an alternate file is asked for */
	const char *name, *base, *slash = file ? strrchr(file, '/') : NULL;
	char dwz[NAME_MAX + sizeof(".dwz/")];
	const void *id = NULL;
	ssize_t n = dw ? dwelf_dwarf_gnu_debugaltlink(dw, &name, &id) : -1;
	struct wanted w = { .id = id, .n = (int)n };
	int fd;

	if (n <= 0 || !altname)
		return -1;
	if ((fd = dwfl_build_id_find_debuginfo(mod, NULL, NULL, 0, NULL, NULL, 0, found)) >= 0)
		return fd;
	base = strrchr(altname, '/') ? strrchr(altname, '/') + 1 : altname;
	if (snprintf(dwz, sizeof(dwz), ".dwz/%s", base) >= (int)sizeof(dwz))
		return -1;
	if (altname[0] == '/')
		fd = try_path(altname, &w, found);
	else if (slash)
		fd = try_in(NULL, file, (size_t)(slash - file), altname, &w, found);
	if (fd < 0 && slash)
		fd = try_in(NULL, file, (size_t)(slash - file), dwz, &w, found);
	for (int i = 0; fd < 0 && i < 2; i++)
		fd = try_in(NULL, DEBUG_ROOT, strlen(DEBUG_ROOT), i ? dwz : base, &w, found);
	return fd >= 0 ? fd : ask_debuginfod(id, (int)n, found);
}

int fl_debug_find(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
		  const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
		  char **debuginfo_file_name)
{
	const char *debugfile = NULL;
	struct wanted w = { .n = 0 };
	GElf_Addr vaddr;
	int fd;

	(void)userdata;
	(void)base;
	/* a module with its debug file already asks for its dwz alternate file */
	dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, &debugfile);
	if (debugfile)
		return find_alt(mod, file_name, debuglink_file, debuginfo_file_name);
	if ((fd = fl_debugcache_open(mod, modname, debuginfo_file_name)) >= 0)
		return fd;
	w.n = dwfl_module_build_id(mod, &w.id, &vaddr);
	/* as dwfl_standard_find_debuginfo calls it: /usr/lib/debug/.build-id/NN/N...N.debug */
	if (w.n > 0 && (fd = dwfl_build_id_find_debuginfo(mod, NULL, NULL, 0, NULL, NULL, 0, debuginfo_file_name)) >= 0)
		return fd;
	fd = find_on_disk(file_name, debuglink_file, debuglink_crc, &w, debuginfo_file_name);
	return fd >= 0 ? fd : ask_debuginfod(w.id, w.n, debuginfo_file_name);
}
