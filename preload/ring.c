/* SPDX-License-Identifier: MIT */
/*
 * ring.c - the producer side of the shared-memory channel (common/channel.h):
 * claiming this process image's ring, and copying records into it.
 *
 * Full ring: producers wait (spin, then 50us sleeps) for space, up to
 * hdr->wait_ms, then drop the record and count it in the ring's `dropped`.
 * A slot is only reserved once it is known to be free, so a reservation is
 * always published promptly and the consumer never waits on a hole left by
 * a producer that gave up.  While waiting, the collector's liveness is
 * checked every 100 ms; if it is gone, recording stops for good.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>

#include "shim.h"

int shim_state = ST_UNINIT;
__u32 shim_pid;
__u64 shim_seq;
char shim_chan_path[256];
SHIM_TLS int shim_busy;
SHIM_TLS __u32 shim_tls_tid;

static struct fl_chan_hdr *hdr;        /* the channel header, MAP_SHARED */
static struct fl_ring_desc *desc;      /* our ring's descriptor in hdr */
static struct fl_slot *slots;          /* our ring, MAP_SHARED */

struct waiter {
	unsigned spins;
	__u64 start, last_check;
};

/* One step of waiting for the consumer.  Returns 0 when the producer should
 * give up: waited longer than hdr->wait_ms, or the collector is gone. */
static int wait_step(struct waiter *w, int may_drop)
{
	if (w->spins < 128) {
		w->spins++;
		__builtin_ia32_pause();
		return 1;
	}
	shim_short_sleep();
	__u64 t = shim_now_ns();
	if (!w->start)
		w->start = w->last_check = t;
	if (t - w->last_check >= 100000000u) {
		w->last_check = t;
		/* Only ESRCH means gone: EPERM is a collector of another uid. */
		if (syscall(SYS_kill, (pid_t)hdr->collector_pid, 0) < 0 && errno == ESRCH) {
			__atomic_store_n(&shim_state, ST_OFF, __ATOMIC_RELEASE);
			return 0;
		}
	}
	return !(may_drop && t - w->start >= (__u64)hdr->wait_ms * 1000000u);
}

int shim_emit(const void *rec, __u32 len)
{
	struct fl_ring_desc *d = desc;
	struct waiter w = { 0, 0, 0 };
	__u64 h;

	if (!d || len > FL_SLOT_DATA)
		return -1;
	h = __atomic_load_n(&d->head, __ATOMIC_RELAXED);
	/* Reserve ticket h only once its slot is free (tail > h - N), unlike
	 * fl_ring_ticket(): a producer that gives up then never leaves a hole
	 * the consumer would wait on forever. */
	for (;;) {
		__u64 t = __atomic_load_n(&d->tail, __ATOMIC_ACQUIRE);
		if (h - t < FL_RING_SLOTS) {
			if (__atomic_compare_exchange_n(&d->head, &h, h + 1, 1,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
				break;
			continue;
		}
		if (!wait_step(&w, 1)) {
			__atomic_add_fetch(&d->dropped, 1, __ATOMIC_RELAXED);
			return -1;
		}
		h = __atomic_load_n(&d->head, __ATOMIC_RELAXED);
	}
	struct fl_slot *s = &slots[h & (FL_RING_SLOTS - 1)];
	/* The consumer stores seq (release) before bumping tail with a plain
	 * store, so seeing the new tail may precede seeing seq: check it too. */
	w.spins = 0;
	while (!fl_slot_free(s, h))
		if (!wait_step(&w, 0))
			break;
	memcpy(s->data, rec, len);
	fl_slot_publish(s, h);
	return 0;
}

void shim_note(const char *text)
{
	struct fl_note n;

	memset(&n, 0, sizeof(n));
	n.h.type = FL_R_NOTE;
	n.h.size = sizeof(n);
	n.pid = shim_pid;
	shim_copy_str(n.text, sizeof(n.text), text);
	shim_emit(&n, sizeof(n));
}

void shim_record(__u32 kind, __s64 result, int err, __u64 a0, __u64 a1, __u64 a2,
		 __u64 a3, __u64 a4, __u64 a5, const char *name)
{
	union {
		struct fl_call_rec r;
		__u8 bytes[sizeof(struct fl_call_rec) + 8 * FL_MAX_FRAMES + FL_NAME_MAX];
	} b;
	struct fl_call *c = &b.r.call;
	__u32 size;

	shim_busy++;
	memset(&b.r, 0, sizeof(b.r));
	c->kind = kind;
	c->pid = shim_pid;
	c->tid = shim_tid();
	c->err = err;
	c->time_ns = shim_now_ns();
	c->seq = __atomic_add_fetch(&shim_seq, 1, __ATOMIC_RELAXED);
	c->args[0] = a0; c->args[1] = a1; c->args[2] = a2;
	c->args[3] = a3; c->args[4] = a4; c->args[5] = a5;
	c->result = result;
	b.r.h.type = FL_R_CALL;
	b.r.h.nframes = (__u16)shim_backtrace(b.r.frames);
	size = sizeof(b.r) + 8u * b.r.h.nframes;
	if (name) {
		char *p = (char *)b.bytes + size;
		shim_copy_str(p, FL_NAME_MAX, name);
		size += (__u32)strlen(p) + 1;
	}
	b.r.h.size = size;
	if (__atomic_load_n(&shim_state, __ATOMIC_ACQUIRE) == ST_ON)
		shim_emit(&b, size);
	shim_busy--;
}

/* In a fork child the header is inherited (MAP_SHARED mappings survive
 * fork) and only the ring is new. */
int shim_attach(__u32 *flags)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, shim_chan_path, O_RDWR | O_CLOEXEC);
	long a;
	int idx;

	if (fd < 0)
		return -1;
	if (!hdr) {
		/*
		 * No MAP_POPULATE here or below: populating is get_user_pages,
		 * which the kernel counts in the target's min_flt (one per page,
		 * 176 for a ring) with no fault event.  Touched lazily, only the
		 * pages used fault, visibly, in the faultline VMA.
		 */
		a = shim_sys_mmap(NULL, FL_CHAN_HDR_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (a < 0 && a > -4096)
			goto fail;
		hdr = (struct fl_chan_hdr *)a;
		if (__atomic_load_n(&hdr->magic, __ATOMIC_ACQUIRE) != FL_CHAN_MAGIC ||
		    hdr->abi != FL_ABI_VERSION || hdr->nrings == 0 ||
		    hdr->nrings > FL_CHAN_RINGS || hdr->ring_bytes < FL_CHAN_RING_BYTES ||
		    hdr->ring_offset < FL_CHAN_HDR_BYTES || hdr->ring_offset % 4096 ||
		    hdr->ring_bytes % 4096) {
			syscall(SYS_munmap, hdr, FL_CHAN_HDR_BYTES);
			hdr = NULL;
			goto fail;
		}
	}
	/* A ring already owned by our pid belongs to the image we replaced:
	 * execve keeps the pid (fs/exec.c de_thread makes the exec'ing thread
	 * the leader). */
	if (!(*flags & FL_HELLO_FORKED))
		for (__u32 i = 0; i < hdr->nrings; i++)
			if (__atomic_load_n(&hdr->rings[i].state, __ATOMIC_ACQUIRE) == FL_RING_OWNED &&
			    hdr->rings[i].pid == shim_pid)
				*flags |= FL_HELLO_EXECED;
	idx = fl_chan_claim(hdr, shim_pid);
	if (idx < 0)
		goto fail;
	a = shim_sys_mmap(NULL, FL_CHAN_RING_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
			  fd, (off_t)(hdr->ring_offset + (__u64)idx * hdr->ring_bytes));
	if (a < 0 && a > -4096) {
		fl_ring_reset(&hdr->rings[idx]);
		goto fail;
	}
	/* The target may close every fd (close_range(3, ~0U)): keep none. */
	syscall(SYS_close, fd);
	slots = (struct fl_slot *)a;
	desc = &hdr->rings[idx];
	return 0;
fail:
	syscall(SYS_close, fd);
	return -1;
}


void shim_detach_inherited(void)
{
	if (slots)
		syscall(SYS_munmap, slots, FL_CHAN_RING_BYTES);
	slots = NULL;
	desc = NULL;
}
