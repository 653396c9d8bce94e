/* SPDX-License-Identifier: MIT */
/* procfs.c - reading /proc/PID (see procfs.h). */
#include <errno.h>
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
	if (inode && v->path)
		fl_hmap_put(&path_by_file, file_key(dmaj << 20 | dmin, inode), (uintptr_t)v->path);
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

int fl_procfs_faults(pid_t pid, __u64 *min_flt, __u64 *maj_flt)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = 0;
	/* comm may hold spaces and parentheses: fields restart after the last ')' */
	char *p = strrchr(buf, ')');
	unsigned long long mn, mj;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %llu %*u %llu", &mn, &mj) != 2)
		return -EINVAL;
	*min_flt = mn;
	*maj_flt = mj;
	return 0;
}

int fl_procfs_zombie(pid_t pid, int *wait_status)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = 0;
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || p[2] != 'Z')
		return -ESRCH;
	/* exit_code is field 52 (proc(5)); state, field 3, is at p + 2 */
	char *tok = p + 2;
	for (int field = 3; field < 52 && tok; field++) {
		tok = strchr(tok, ' ');
		tok = tok ? tok + 1 : NULL;
	}
	if (!tok || !*tok)
		return -EINVAL;
	*wait_status = atoi(tok);
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

const char *fl_procfs_file_path(pid_t pid, __u32 dev, __u64 inode, const char *hint)
{
	const char *p = (const char *)fl_hmap_get(&path_by_file, file_key(dev, inode));
	struct stat st;
	struct fl_vma *maps;
	size_t n;
	if (p)
		return p;
	if (hint && hint[0] == '/' && stat(hint, &st) == 0 && st.st_ino == inode &&
	    (__u32)(major(st.st_dev) << 20 | minor(st.st_dev)) == dev) {
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
	p = read_link(link);
	if (p || fd < 0)
		return p;
	snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)pid, fd);
	p = read_link(link);
	return p && p[0] == '/' ? p : NULL;
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
