/* SPDX-License-Identifier: MIT */
/* procfs.c - reading /proc/PID (see procfs.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "hmap.h"
#include "procfs.h"
#include "strtab.h"

/* (dev, inode) -> interned path, of every file a maps snapshot showed */
static struct fl_hmap path_by_file;

static __u64 file_key(__u32 dev, __u64 inode)
{
	return fl_hash64(inode ^ ((__u64)dev << 40)) | 1;
}

/* st's device as the kernel's s_dev encodes it (major << 20 | minor), the way eBPF reports a call's file. */
static __u32 dev_of(const struct stat *st)
{
	return (__u32)(major(st->st_dev) << 20 | minor(st->st_dev));
}

/* Whether st is the file (dev, inode). */
static bool is_file(const struct stat *st, __u32 dev, __u64 inode)
{
	return st->st_ino == inode && dev_of(st) == dev;
}

int fl_procfs_parse_maps_line(const char *line, struct fl_vma *v)
{
	unsigned long long start, end, off, inode;
	char perms[5];
	unsigned dmaj, dmin;
	int pathpos = 0;
	if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu %n", &start, &end, perms, &off, &dmaj, &dmin,
		   &inode, &pathpos) < 7)
		return -1;
	memset(v, 0, sizeof(*v));
	v->start = start;
	v->end = end;
	v->offset = off;
	v->inode = inode;
	v->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
		  (perms[2] == 'x' ? PROT_EXEC : 0);
	v->flags = perms[3] == 's' ? MAP_SHARED : MAP_PRIVATE;
	const char *path = pathpos ? line + pathpos : "";
	char buf[4096];
	size_t len = strcspn(path, "\n");
	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	memcpy(buf, path, len);
	buf[len] = 0;
	if (!inode && !buf[0])
		v->flags |= MAP_ANONYMOUS;
	v->kind = fl_model_kind(buf, v->flags);
	v->path = buf[0] && buf[0] != '[' ? fl_strtab_intern(buf) : NULL;
	if (!v->path && buf[0] == '[' && strcmp(v->kind, "other") == 0)
		v->path = fl_strtab_intern(buf);
	if (!inode && !v->path)
		v->offset = 0;
	v->dev = dmaj << 20 | dmin;
	if (inode && v->path)
		fl_hmap_put(&path_by_file, file_key(v->dev, inode), (uintptr_t)v->path);
	return 0;
}

int fl_procfs_maps(pid_t pid, struct fl_vma **out, size_t *n)
{
	char path[64], line[4200];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	size_t cap = 64, k = 0;
	struct fl_vma *v = malloc(cap * sizeof(*v));
	while (v && fgets(line, sizeof(line), f)) {
		if (k == cap) {
			struct fl_vma *nv = realloc(v, (cap *= 2) * sizeof(*v));
			if (!nv) {
				free(v);
				v = NULL;
				break;
			}
			v = nv;
		}
		if (fl_procfs_parse_maps_line(line, &v[k]) == 0)
			k++;
	}
	fclose(f);
	if (!v)
		return -ENOMEM;
	*out = v;
	*n = k;
	return 0;
}

int fl_procfs_rss(pid_t pid, __u64 *anon, __u64 *file, __u64 *shmem, __u64 *swap)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	int found = 0;
	*anon = *file = *shmem = *swap = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long kb;
		if (sscanf(line, "RssAnon: %llu kB", &kb) == 1)
			*anon = kb << 10, found++;
		else if (sscanf(line, "RssFile: %llu kB", &kb) == 1)
			*file = kb << 10, found++;
		else if (sscanf(line, "RssShmem: %llu kB", &kb) == 1)
			*shmem = kb << 10, found++;
		else if (sscanf(line, "VmSwap: %llu kB", &kb) == 1)
			*swap = kb << 10, found++;
	}
	fclose(f);
	return found ? 0 : -ESRCH; /* a zombie has no Rss lines */
}

/*
 * /proc/PID/stat into buf (one read: a zombie's parent may reap it between
 * two) and its fields after comm, which may hold spaces and parentheses: they
 * restart after the last ')', so the state (field 3) is at the result + 1.
 */
static const char *stat_after_comm(pid_t pid, char *buf, size_t n, int *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f) {
		*err = -errno;
		return NULL;
	}
	size_t len = fread(buf, 1, n - 1, f);
	fclose(f);
	buf[len] = 0;
	char *p = strrchr(buf, ')');
	*err = -EINVAL;
	return p && p[1] == ' ' ? p + 1 : NULL;
}

/* min_flt (field 10) and maj_flt (field 12) from the fields after comm. */
static int stat_faults(const char *after, __u64 *min_flt, __u64 *maj_flt)
{
	unsigned long long mn, mj;
	if (sscanf(after + 1, "%*c %*d %*d %*d %*d %*d %*u %llu %*u %llu", &mn, &mj) != 2)
		return -EINVAL;
	*min_flt = mn;
	*maj_flt = mj;
	return 0;
}

int fl_procfs_faults(pid_t pid, __u64 *min_flt, __u64 *maj_flt)
{
	char buf[1024];
	int err;
	const char *after = stat_after_comm(pid, buf, sizeof(buf), &err);
	return after ? stat_faults(after, min_flt, maj_flt) : err;
}

int fl_procfs_zombie(pid_t pid, int *wait_status, __u64 faults[2])
{
	char buf[1024];
	int err;
	const char *p = stat_after_comm(pid, buf, sizeof(buf), &err);
	if (!p)
		return err == -EINVAL ? -ESRCH : err; /* unreadable as a zombie's: not one */
	if (p[1] != 'Z')
		return -ESRCH;
	__u64 mn, mj;
	if (stat_faults(p, &mn, &mj))
		return -EINVAL;
	/* exit_code is field 52 (proc(5)); state, field 3, is at p + 1 */
	const char *tok = p + 1;
	for (int field = 3; field < 52 && tok; field++) {
		tok = strchr(tok, ' ');
		tok = tok ? tok + 1 : NULL;
	}
	if (!tok || !*tok)
		return -EINVAL;
	*wait_status = atoi(tok);
	faults[0] = mn;
	faults[1] = mj;
	return 0;
}

char **fl_procfs_argv(pid_t pid)
{
	char path[64], buf[32768];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	if (!len)
		return NULL;
	if (buf[len - 1])
		buf[len++] = 0; /* cut short: terminate the last argument */
	size_t argc = 0;
	for (size_t i = 0; i < len; i++)
		argc += !buf[i];
	/* the pointers, then the strings, in one block */
	char **argv = malloc((argc + 1) * sizeof(*argv) + len);
	if (!argv)
		return NULL;
	char *strs = (char *)(argv + argc + 1);
	memcpy(strs, buf, len);
	for (size_t k = 0, i = 0; k < argc; k++, i += strlen(strs + i) + 1)
		argv[k] = strs + i;
	argv[argc] = NULL;
	return argv;
}

static const char *read_link(const char *link)
{
	char buf[4096];
	ssize_t n = readlink(link, buf, sizeof(buf) - 1);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	return fl_strtab_intern(buf);
}

/*
 * What a /proc link (map_files/RANGE, fd/N) names, interned, if it is still
 * the file (dev, inode) of the call (inode 0: unchecked); else NULL.  Read
 * late, the range may be mapped to another file and the fd number reused:
 * ld.so's fd for /etc/ld.so.cache named the file the program opened next
 * as fd 3.  Through an O_PATH descriptor of our own, so the file checked is
 * the file named.
 */
static const char *link_to(const char *link, __u32 dev, __u64 inode)
{
	char self[64];
	struct stat st;
	const char *p = NULL;
	int fd;

	if (!inode)
		return read_link(link);
	if ((fd = open(link, O_PATH | O_CLOEXEC)) < 0)
		return NULL;
	if (!fstat(fd, &st) && is_file(&st, dev, inode)) {
		snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
		p = read_link(self);
	}
	close(fd);
	return p;
}

void fl_procfs_know_file(const char *path, const char *name)
{
	char real[PATH_MAX];
	struct stat st;
	if (!path || stat(path, &st) || (!name && !(name = realpath(path, real))))
		return;
	fl_hmap_put(&path_by_file, file_key(dev_of(&st), st.st_ino),
		    (uintptr_t)fl_strtab_intern(name));
}

static int know_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	if (info->dlpi_name && info->dlpi_name[0] == '/') /* "" is the executable, linux-vdso.so.1 no file */
		fl_procfs_know_file(info->dlpi_name, NULL);
	return 0;
}

void fl_procfs_know_own_files(void)
{
	dl_iterate_phdr(know_object, NULL);
}

const char *fl_procfs_file_path(pid_t pid, __u32 dev, __u64 inode, const char *hint)
{
	const char *p = (const char *)fl_hmap_get(&path_by_file, file_key(dev, inode));
	struct stat st;
	struct fl_vma *maps;
	size_t n;
	if (p)
		return p;
	if (hint && hint[0] == '/' && stat(hint, &st) == 0 && is_file(&st, dev, inode)) {
		p = fl_strtab_intern(hint);
		fl_hmap_put(&path_by_file, file_key(dev, inode), (uintptr_t)p);
		return p;
	}
	if (fl_procfs_maps(pid, &maps, &n) == 0) /* learns every file pid maps now, if it is still there */
		free(maps);
	return (const char *)fl_hmap_get(&path_by_file, file_key(dev, inode));
}

const char *fl_procfs_mapped_path(pid_t pid, __u64 start, __u64 end, int fd, __u32 dev, __u64 inode)
{
	char link[128];
	const char *p = inode ? fl_procfs_file_path(pid, dev, inode, NULL) : NULL;
	if (p)
		return p;
	snprintf(link, sizeof(link), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)pid, (uint64_t)start,
		 (uint64_t)end);
	p = link_to(link, dev, inode);
	if (!p && fd >= 0) {
		snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)pid, fd);
		p = link_to(link, dev, inode);
		p = p && p[0] == '/' ? p : NULL;
	}
	if (p && inode) /* a process that maps it later may be gone before we look */
		fl_hmap_put(&path_by_file, file_key(dev, inode), (uintptr_t)p);
	return p;
}

const char *fl_procfs_call_path(pid_t pid, const struct fl_call *c)
{
	const __u64 *a = c->args;
	if (c->kind != FL_K_MMAP || c->err || (a[3] & MAP_ANONYMOUS))
		return NULL;
	__u64 start = (__u64)c->result, end = start + ((a[1] + 4095) & ~(__u64)4095);
	return fl_procfs_mapped_path(pid, start, end, (int)a[4], c->dev, c->inode);
}

const char *fl_procfs_exe(pid_t pid)
{
	char link[64];
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	return read_link(link);
}

/* ---- files by inode, for rows whose process was gone before we looked --- */

#define FIND_DEPTH 3          /* directory levels below each root */
#define FIND_BUDGET 50000     /* directory entries looked at, over all roots */

struct find {
	struct fl_hmap want;      /* file_key -> index + 1 of the first row wanting it */
	const __u32 *dev;
	const __u64 *inode;
	const char **out;
	size_t n, left;           /* rows, rows still without a path */
	long budget;
};

/* Names the wanted rows that are the file (dev, ino) at path. */
static void name_rows(struct find *f, __u32 dev, __u64 ino, const char *path)
{
	uintptr_t k = fl_hmap_get(&f->want, file_key(dev, ino));

	for (size_t i = k ? k - 1 : f->n; i < f->n; i++)
		if (!f->out[i] && f->dev[i] == dev && f->inode[i] == ino) {
			f->out[i] = fl_strtab_intern(path);
			f->left--;
		}
}

/*
 * Looks at the files below the directory fd (named path, on device dev),
 * depth levels down.  A directory entry carries its inode number: only a
 * wanted one, and a directory to go into, costs a stat (checking the
 * device: a mount point's entry shows the inode beneath it).
 */
static void find_in(struct find *f, int fd, char *path, size_t len, __u32 dev, int depth)
{
	DIR *d = fdopendir(fd);
	struct dirent *e;

	if (!d) {
		close(fd);
		return;
	}
	while (f->left && f->budget-- > 0 && (e = readdir(d))) {
		bool dir = e->d_type == DT_DIR || e->d_type == DT_UNKNOWN;
		size_t l = strlen(e->d_name);
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || len + 1 + l >= PATH_MAX ||
		    (!fl_hmap_get(&f->want, file_key(dev, e->d_ino)) && !(dir && depth > 0)) ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (dev_of(&st) != dev)
			continue;  /* another file system: not where this inode lives */
		path[len] = '/';
		memcpy(path + len + 1, e->d_name, l + 1);
		if (S_ISREG(st.st_mode)) {
			name_rows(f, dev, st.st_ino, path);
		} else if (S_ISDIR(st.st_mode) && depth > 0) {
			int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				find_in(f, sub, path, len + 1 + l, dev, depth - 1);
		}
		path[len] = 0;
	}
	closedir(d);
}

/* Searches the directory root (and depth levels below it) for the wanted files on device dev. */
static void find_below(struct find *f, const char *root, __u32 dev, int depth)
{
	char path[PATH_MAX];
	size_t len = strlen(root);
	int fd;

	if (len >= sizeof(path))
		return;
	memcpy(path, root, len + 1);
	if ((fd = open(*root ? root : "/", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0)
		find_in(f, fd, path, len, dev, depth);
}

/* Whether a file on device dev is still unnamed: searching another device cannot name it. */
static bool wanted_on(const struct find *f, __u32 dev)
{
	for (size_t i = 0; i < f->n; i++)
		if (!f->out[i] && f->dev[i] == dev)
			return true;
	return false;
}

/* The directory `levels` above a known path (2: "/usr/lib" for /usr/lib/x86_64-linux-gnu/libc.so.6). */
static bool ancestor(const char *path, int levels, char *out, size_t n)
{
	const char *b = path + strlen(path);

	while (levels-- > 0) {
		while (b > path && *--b != '/')
			;
		if (b == path)
			return false;
	}
	if ((size_t)(b - path) >= n)
		return false;
	memcpy(out, path, (size_t)(b - path));
	out[b - path] = 0;
	return true;
}

/*
 * The path of each (dev[i], inode[i]): a file some process of the run
 * mapped (its maps or map_files showed the path), else one found by
 * looking for that inode near the files the run mapped on that device:
 * in the top two levels of the file system first (/etc/ld.so.cache, which
 * the dynamic loader maps and unmaps), then in the directory of each
 * (libgcc_s beside libc), then below the directory two levels above each
 * (a program maps its libraries, locale files and caches from a few places;
 * /usr/lib holds both x86_64-linux-gnu/ and locale/).  (dev, inode) names one file, so a path
 * found is that file's (or a hard link to it); the search never follows a
 * symbolic link, stays on the device, and stops after FIND_BUDGET entries.
 */
void fl_procfs_resolve_files(const __u32 *dev, const __u64 *inode, size_t n, const char **out)
{
	struct find f = { .dev = dev, .inode = inode, .out = out, .n = n, .budget = FIND_BUDGET };
	char root[PATH_MAX], done[32][PATH_MAX];
	size_t ndone = 0;

	for (size_t i = 0; i < n; i++) {
		out[i] = (const char *)fl_hmap_get(&path_by_file, file_key(dev[i], inode[i]));
		if (!out[i] && !fl_hmap_get(&f.want, file_key(dev[i], inode[i])) &&
		    fl_hmap_put(&f.want, file_key(dev[i], inode[i]), i + 1))
			break;
		f.left += !out[i];
	}
	/* first by name the files ld.so and libc map before a shim can say their names: a stat each */
	static const char *const usual[] = { "/etc/ld.so.cache", "/usr/lib/locale/locale-archive" };
	for (size_t u = 0; f.left && u < sizeof(usual) / sizeof(usual[0]); u++) {
		struct stat st;
		if (!stat(usual[u], &st) && S_ISREG(st.st_mode))
			name_rows(&f, dev_of(&st), st.st_ino, usual[u]);
	}
	/* then the top of the file system (a few dozen entries; every directory below / when /tmp is large) */
	for (size_t i = 0; f.left && i < n; i++) {
		struct stat st;
		if (!out[i] && !stat("/", &st) && dev_of(&st) == dev[i]) {
			find_below(&f, "", dev[i], 1);  /* "" + "/etc": paths come out absolute */
			break;
		}
	}
	/*
	 * Then beside every file of the run on a device with a file still
	 * unnamed: its own directory (libgcc_s beside libc), then, deeper, the
	 * one two levels up.
	 */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t slot = 0; f.left && slot < path_by_file.cap; slot++) {
			const char *known = (const char *)path_by_file.vals[slot];
			struct stat st;
			__u32 on;
			bool seen = false;

			if (!path_by_file.keys[slot] || !known || known[0] != '/' ||
			    !ancestor(known, pass + 1, root, sizeof(root)) || stat(known, &st))
				continue;
			on = dev_of(&st);
			for (size_t k = 0; k < ndone && !seen; k++)
				seen = !strcmp(done[k], root);
			if (seen || ndone == sizeof(done) / sizeof(done[0]) || !wanted_on(&f, on))
				continue;
			snprintf(done[ndone++], sizeof(done[0]), "%s", root);
			find_below(&f, root, on, pass ? FIND_DEPTH : 0);
		}
	}
	fl_hmap_free(&f.want);
}
