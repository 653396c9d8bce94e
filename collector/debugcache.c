/* SPDX-License-Identifier: MIT */
/* debugcache.c - decompressed copies of debug files, by build ID (see debugcache.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "debugcache.h"

#define TOP_DIR "/var/cache/faultline"
#define CACHE_DIR TOP_DIR "/debug"
#define KEEP_FILES 8 /* the newest; a few libc versions, with their ld.so */

/* Root's alone: owned by root, written by no one else. */
static bool roots_alone(const struct stat *st)
{
	return st->st_uid == 0 && !(st->st_mode & 022);
}

/* dir exists (made if missing, with mode) and is a directory that is root's alone. */
static bool own_dir(const char *dir, mode_t mode)
{
	struct stat st;

	if (mkdir(dir, mode) && errno != EEXIST)
		return false;
	return !lstat(dir, &st) && S_ISDIR(st.st_mode) && roots_alone(&st);
}

/* The cache directory can be used: we are root and it is root's alone. */
static bool cache_dir(bool make)
{
	struct stat st;

	if (geteuid() != 0)
		return false;
	if (make)
		return own_dir(TOP_DIR, 0755) && own_dir(CACHE_DIR, 0700);
	return !lstat(CACHE_DIR, &st) && S_ISDIR(st.st_mode) && roots_alone(&st);
}

/* CACHE_DIR/HEX.debug for the n bytes of build ID id. false: none or too long. */
static bool cache_path(const unsigned char *id, int n, char *path, size_t len)
{
	int at = snprintf(path, len, CACHE_DIR "/");

	if (n <= 0 || n > 64)
		return false;
	for (int i = 0; i < n; i++)
		at += snprintf(path + at, len - (size_t)at, "%02x", id[i]);
	snprintf(path + at, len - (size_t)at, ".debug");
	return true;
}

/* Every section of elf lies within its size bytes (a file cut short reads as no DWARF at all). */
static bool whole(Elf *elf, off_t size)
{
	Elf_Scn *scn = NULL;
	GElf_Ehdr eh;
	GElf_Shdr sh;
	size_t n;

	if (!gelf_getehdr(elf, &eh) || elf_getshdrnum(elf, &n) || !n ||
	    eh.e_shoff + (GElf_Off)n * eh.e_shentsize > (GElf_Off)size)
		return false;
	while ((scn = elf_nextscn(elf, scn)))
		if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_NOBITS && sh.sh_offset + sh.sh_size > (GElf_Off)size))
			return false;
	return true;
}

/* The file at fd, of size bytes, is whole and carries build ID id (n bytes). */
static bool usable(int fd, off_t size, const unsigned char *id, int n)
{
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	const void *got = NULL;
	bool ok = elf && whole(elf, size) && dwelf_elf_gnu_build_id(elf, &got) == n && !memcmp(got, id, (size_t)n);

	elf_end(elf);
	return ok;
}

/* The cached copy at path for build ID id (n bytes), open, or -1 if there is none to believe. */
static int open_cached(const char *path, const unsigned char *id, int n)
{
	int fd = cache_dir(false) ? open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
	struct stat st;

	if (fd >= 0 && (fstat(fd, &st) || !S_ISREG(st.st_mode) || !roots_alone(&st) || !usable(fd, st.st_size, id, n))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

int fl_debugcache_open(Dwfl_Module *mod, const char *modname, char **debuginfo_file_name)
{
	const unsigned char *id;
	GElf_Addr vaddr;
	char path[sizeof(CACHE_DIR) + 2 * 64 + 16];
	int n = dwfl_module_build_id(mod, &id, &vaddr), fd;

	if (!cache_path(id, n, path, sizeof(path)) || (fd = open_cached(path, id, n)) < 0)
		return -1;
	if (!(*debuginfo_file_name = strdup(path))) {
		close(fd);
		return -1;
	}
	if (getenv("FAULTLINE_DEBUG"))
		fprintf(stderr, "faultline: debug file of %s: %s\n", modname, path);
	return fd;
}

/* Does the ELF file at path have a compressed section? */
static bool compressed(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf *elf = fd >= 0 ? elf_begin(fd, ELF_C_READ_MMAP, NULL) : NULL;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	bool any = false;

	while (elf && !any && (scn = elf_nextscn(elf, scn)))
		any = gelf_getshdr(scn, &sh) && (sh.sh_flags & SHF_COMPRESSED);
	elf_end(elf);
	if (fd >= 0)
		close(fd);
	return any;
}

/*
 * Write src (an ELF file whose sections libdw has decompressed in memory)
 * to fd, every section as it is now, laid out anew by libelf.  0 or -1.
 */
static int write_copy(Elf *src, int fd)
{
	Elf *dst = elf_begin(fd, ELF_C_WRITE, NULL);
	Elf_Scn *scn = NULL;
	size_t nph = 0, shstrndx;
	GElf_Ehdr eh;
	int rc = -1;

	if (!dst || !gelf_getehdr(src, &eh) || elf_getphdrnum(src, &nph) || elf_getshdrstrndx(src, &shstrndx) ||
	    !gelf_newehdr(dst, gelf_getclass(src)) || (nph && !gelf_newphdr(dst, nph)))
		goto out;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(src, (int)i, &ph) || !gelf_update_phdr(dst, (int)i, &ph))
			goto out;
	}
	while ((scn = elf_nextscn(src, scn))) {
		Elf_Scn *to = elf_newscn(dst);
		Elf_Data *in, *out;
		GElf_Shdr sh;

		if ((gelf_getshdr(scn, &sh) && (sh.sh_flags & SHF_COMPRESSED) && elf_compress(scn, 0, 0) < 0) ||
		    !to || !gelf_getshdr(scn, &sh) || !(in = elf_getdata(scn, NULL)) || !(out = elf_newdata(to)))
			goto out;
		*out = *in; /* the buffer stays src's: written before src ends */
		out->d_off = 0;
		if (!gelf_update_shdr(to, &sh))
			goto out;
	}
	eh.e_shstrndx = (GElf_Half)shstrndx; /* the sections keep their numbers */
	rc = gelf_update_ehdr(dst, &eh) && elf_update(dst, ELF_C_WRITE) >= 0 ? 0 : -1;
out:
	elf_end(dst);
	return rc;
}

/* Keep the KEEP_FILES newest files of the cache (by when they were written). */
static void evict(void)
{
	struct old { char name[160]; struct timespec at; } oldest;
	DIR *d;
	struct dirent *e;
	int n;

	do {
		if (!(d = opendir(CACHE_DIR)))
			return;
		n = 0;
		memset(&oldest, 0, sizeof(oldest));
		while ((e = readdir(d))) {
			struct stat st;
			if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(oldest.name) ||
			    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
				continue;
			if (!n++ || st.st_mtim.tv_sec < oldest.at.tv_sec ||
			    (st.st_mtim.tv_sec == oldest.at.tv_sec && st.st_mtim.tv_nsec < oldest.at.tv_nsec)) {
				snprintf(oldest.name, sizeof(oldest.name), "%s", e->d_name);
				oldest.at = st.st_mtim;
			}
		}
		if (n > KEEP_FILES)
			unlinkat(dirfd(d), oldest.name, 0);
		closedir(d);
	} while (n > KEEP_FILES + 1);
}

void fl_debugcache_keep(Dwfl_Module *mod)
{
	const char *mainfile = NULL, *debugfile = NULL;
	const unsigned char *id;
	char path[sizeof(CACHE_DIR) + 2 * 64 + 16], tmp[sizeof(path) + 16];
	GElf_Addr vaddr;
	Dwarf_Addr bias;
	int n = dwfl_module_build_id(mod, &id, &vaddr), fd;
	Dwarf *dw = dwfl_module_getdwarf(mod, &bias);
	Elf *elf = dw ? dwarf_getelf(dw) : NULL;

	dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, &mainfile, &debugfile);
	if (!elf || !debugfile || (mainfile && !strcmp(mainfile, debugfile)) ||
	    !strncmp(debugfile, CACHE_DIR "/", sizeof(CACHE_DIR)) || !cache_path(id, n, path, sizeof(path)) ||
	    !compressed(debugfile) || !cache_dir(true))
		return;
	/* a copy not to believe (damaged, not root's alone) is made again */
	if ((fd = open_cached(path, id, n)) >= 0) {
		close(fd);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	bool ok = !write_copy(elf, fd);
	if (close(fd) || !ok || rename(tmp, path)) /* atomic: a concurrent start reads one or the other */
		unlink(tmp);
	else
		evict();
}
