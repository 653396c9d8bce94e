/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c - the shim's view of mappings it did not see being made: a
 * /proc/self/maps snapshot after each hello (at start, after fork, after
 * exec), and again after dlopen/dlclose (a RESYNC hello), because ld.so
 * maps and unmaps with its own internal syscalls, which no hook sees.
 */
#include <fcntl.h>
#include <sys/mman.h>

#include "preload.h"

#define SNAP_MIN (256u << 10)
#define SNAP_MAX (64u << 20)

int shim_maps_state;                   /* MAPS_* (atomic) */

static const char *hex(const char *p, const char *end, __u64 *out)
{
	__u64 v = 0;

	for (; p < end; p++) {
		unsigned d;
		if (*p >= '0' && *p <= '9') d = (unsigned)(*p - '0');
		else if (*p >= 'a' && *p <= 'f') d = (unsigned)(*p - 'a' + 10);
		else break;
		v = v * 16 + d;
	}
	*out = v;
	return p;
}

static const char *dec(const char *p, const char *end, __u64 *out)
{
	__u64 v = 0;

	for (; p < end && *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (__u64)(*p - '0');
	*out = v;
	return p;
}

/* Parse one maps line: "start-end rwxp offset maj:min inode   path". */
static int parse_line(const char *p, const char *end, struct fl_mapping *m)
{
	__u64 v;

	memset(m, 0, sizeof(*m));
	m->h.type = FL_R_MAPPING;
	m->h.size = sizeof(*m);
	m->pid = shim_pid;
	p = hex(p, end, &m->start);
	if (p >= end || *p++ != '-')
		return -1;
	p = hex(p, end, &m->end);
	if (end - p < 6)
		return -1;
	p++;
	m->prot = (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) |
		  (p[2] == 'x' ? PROT_EXEC : 0);
	m->flags = p[3] == 's' ? FL_MAP_SHARED : 0;
	p += 5;
	p = hex(p, end, &m->offset) + 1;
	p = hex(p, end, &v) + 1;
	m->dev_major = (__u32)v;
	p = hex(p, end, &v);
	m->dev_minor = (__u32)v;
	while (p < end && *p == ' ')
		p++;
	p = dec(p, end, &m->inode);
	while (p < end && *p == ' ')
		p++;
	size_t n = (size_t)(end - p);
	if (n >= FL_PATH_MAX) {
		n = FL_PATH_MAX - 1;
		m->flags |= FL_MAP_TRUNCATED;
	}
	memcpy(m->path, p, n);
	m->path[n] = 0;
	return 0;
}

/* Walk the lines of buf; emit them when `send`.  The snapshot buffer itself
 * [skip_lo, skip_hi) is cut out of whatever line covers it (the kernel may
 * have merged it with a neighbouring anonymous mapping).  Returns records. */
static __u32 walk_maps(const char *buf, size_t len, uintptr_t skip_lo, uintptr_t skip_hi, int send)
{
	const char *p = buf, *end = buf + len;
	struct fl_mapping m;
	__u32 n = 0;

	while (p < end) {
		const char *eol = p;
		while (eol < end && *eol != '\n') /* not memchr: a page of libc only the shim would run */
			eol++;
		if (parse_line(p, eol, &m) == 0) {
			__u64 s = m.start, e = m.end;
			if (e <= skip_lo || s >= skip_hi) {
				if (send) {
					m.index = n;
					shim_emit(&m, sizeof(m));
				}
				n++;
			} else {
				if (s < skip_lo) {
					m.end = skip_lo;
					if (send) {
						m.index = n;
						shim_emit(&m, sizeof(m));
					}
					n++;
				}
				if (e > skip_hi) {
					m.start = skip_hi;
					m.end = e;
					if (send) {
						m.index = n;
						shim_emit(&m, sizeof(m));
					}
					n++;
				}
			}
		}
		p = eol + 1;
	}
	return n;
}

/* Read /proc/self/maps whole into an anonymous mapping (no malloc).  The
 * kernel's maps seq_file resumes by address between reads (fs/proc/
 * task_mmu.c), so a file read in pieces is still one consistent list only
 * if nothing changes meanwhile; reading it into one buffer keeps the window
 * short.  Returns the length, or -1. */
static long read_maps(char **out, size_t *cap_out)
{
	for (size_t cap = SNAP_MIN; cap <= SNAP_MAX; cap *= 4) {
		long a = shim_sys_mmap(NULL, cap, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (a < 0 && a > -4096)
			return -1;
		char *buf = (char *)a;
		int fd = (int)shim_syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			shim_syscall(SYS_munmap, buf, cap);
			return -1;
		}
		size_t len = 0;
		long r = 1;
		while (len < cap && (r = shim_syscall(SYS_read, fd, buf + len, cap - len)) > 0)
			len += (size_t)r;
		shim_syscall(SYS_close, fd);
		if (r == 0) {
			*out = buf;
			*cap_out = cap;
			return (long)len;
		}
		shim_syscall(SYS_munmap, buf, cap);
		if (r < 0)
			return -1;
	}
	return -1;
}

/* /proc/self/exe as the first hello read it: a fork child's is the same,
 * and not asking again spares the child a syscall the program never makes. */
static char exe[FL_PATH_MAX];

int shim_hello(__u32 flags, __u64 parent_seq, __u32 ppid)
{
	struct fl_hello hl;
	char *buf;
	size_t cap;
	long len = read_maps(&buf, &cap);

	memset(&hl, 0, sizeof(hl));
	hl.h.type = FL_R_HELLO;
	hl.h.size = sizeof(hl);
	hl.abi = FL_ABI_VERSION;
	hl.pid = shim_pid;
	hl.ppid = ppid ? ppid : (__u32)shim_syscall(SYS_getppid);
	hl.flags = flags;
	hl.time_ns = shim_now_ns();
	hl.parent_seq = parent_seq;
	hl.depth = shim_no_unwind ? 0 : shim_depth;
	if (!(flags & FL_HELLO_FORKED) || !exe[0]) {
		long n = shim_syscall(SYS_readlink, "/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = 0;
	}
	memcpy(hl.exe, exe, sizeof(hl.exe));
	if (len >= 0)
		hl.nmappings = walk_maps(buf, (size_t)len, (uintptr_t)buf, (uintptr_t)buf + cap, 0);
	shim_emit(&hl, sizeof(hl));
	if (len < 0) {
		shim_note("maps snapshot failed: initial mappings unknown");
		return -1;
	}
	walk_maps(buf, (size_t)len, (uintptr_t)buf, (uintptr_t)buf + cap, 1);
	shim_syscall(SYS_munmap, buf, cap);
	return 0;
}

/* ld.so maps and unmaps with its own internal syscalls, which no hook sees;
 * so dlopen/dlclose only mark the maps dirty, and the next hooked call of any
 * thread first sends HELLO(FL_HELLO_RESYNC) and a fresh snapshot.  Exactly
 * one thread sends it (DIRTY -> RESYNC by CAS); the others wait until it is
 * out, so a call they make afterwards is both missing from the snapshot and
 * recorded after it.  A call already past recording() when the dlopen ran
 * can still land on either side of the snapshot (BPF mode orders those). */
void shim_resync(void)
{
	__u64 start = 0;
	int s;

	while ((s = __atomic_load_n(&shim_maps_state, __ATOMIC_ACQUIRE)) != MAPS_CLEAN) {
		if (s == MAPS_DIRTY) {
			if (!__atomic_compare_exchange_n(&shim_maps_state, &s, MAPS_RESYNC, 0,
							 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				continue;
			shim_busy++;
			shim_hello(FL_HELLO_RESYNC, 0, 0);
			shim_busy--;
			/* A dlopen meanwhile left DIRTY: the next call sends again. */
			s = MAPS_RESYNC;
			__atomic_compare_exchange_n(&shim_maps_state, &s, MAPS_CLEAN, 0,
						    __ATOMIC_RELEASE, __ATOMIC_RELAXED);
			return;
		}
		/* Another thread is sending it.  Bounded: a sender that
		 * longjmp'd out of a signal handler never finishes; take over. */
		__u64 t = shim_now_ns();
		if (!start) {
			start = t;
		} else if (t - start > 500000000u) {
			__atomic_compare_exchange_n(&shim_maps_state, &s, MAPS_DIRTY, 0,
						    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
			start = 0;
			continue;
		}
		shim_short_sleep();
	}
}

/* dlopen/dlclose are about to change the mappings where no hook sees it. */
void shim_maps_changed(void)
{
	if (__atomic_load_n(&shim_state, __ATOMIC_ACQUIRE) == ST_ON)
		__atomic_store_n(&shim_maps_state, MAPS_DIRTY, __ATOMIC_RELEASE);
}

