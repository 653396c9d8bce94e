/* SPDX-License-Identifier: MIT */
/*
 * bootcache.c - per-boot answers about the kernel, kept in /run/faultline
 * (see bootcache.h): the BTF probe's results, and the minimal BTF that
 * libbpf relocates the BPF object against.
 *
 * Measured on 6.18 (bench/peers.py start-up): parsing the kernel's BTF for
 * the probe cost 10-25 ms, and libbpf's CO-RE relocation, which scans all
 * of the kernel's types once per type name the object uses, 30-35 ms of
 * every `faultline record`.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <linux/types.h>
#include "bootcache.h"

#define CACHE_DIR "/run/faultline"
#define FACTS_FILE CACHE_DIR "/btf-facts-v2"

/* This boot and kernel: "BOOT_ID RELEASE". 0 or -1. */
static int boot_key(char *out, size_t len)
{
	char boot[64] = "";
	struct utsname u;
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	if (!f)
		return -1;
	if (!fgets(boot, sizeof(boot), f))
		boot[0] = 0;
	fclose(f);
	boot[strcspn(boot, "\n")] = 0;
	if (!boot[0] || uname(&u))
		return -1;
	snprintf(out, len, "%s %s", boot, u.release);
	return 0;
}

/* Root's alone: owned by root, written by no one else. */
static int roots_alone(const struct stat *st)
{
	return st->st_uid == 0 && !(st->st_mode & 022);
}

/* The cache directory, made if missing; 0 if it is root's alone (and we are root). */
static int cache_dir(void)
{
	struct stat st;

	if (geteuid() != 0 || (mkdir(CACHE_DIR, 0700) && errno != EEXIST))
		return -1;
	return lstat(CACHE_DIR, &st) || !S_ISDIR(st.st_mode) || !roots_alone(&st) ? -1 : 0;
}

/* path (in the cache directory) is a regular file that is root's alone. */
static int trusted_file(const char *path)
{
	struct stat st;

	return !lstat(path, &st) && S_ISREG(st.st_mode) && roots_alone(&st);
}

/* ---- the probe's facts ------------------------------------------------- */

/* The first line of the facts file: the boot, the kernel and the number of facts. */
static int facts_key(char *out, size_t len, int n)
{
	char key[200];

	if (boot_key(key, sizeof(key)))
		return -1;
	snprintf(out, len, "%s %d\n", key, n);
	return 0;
}

int fl_boot_facts_load(int *v, int n)
{
	char line[512], want[256];
	struct stat st;
	int fd, ok = 0;
	FILE *f;

	if (facts_key(want, sizeof(want), n))
		return -1;
	fd = open(FACTS_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) || !roots_alone(&st) || !(f = fdopen(fd, "re"))) {
		close(fd);
		return -1;
	}
	if (fgets(line, sizeof(line), f) && !strcmp(line, want)) {
		ok = 1;
		for (int i = 0; i < n && ok; i++)
			ok = fscanf(f, "%d", &v[i]) == 1;
	}
	fclose(f);
	return ok ? 0 : -1;
}

void fl_boot_facts_save(const int *v, int n)
{
	char tmp[64], key[256];
	FILE *f;
	int fd;

	if (facts_key(key, sizeof(key), n) || cache_dir())
		return;
	snprintf(tmp, sizeof(tmp), FACTS_FILE ".%d", (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || !(f = fdopen(fd, "we"))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	fputs(key, f);
	for (int i = 0; i < n; i++)
		fprintf(f, "%d\n", v[i]);
	if (fclose(f) || rename(tmp, FACTS_FILE)) /* atomic: a concurrent start reads one or the other */
		unlink(tmp);
}

/* ---- the minimal BTF ---------------------------------------------------- */

/*
 * A 64-bit hash of len bytes at p, continuing h: eight bytes a step (the
 * BPF object is ~1 MB, which a byte-at-a-time FNV-1a took 1.5 ms of every
 * start to hash).
 */
static __u64 hash_bytes(__u64 h, const void *p, size_t len)
{
	const unsigned char *c = p;
	__u64 w;

	for (; len >= 8; c += 8, len -= 8) {
		memcpy(&w, c, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 32;
	}
	for (; len; c++, len--)
		h = (h ^ *c) * 0x100000001b3ull;
	return h;
}

/* bpftool, where the distributions put it, if root's alone (it runs as root). */
static const char *find_bpftool(void)
{
	static const char *const where[] = { "/usr/sbin/bpftool", "/usr/bin/bpftool", "/usr/local/sbin/bpftool" };
	struct stat st;

	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++)
		if (!stat(where[i], &st) && S_ISREG(st.st_mode) && roots_alone(&st) && (st.st_mode & 0100))
			return where[i];
	return NULL;
}

/* Write len bytes of buf to a new file path (0600). 0 or -1. */
static int write_new(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	const char *p = buf;

	if (fd < 0)
		return -1;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return close(fd);
}

/* bpftool gen min_core_btf VMLINUX out obj, quietly, in an empty environment. 0 or -1. */
static int run_bpftool(const char *tool, const char *obj, const char *out)
{
	char *argv[] = { "bpftool", "gen", "min_core_btf", "/sys/kernel/btf/vmlinux", (char *)out, (char *)obj, NULL };
	char *envp[] = { NULL };
	posix_spawn_file_actions_t fa;
	int status, rc;
	pid_t pid;

	if (posix_spawn_file_actions_init(&fa))
		return -1;
	for (int fd = 0; fd < 3; fd++)
		posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd ? O_WRONLY : O_RDONLY, 0);
	rc = posix_spawn(&pid, tool, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		return -1;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Make path (the minimal BTF for obj, in the cache directory) with bpftool. 0 or -1. */
static int make_core_btf(const void *obj, size_t len, const char *path)
{
	char objtmp[96], out[96];
	const char *tool = find_bpftool();
	int rc;

	if (!tool)
		return -1;
	snprintf(objtmp, sizeof(objtmp), CACHE_DIR "/obj.%d", (int)getpid());
	snprintf(out, sizeof(out), "%s.%d", path, (int)getpid());
	unlink(out);
	rc = write_new(objtmp, obj, len) || run_bpftool(tool, objtmp, out) ||
	     chmod(out, 0644) || rename(out, path) ? -1 : 0;
	unlink(objtmp);
	if (rc)
		unlink(out);
	return rc;
}

const char *fl_boot_core_btf(const void *obj, size_t len, char *path, size_t pathlen)
{
	char key[200];

	if (boot_key(key, sizeof(key)) || cache_dir())
		return NULL;
	/* named by what it depends on: this boot, this kernel, this object */
	__u64 h = hash_bytes(hash_bytes(0xcbf29ce484222325ull, key, strlen(key)), obj, len);
	snprintf(path, pathlen, CACHE_DIR "/core-%016llx.btf", (unsigned long long)h);
	if (trusted_file(path) || (!make_core_btf(obj, len, path) && trusted_file(path)))
		return path;
	return NULL;
}

void fl_boot_core_btf_forget(const char *path)
{
	if (path)
		unlink(path);
}
