/* SPDX-License-Identifier: MIT */
/*
 * unwind.c - call stacks for the shim's records, and the fork gate that
 * keeps the unwinder's locks out of fork children.
 *
 * Stacks: the unwind rules cfi.c caches per return address, read from the
 * same tables, and where a frame is not for them libgcc's DWARF unwinder
 * (_Unwind_Backtrace, as glibc's backtrace() uses it); not libunwind:
 * libunwind keeps a pipe open in the target that it cannot give up (the
 * measurements are in docs/libunwind.md).  Neither costs a syscall or an fd
 * once initialized.
 *
 * Fork safety: the unwinders take locks (libgcc's object_mutex for
 * registered frames, the loader lock in dl_iterate_phdr, which cfi.c asks
 * once per stack and libgcc on old glibc) that another thread may hold when
 * fork() copies the address space.  Every
 * unwind runs inside a gate (`unwinders` count); the fork hook closes
 * the gate and waits for unwinders to leave before calling the real fork, so
 * the child never inherits a held lock.  If they do not leave in time (a
 * thread longjmp'd out of a signal handler that interrupted an unwind), the
 * child records without stacks.
 */
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <unwind.h>

#include "preload.h"


unsigned shim_depth = FL_DEFAULT_FRAMES;
int shim_no_unwind;

static uintptr_t text_lo, text_hi;     /* the shim's executable segment */
SHIM_TLS int shim_unwinding;
static unsigned unwinders;             /* threads inside the unwinder (atomic) */
static int forking;                    /* a fork waits for or runs with the gate closed */

extern const ElfW(Ehdr) __ehdr_start __attribute__((visibility("hidden")));

void shim_find_text(void)
{
	const ElfW(Ehdr) *e = &__ehdr_start;
	const ElfW(Phdr) *ph = (const ElfW(Phdr) *)((const char *)e + e->e_phoff);
	uintptr_t base = (uintptr_t)e, min_vaddr = UINTPTR_MAX;

	for (unsigned i = 0; i < e->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && ph[i].p_vaddr < min_vaddr)
			min_vaddr = ph[i].p_vaddr;
	for (unsigned i = 0; i < e->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_X)) {
			text_lo = base + ph[i].p_vaddr - min_vaddr;
			text_hi = text_lo + ph[i].p_memsz;
		}
}

/*
 * libgcc's unwinder, called as glibc's backtrace() calls it (debug/
 * backtrace.c), but from the shim's own code: backtrace() is a page of libc
 * text the program does not run, and the fault-around of the shim's first
 * call into it (up to 16 pages of libc) was counted as the program's
 * (docs/check.md, "faultline's own footprint").
 */
static _Unwind_Reason_Code (*unwind_backtrace)(_Unwind_Trace_Fn, void *);
static _Unwind_Ptr (*unwind_get_ip)(struct _Unwind_Context *);
static _Unwind_Word (*unwind_get_cfa)(struct _Unwind_Context *);

struct trace {
	void **frames;
	int n, room;            /* n is -1 until the caller of unwind()'s frame */
	_Unwind_Word cfa;
};

static _Unwind_Reason_Code one_frame(struct _Unwind_Context *ctx, void *arg)
{
	struct trace *t = arg;

	if (t->n >= 0) {
		_Unwind_Word cfa = unwind_get_cfa(ctx);

		t->frames[t->n] = (void *)unwind_get_ip(ctx);
		/* no progress: the same frame again (glibc's test) */
		if (t->n > 0 && t->frames[t->n - 1] == t->frames[t->n] && cfa == t->cfa)
			return _URC_END_OF_STACK;
		t->cfa = cfa;
	}
	return ++t->n == t->room ? _URC_END_OF_STACK : _URC_NO_REASON;
}

/* FAULTLINE_UNWIND_CHECK=1 (cfi.c): every stack taken both ways; how many by the rules, by libgcc,
 * and how many of the first differed. */
static int unwind_check;
static unsigned by_rules, by_libgcc, differed;

/* A line for stderr, built without libc's formatting: text, then numbers in base 10 or 16. */
struct line {
	char buf[200];
	unsigned len;
};

static void put(struct line *l, const char *s)
{
	while (*s && l->len < sizeof(l->buf) - 1)
		l->buf[l->len++] = *s++;
}

static void put_num(struct line *l, __u64 v, unsigned base)
{
	if (l->len + 20 < sizeof(l->buf))
		l->len += shim_format_u64(l->buf + l->len, v, base);
}

static void say(struct line *l)
{
	put(l, "\n");
	shim_syscall(SYS_write, 2, l->buf, l->len);
}

/*
 * The check: libgcc's stack from here, whose first frame is unwind()'s (this
 * function's caller), against the n the rules gave for unwind()'s caller and
 * up.  A difference is told on stderr (a developer's switch: the program's
 * output changes) and libgcc's stack is kept.
 */
static __attribute__((noinline)) int unwind_checked(void **frames, int n, int room)
{
	void *lib[FL_MAX_FRAMES + SHIM_FRAME_SLACK + 1];
	struct trace t = { .frames = lib, .n = -1, .room = room + 1 };
	int same;

	if (room + 1 > (int)(sizeof(lib) / sizeof(lib[0])))
		return n;
	unwind_backtrace(one_frame, &t);
	same = t.n == n + 1;
	for (int i = 0; same && i < n; i++)
		same = lib[i + 1] == frames[i];
	if (same)
		return n;
	if (__atomic_fetch_add(&differed, 1, __ATOMIC_RELAXED) < 20) {
		struct line l = { .len = 0 };
		int at = 0;

		while (at < n && at + 1 < t.n && lib[at + 1] == frames[at])
			at++;
		put(&l, "faultline: unwind check: frame ");
		put_num(&l, (__u64)at, 10);
		put(&l, " of ");
		put_num(&l, (__u64)n, 10);
		put(&l, " (libgcc: ");
		put_num(&l, (__u64)(t.n - 1), 10);
		put(&l, ") by rule 0x");
		put_num(&l, at < n ? (__u64)frames[at] : 0, 16);
		put(&l, ", libgcc's 0x");
		put_num(&l, at + 1 < t.n ? (__u64)lib[at + 1] : 0, 16);
		say(&l);
	}
	for (int i = 1; i < t.n; i++)
		frames[i - 1] = lib[i];
	return t.n - 1;
}

__attribute__((destructor)) static void unwind_check_report(void)
{
	struct line l = { .len = 0 };

	if (!unwind_check)
		return;
	put(&l, "faultline: unwind check: stacks by rule ");
	put_num(&l, by_rules, 10);
	put(&l, ", by libgcc ");
	put_num(&l, by_libgcc, 10);
	put(&l, ", differed ");
	put_num(&l, differed, 10);
	say(&l);
}

/* backtrace(): the return addresses above this function's frame; by the
 * rules of cfi.c, or libgcc's unwinder where they do not serve. */
static __attribute__((noinline)) int unwind(void **frames, int room)
{
	struct trace t = { .frames = frames, .n = -1, .room = room };
	int n;

	if (room <= 0 || !unwind_backtrace)
		return 0;
	n = shim_cfi_unwind(frames, room);
	if (n >= 0 && unwind_check) {
		__atomic_fetch_add(&by_rules, 1, __ATOMIC_RELAXED);
		n = unwind_checked(frames, n, room);
	}
	if (n < 0) {
		if (unwind_check)
			__atomic_fetch_add(&by_libgcc, 1, __ATOMIC_RELAXED);
		unwind_backtrace(one_frame, &t);
		n = t.n;
	}
	if (n > 1 && !frames[n - 1])
		n--;  /* libgcc puts a NULL above _start */
	return n > 0 ? n : 0;
}

/* Make the unwinder ready now, under busy, while nothing else runs: load
 * libgcc_s as glibc's backtrace() does at its first call (misc/unwind-link.c;
 * malloc, the loader lock).  Later calls take no lock and make no syscall
 * (libgcc >= 12 finds FDEs with glibc's lock-free _dl_find_object). */
void shim_unwind_init(void)
{
	void *(*open)(const char *, int) = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
	void *lib = open ? open("libgcc_s.so.1", RTLD_NOW | RTLD_LOCAL) : NULL, *buf[4];

	if (lib) {
		*(void **)&unwind_get_ip = dlsym(lib, "_Unwind_GetIP");
		*(void **)&unwind_get_cfa = dlsym(lib, "_Unwind_GetCFA");
		if (unwind_get_ip && unwind_get_cfa)
			*(void **)&unwind_backtrace = dlsym(lib, "_Unwind_Backtrace");
		shim_cfi_init(lib);
	}
	unwind_check = shim_starts(shim_getenv("FAULTLINE_UNWIND_CHECK") ?: "", "1");
	if (unwind(buf, 4) <= 0)
		shim_no_unwind = 1;
}

/*
 * Unwind into frames[0..room) (room >= want + SHIM_FRAME_SLACK), then drop
 * the shim's own frames by moving the rest down.  No buffer of its own:
 * a hook's stack use is what a thread with little stack left pays
 * (docs/security.md states it per hook).
 */
unsigned shim_backtrace_into(__u64 *frames, unsigned room)
{
	_Static_assert(sizeof(void *) == sizeof(__u64), "frames are pointers");
	unsigned want = shim_depth, i = 0, n = 0;
	int got;

	if (!want || shim_no_unwind)
		return 0;
	if (want + SHIM_FRAME_SLACK > room)
		want = room > SHIM_FRAME_SLACK ? room - SHIM_FRAME_SLACK : 0;
	/* Enter the fork gate (Dekker style: both sides use seq_cst). */
	for (;;) {
		__atomic_add_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);
		if (!__atomic_load_n(&forking, __ATOMIC_SEQ_CST))
			break;
		__atomic_sub_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&forking, __ATOMIC_SEQ_CST))
			shim_short_sleep();
	}
	shim_unwinding++;
	got = unwind((void **)frames, (int)(want + SHIM_FRAME_SLACK));
	shim_unwinding--;
	__atomic_sub_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);

	while (i < (unsigned)(got > 0 ? got : 0) &&
	       (uintptr_t)frames[i] >= text_lo && (uintptr_t)frames[i] < text_hi)
		i++;
	for (; i < (unsigned)got && n < want; i++)
		frames[n++] = frames[i];
	return n;
}

/*
 * The first return address outside the shim on the chain of the shim's own
 * frames (built with frame pointers: meson.build): the hook's caller.  Reads
 * only this thread's stack, a few frames up, each above the last.
 */
__attribute__((noinline)) unsigned shim_caller(__u64 *frame)
{
	uintptr_t *fp = __builtin_frame_address(0);

	for (int i = 0; i < 8 && fp && !((uintptr_t)fp & 7); i++) {
		uintptr_t ret = fp[1], *up = (uintptr_t *)fp[0];
		if (ret < text_lo || ret >= text_hi) {
			*frame = ret;
			return 1;
		}
		if (up <= fp || (uintptr_t)up - (uintptr_t)fp > 65536)
			break;
		fp = up;
	}
	return 0;
}

unsigned shim_backtrace(__u64 *frames)
{
	__u64 buf[FL_MAX_FRAMES + SHIM_FRAME_SLACK];
	unsigned n = shim_backtrace_into(buf, FL_MAX_FRAMES + SHIM_FRAME_SLACK);

	for (unsigned i = 0; i < n; i++)
		frames[i] = buf[i];
	return n;
}

int shim_gate_close(void)
{
	int zero = 0;
	__u64 start = 0;

	while (!__atomic_compare_exchange_n(&forking, &zero, 1, 0,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
		zero = 0;
		shim_short_sleep();    /* another thread is forking */
	}
	while (__atomic_load_n(&unwinders, __ATOMIC_SEQ_CST)) {
		__u64 t = shim_now_ns();
		if (!start)
			start = t;
		else if (t - start > 500000000u)
			return 0;
		shim_short_sleep();
	}
	return 1;
}

void shim_gate_open(void)
{
	__atomic_store_n(&forking, 0, __ATOMIC_SEQ_CST);
}

void shim_gate_reset(void)
{
	__atomic_store_n(&unwinders, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&forking, 0, __ATOMIC_RELAXED);
}
