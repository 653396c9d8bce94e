/* SPDX-License-Identifier: MIT */
/* identity.c - who owns a channel ring, in the kernel's eyes (see identity.h). */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "identity.h"

/* A deep tree or a loop in what /proc says (pids reused meanwhile) ends here. */
#define MAX_DEPTH 256
/* How many tree processes a namespace search looks at, at most. */
#define MAX_SEARCH 4096
#define MAX_LEVELS 32

static ssize_t read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n >= 0)
		buf[n] = 0;
	return n;
}

/* The parent of pid from /proc/PID/stat ("pid (comm) S ppid ..."; comm may
 * hold ')' so the last one counts).  Returns -1 when pid is gone. */
static long parent_of(__u32 pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	char *p = strrchr(buf, ')');
	long ppid;
	return p && sscanf(p + 1, " %*c %ld", &ppid) == 1 ? ppid : -1;
}

/* The NSpid line of a /proc status file: the pid in each namespace, outermost
 * (ours) first.  Returns how many, 0 when unreadable. */
static unsigned nspids(const char *status_path, __u32 *out)
{
	char buf[4096];
	if (read_file(status_path, buf, sizeof(buf)) <= 0)
		return 0;
	char *p = strstr(buf, "\nNSpid:");
	unsigned n = 0;
	if (!p)
		return 0;
	p += 7;
	while (n < MAX_LEVELS && *p && *p != '\n') {
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		if (end == p)
			break;
		out[n++] = (__u32)v;
		p = end;
	}
	return n;
}

static unsigned levels_of_self(void)
{
	static unsigned levels;
	__u32 ids[MAX_LEVELS];
	if (!levels)
		levels = nspids("/proc/self/status", ids);
	return levels;
}

/* One walk up pid's parent chain: 1 it leads to us, 0 it does not, -1 pid
 * is gone, -2 an ancestor went meanwhile.  A process being released after
 * its reap still has a readable stat, with ppid 0 (fs/proc/array.c: its
 * parent link is no longer alive): that is gone, not outside the tree.  A
 * fork child whose ring was looked at as its parent reaped it read so, and
 * its records were refused (channel_unidentified; with BPF, shim_absent). */
static int walk_up(__u32 pid)
{
	long self = getpid(), p = pid;
	for (int depth = 0; depth < MAX_DEPTH; depth++) {
		if (p == self)
			return 1;
		if (p <= 1)
			return 0;
		long up = parent_of((__u32)p);
		if (up <= 0)
			return p == (long)pid ? -1 : -2;
		p = up;
	}
	return 0;
}

/* Does pid's parent chain lead to us?  (-1: pid is gone.)  An ancestor that
 * went during the walk has had its children reparented (to us, a subreaper,
 * when they are ours) before it could be released: walk again. */
static int in_tree(__u32 pid)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		int t = walk_up(pid);
		if (t != -2)
			return t;
	}
	return 0;
}

/* Does pid map the channel ring at ring_offset (the memfd, inode ino)? */
static int maps_ring(__u32 pid, __u64 ino, __u64 ring_offset)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%u/maps", pid);
	FILE *f = fopen(path, "re");
	int found = 0;
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long long off, inode;
		if (sscanf(line, "%*x-%*x %*s %llx %*x:%*x %llu", &off, &inode) == 2)
			found = inode == ino && off == ring_offset;
	}
	fclose(f);
	return found;
}

/* Append the children of pid (every thread's) to queue[*n..max). */
static void add_children(__u32 pid, __u32 *queue, unsigned *n, unsigned max)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%u/task", pid);
	DIR *d = opendir(path);
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d)) && *n < max) {
		char cpath[96], buf[4096];
		if (e->d_name[0] == '.')
			continue;
		snprintf(cpath, sizeof(cpath), "/proc/%u/task/%.16s/children", pid, e->d_name);
		if (read_file(cpath, buf, sizeof(buf)) <= 0)
			continue;
		for (char *p = buf, *end; *n < max; p = end) {
			unsigned long c = strtoul(p, &end, 10);
			if (end == p)
				break;
			queue[(*n)++] = (__u32)c;
		}
	}
	closedir(d);
}

/* The tree under root (and the orphans reparented to us), breadth first,
 * for the process in a deeper namespace that calls itself claimed there and
 * maps the ring. */
static __u32 search(pid_t root, __u32 claimed, __u64 ino, __u64 ring_offset)
{
	__u32 *queue = malloc(MAX_SEARCH * sizeof(*queue)), found = 0, named = 0, nnamed = 0;
	unsigned n = 0;
	if (!queue)
		return 0;
	add_children((__u32)getpid(), queue, &n, MAX_SEARCH);
	(void)root; /* our child: the launched process is first in the queue */
	for (unsigned i = 0; i < n && !found; i++) {
		char path[64];
		__u32 ids[MAX_LEVELS];
		snprintf(path, sizeof(path), "/proc/%u/status", queue[i]);
		unsigned k = nspids(path, ids);
		if (k > levels_of_self() && ids[k - 1] == claimed) {
			named = queue[i];
			nnamed++;
			if (maps_ring(queue[i], ino, ring_offset))
				found = queue[i];
		}
		add_children(queue[i], queue, &n, MAX_SEARCH);
	}
	free(queue);
	/* A fork child that exec'd before it was looked at maps its ring no
	 * more: the only process of the tree with that namespace pid is it. */
	return found ? found : nnamed == 1 ? named : 0;
}

__u32 fl_identify(pid_t root, __u32 claimed, __u64 ino, __u64 ring_offset)
{
	int t = claimed ? in_tree(claimed) : 0;
	if (t > 0)
		return claimed;
	__u32 host = search(root, claimed, ino, ring_offset);
	/* gone, and no namespace process it could be: nothing is left to read of it */
	return host ? host : t < 0 ? claimed : 0;
}

__u32 fl_identify_tid(__u32 host, __u32 ns_tid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%u/task", host);
	DIR *d = opendir(path);
	struct dirent *e;
	__u32 found = 0;
	if (!d)
		return ns_tid;
	while (!found && (e = readdir(d))) {
		char spath[96];
		__u32 ids[MAX_LEVELS];
		if (e->d_name[0] == '.')
			continue;
		snprintf(spath, sizeof(spath), "/proc/%u/task/%.16s/status", host, e->d_name);
		unsigned k = nspids(spath, ids);
		if (k && ids[k - 1] == ns_tid)
			found = ids[0];
	}
	closedir(d);
	return found ? found : ns_tid;
}

__u32 fl_identify_parent(__u32 host)
{
	long p = parent_of(host);
	return p > 0 ? (__u32)p : 0;
}
