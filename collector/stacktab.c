/* SPDX-License-Identifier: MIT */
/* stacktab.c - frames, stacks, fault sites and symbolization (see stacktab.h). */
#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <limits.h>
#include <pthread.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debugcache.h"
#include "debugfind.h"
#include "hmap.h"
#include "stacktab.h"
#include "strtab.h"
#include "symtab.h"
#include "vec.h"

struct frame {
	__s64 id;
	unsigned module;        /* strtab index, 0 = none */
	__u64 rel;              /* file offset in module, or the raw address */
	int is_return;          /* a return address: symbolize the call before it */
	signed char fp[2];      /* keeps_frame_pointer() of it as an instruction [0] and a return address [1], -1 unknown */
};

struct stack {
	__s64 id;
	unsigned n;
	__s64 frames[];
};

struct site {
	__s64 vma_id, proc_id, frame_id, callers_id;
	const char *cls;
	__u64 count;
	int faultline;
	int callers_end;        /* enum fl_caller_end, -1: not walked */
};

/* A module opened for symbolization, kept open for the frames that come later. */
struct module {
	bool opened;
	Dwfl *dwfl;
	Dwfl_Module *mod;
	Elf *elf;               /* NULL: cannot be read (frames stay unnamed) */
	GElf_Addr bias;
	struct fl_symtab *syms;  /* its symbols by address; NULL: ask libdwfl */
	char build_id[2 * 64 + 1];
};

/*
 * The modules nearly every stack has frames in (the C library, the dynamic
 * loader, the shim), opened on a thread while the eBPF programs load
 * (fl_stacks_prewarm).  libdw decompresses every compressed section of a
 * debug file the first time it reads it: libc6-dbg's took ~50 ms of a
 * recording of `true`, after the target had ended; ld.so's and the shim's
 * 2-6 ms more.  The thread also keeps a decompressed copy for the next
 * runs (debugcache.h).  The collector's own libc and ld.so are the target's but in
 * a container or chroot; module_of() takes a module when the paths are the same.
 */
#define NWARM 3
struct prewarm {
	bool running;           /* the thread was started and not joined */
	pthread_t thread;
	unsigned n;
	struct warm {
		char path[PATH_MAX];
		struct module mo;
		bool taken;     /* moved to module_of()'s table */
	} m[NWARM];
};

struct fl_stacks {
	struct fl_store *store;
	struct prewarm warm;
	struct module *modules; /* by strtab index */
	size_t capmodules;
	size_t nsymbolized;     /* frames[0, nsymbolized) are symbolized */
	struct fl_hmap frame_by_key;    /* module << 48 | rel -> index + 1 into frames */
	struct frame *frames;
	size_t nframes, capframes;
	struct fl_hmap stack_by_hash;   /* hash of frame ids -> struct stack * */
	struct fl_hmap site_by_key;     /* hash(vma, frame, class) -> index + 1 into sites */
	struct site *sites;
	size_t nsites, capsites;
};

struct fl_stacks *fl_stacks_new(struct fl_store *store)
{
	struct fl_stacks *st = calloc(1, sizeof(*st));
	if (st)
		st->store = store;
	return st;
}

static void close_module(struct module *mo)
{
	fl_symtab_free(mo->syms);
	if (mo->dwfl)
		dwfl_end(mo->dwfl);
}

void fl_stacks_free(struct fl_stacks *st)
{
	if (!st)
		return;
	if (st->warm.running)
		pthread_join(st->warm.thread, NULL);
	for (unsigned i = 0; i < st->warm.n; i++)
		if (!st->warm.m[i].taken)
			close_module(&st->warm.m[i].mo);
	for (size_t i = 0; i < st->stack_by_hash.cap; i++)
		free((void *)st->stack_by_hash.vals[i]);
	fl_hmap_free(&st->stack_by_hash);
	fl_hmap_free(&st->frame_by_key);
	fl_hmap_free(&st->site_by_key);
	for (size_t m = 0; m < st->capmodules; m++)
		close_module(&st->modules[m]);
	free(st->modules);
	free(st->frames);
	free(st->sites);
	free(st);
}

/* The frame of ip, as mapped at t in m (deduplicated), NULL when out of memory; valid until the next
 * frame is made. */
static struct frame *frame_at(struct fl_stacks *st, const struct fl_model *m, __u64 t, __u64 ip, int is_return)
{
	struct fl_vma ended;
	unsigned module = 0;
	__u64 rel = ip;
	/* a return address may be the first byte after its function's VMA: look up ip - 1 */
	const struct fl_vma *v = fl_model_find_at(m, is_return ? ip - 1 : ip, t, &ended);
	if (v && v->path && v->path[0] == '/') {
		module = fl_strtab_index(v->path);
		rel = ip - v->start + v->offset;
	}
	__u64 key = (__u64)module << 48 | (rel & ((1ULL << 48) - 1));
	size_t i = fl_hmap_get(&st->frame_by_key, key ? key : 1);
	if (i)
		return &st->frames[i - 1];
	if (fl_vec_reserve((void **)&st->frames, &st->capframes, st->nframes + 1, sizeof(*st->frames)))
		return NULL;
	struct frame *f = &st->frames[st->nframes];
	f->id = fl_store_frame(st->store, fl_strtab_get(module), rel);
	f->module = module;
	f->rel = rel;
	f->is_return = is_return;
	f->fp[0] = f->fp[1] = -1;
	if (!f->id)
		return NULL;
	fl_hmap_put(&st->frame_by_key, key ? key : 1, ++st->nframes);
	return f;
}

static __s64 frame_of(struct fl_stacks *st, const struct fl_model *m, __u64 t, __u64 ip, int is_return)
{
	const struct frame *f = frame_at(st, m, t, ip, is_return);
	return f ? f->id : 0;
}

__s64 fl_stacks_frame(struct fl_stacks *st, const struct fl_model *m, __u64 t, __u64 ip)
{
	return frame_of(st, m, t, ip, 0);
}

/* fl_stacks_intern of addresses as mapped at t. */
static __s64 intern_at(struct fl_stacks *st, const struct fl_model *m, __u64 t, const __u64 *ips, unsigned n)
{
	if (!n)
		return 0;
	__s64 ids[FL_MAX_FRAMES];
	if (n > FL_MAX_FRAMES)
		n = FL_MAX_FRAMES;
	__u64 h = n;
	for (unsigned i = 0; i < n; i++) {
		ids[i] = frame_of(st, m, t, ips[i], 1);
		h = fl_hash64(h ^ (__u64)ids[i]);
	}
	/* probe on: a different stack with the same 64-bit hash takes the next key */
	for (;; h = fl_hash64(h + 1)) {
		struct stack *s = (struct stack *)fl_hmap_get(&st->stack_by_hash, h ? h : 1);
		if (!s)
			break;
		if (s->n == n && !memcmp(s->frames, ids, n * sizeof(ids[0])))
			return s->id;
	}
	struct stack *s = malloc(sizeof(*s) + n * sizeof(ids[0]));
	if (!s)
		return 0;
	s->n = n;
	memcpy(s->frames, ids, n * sizeof(ids[0]));
	s->id = fl_store_stack(st->store, ids, n);
	fl_hmap_put(&st->stack_by_hash, h ? h : 1, (uintptr_t)s);
	return s->id;
}

__s64 fl_stacks_intern(struct fl_stacks *st, const struct fl_model *m, const __u64 *ips, unsigned n)
{
	return intern_at(st, m, FL_MODEL_NOW, ips, n);
}

void fl_stacks_add_site(struct fl_stacks *st, __s64 vma_id, __s64 proc_id, const char *cls,
			__s64 frame_id, __u64 count, int faultline, __s64 callers_id, int callers_end)
{
	__u64 h = fl_hash64(fl_hash64(fl_hash64((__u64)vma_id) ^ (__u64)frame_id) ^ (__u64)callers_id) ^
		  (uintptr_t)cls ^ (__u64)!!faultline ^ (__u64)(callers_end + 1) << 1;
	for (;; h = fl_hash64(h + 1)) {
		size_t i = fl_hmap_get(&st->site_by_key, h ? h : 1);
		if (!i)
			break;
		struct site *s = &st->sites[i - 1];
		if (s->vma_id == vma_id && s->frame_id == frame_id && s->cls == cls && s->faultline == !!faultline &&
		    s->callers_id == callers_id && s->callers_end == callers_end) {
			s->count += count;
			return;
		}
	}
	if (fl_vec_reserve((void **)&st->sites, &st->capsites, st->nsites + 1, sizeof(*st->sites)))
		return;
	st->sites[st->nsites] = (struct site){ vma_id, proc_id, frame_id, callers_id, cls, count, !!faultline,
					       callers_end };
	fl_hmap_put(&st->site_by_key, h ? h : 1, ++st->nsites);
}

/* ---- symbolization ------------------------------------------------------------------ */

static const Dwfl_Callbacks dwfl_callbacks = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = fl_debug_find,
	.section_address = dwfl_offline_section_address,
};

/* The link-time address of file offset off in the module's ELF (via its PT_LOAD), or -1. */
static __s64 offset_to_vaddr(Elf *elf, __u64 off)
{
	size_t n;
	if (elf_getphdrnum(elf, &n))
		return -1;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD && off >= ph.p_offset &&
		    off < ph.p_offset + ph.p_filesz)
			return (__s64)(off - ph.p_offset + ph.p_vaddr);
	}
	return -1;
}

static void build_id_hex(Dwfl_Module *mod, char *out, size_t len)
{
	const unsigned char *bits;
	GElf_Addr vaddr;
	int n = dwfl_module_build_id(mod, &bits, &vaddr);
	out[0] = 0;
	for (int i = 0; i < n && (size_t)(2 * i + 2) < len; i++)
		snprintf(out + 2 * i, 3, "%02x", bits[i]);
}

/* libstdc++'s demangler (C linkage; the Itanium C++ ABI, which legacy Rust symbols use too). */
extern char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

/*
 * name as a reader wants it: C++ and legacy Rust (_ZN...17h<hash>E) symbols
 * demangled, the Rust hash dropped ("std::rt::lang_start::h1a2b..." ->
 * "std::rt::lang_start"); anything else (C, Rust v0 "_R..." symbols, which
 * libstdc++ does not know) as it is.  Returns malloc'd text, or NULL to
 * keep name.
 */
static char *demangle(const char *name)
{
	int status = -1;
	char *d = name && name[0] == '_' && name[1] == 'Z' ? __cxa_demangle(name, NULL, NULL, &status) : NULL;
	size_t n = d && status == 0 ? strlen(d) : 0;

	if (!n) {
		free(d);
		return NULL;
	}
	if (n > 19 && !strncmp(d + n - 19, "::h", 3) && strspn(d + n - 16, "0123456789abcdef") == 16)
		d[n - 19] = 0;
	return d;
}

static void symbolize_frame(struct fl_stacks *st, const struct module *mo, const struct frame *f)
{
	const char *build_id = mo->build_id[0] ? mo->build_id : NULL;
	__s64 vaddr = offset_to_vaddr(mo->elf, f->rel);
	if (vaddr < 0) {
		fl_store_frame_symbol(st->store, f->id, build_id, NULL, 0, NULL, 0);
		return;
	}
	GElf_Addr addr = (GElf_Addr)vaddr + mo->bias - (f->is_return ? 1 : 0), symoff = 0;
	GElf_Sym sym;
	const char *name = NULL;
	if (fl_symtab_find(mo->syms, addr, &name, &symoff) < 0) /* left to libdwfl: its answer, its slow way */
		name = dwfl_module_addrinfo(mo->mod, addr, &symoff, &sym, NULL, NULL, NULL);
	const char *file = NULL;
	int line = 0;
	Dwfl_Line *l = dwfl_module_getsrc(mo->mod, addr);
	if (l)
		file = dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL);
	char *readable = demangle(name);
	fl_store_frame_symbol(st->store, f->id, build_id, readable ? readable : name, symoff + (f->is_return ? 1 : 0),
			      file, line);
	free(readable);
}

/* Open the module at path into mo (its fields stay empty where it cannot be read). */
static void open_module(struct module *mo, const char *path)
{
	mo->opened = true;
	if (!(mo->dwfl = dwfl_begin(&dwfl_callbacks)))
		return;
	mo->mod = dwfl_report_elf(mo->dwfl, path, path, -1, 0, false);
	dwfl_report_end(mo->dwfl, NULL, NULL);
	mo->elf = mo->mod ? dwfl_module_getelf(mo->mod, &mo->bias) : NULL;
	if (mo->mod)
		build_id_hex(mo->mod, mo->build_id, sizeof(mo->build_id));
	if (mo->elf)
		mo->syms = fl_symtab_new(mo->mod);
}

/*
 * The prewarm thread: nothing but its own modules (libdwfl handles are not
 * shared between threads).  Where a debuginfod server is configured it
 * also loads libdebuginfod, which libdw dlopens the first time a module has
 * no debug file here (most programs): with its ~30 libraries (curl, gnutls,
 * krb5) that took 8-13 ms after the target had ended; loaded now, libdw's
 * own dlopen finds it in place.  Without a server it is not loaded at all
 * (debugfind.h).
 */
static void *prewarm_main(void *arg)
{
	struct prewarm *w = arg;
	Dwarf_Addr bias;
	if (fl_debuginfod_configured())
		dlopen("libdebuginfod.so.1", RTLD_LAZY); /* kept: libdw holds it until exit anyway */
	for (unsigned i = 0; i < w->n; i++) {
		struct module *mo = &w->m[i].mo;
		GElf_Ehdr eh;
		open_module(mo, w->m[i].path);
		if (!mo->mod)
			continue;
		dwfl_module_getdwarf(mo->mod, &bias); /* the decompression: source lines need it */
		/* one line looked up (at the entry point) builds the module's table of
		 * address ranges, which every later lookup uses: 2-5 ms for ld.so */
		if (mo->elf && gelf_getehdr(mo->elf, &eh))
			dwfl_module_getsrc(mo->mod, eh.e_entry + mo->bias);
		fl_debugcache_keep(mo->mod); /* the next runs skip the decompression */
	}
	return NULL;
}

/* Add the file at path (resolved) to what the thread opens. */
static void warm_add(struct prewarm *w, const char *path)
{
	char *real = path ? realpath(path, NULL) : NULL;

	for (unsigned i = 0; real && i < w->n; i++)
		if (!strcmp(w->m[i].path, real))
			real[0] = 0;
	if (real && real[0] && w->n < NWARM && strlen(real) < sizeof(w->m[0].path))
		strcpy(w->m[w->n++].path, real);
	free(real);
}

static const char *object_of(const void *addr)
{
	Dl_info info;
	return addr && dladdr(addr, &info) ? info.dli_fname : NULL;
}

void fl_stacks_prewarm(struct fl_stacks *st, const char *shim)
{
	warm_add(&st->warm, object_of((void *)&malloc));
	warm_add(&st->warm, object_of((void *)getauxval(AT_BASE))); /* ld.so: its ELF header */
	warm_add(&st->warm, shim);
	if (st->warm.n)
		st->warm.running = !pthread_create(&st->warm.thread, NULL, prewarm_main, &st->warm);
}

/* The prewarmed module of path, if there is one: into mo (after the thread ended). */
static bool take_prewarmed(struct fl_stacks *st, const char *path, struct module *mo)
{
	for (unsigned i = 0; i < st->warm.n; i++) {
		struct warm *w = &st->warm.m[i];
		if (w->taken || strcmp(path, w->path))
			continue;
		if (st->warm.running)
			pthread_join(st->warm.thread, NULL);
		st->warm.running = false;
		w->taken = true;
		*mo = w->mo;
		return true;
	}
	return false;
}

/* Module m (a strtab index), opened on first use; NULL when out of memory. */
static struct module *module_of(struct fl_stacks *st, unsigned m)
{
	size_t old = st->capmodules;
	if (fl_vec_reserve((void **)&st->modules, &st->capmodules, (size_t)m + 1, sizeof(*st->modules)))
		return NULL;
	memset(st->modules + old, 0, (st->capmodules - old) * sizeof(*st->modules));
	struct module *mo = &st->modules[m];
	if (!mo->opened && !take_prewarmed(st, fl_strtab_get(m), mo))
		open_module(mo, fl_strtab_get(m));
	return mo;
}

/* ---- callers of fault sites ------------------------------------------------------- */

#define DWARF_RBP 6  /* x86-64 DWARF register numbers (System V psABI, figure 3.36) */

/*
 * Does the code at f (is_return: the call before return address f) keep
 * rbp as its frame pointer, CFA = rbp + 16 (push %rbp; mov %rsp,%rbp), so
 * that [rbp + 8] is its return address and [rbp] its caller's rbp?  Asked
 * of the unwind tables (.eh_frame, else .debug_frame): they say so per
 * instruction, inside prologues and leaf functions too.
 */
static enum fl_caller_end keeps_frame_pointer(struct fl_stacks *st, struct frame *f, int is_return)
{
	struct module *mo = f->module ? module_of(st, f->module) : NULL;
	__s64 vaddr = mo && mo->elf ? offset_to_vaddr(mo->elf, f->rel) : -1;
	Dwarf_Addr pc, cfi_bias;
	Dwarf_CFI *cfi;
	Dwarf_Frame *frame = NULL;
	Dwarf_Op *ops;
	size_t nops;
	enum fl_caller_end end = FL_CALLERS_NO_UNWIND_INFO;

	if (f->fp[is_return] >= 0)
		return (enum fl_caller_end)f->fp[is_return];
	if (vaddr >= 0) {
		pc = (Dwarf_Addr)vaddr + mo->bias - (is_return ? 1 : 0);
		if (((cfi = dwfl_module_eh_cfi(mo->mod, &cfi_bias)) && !dwarf_cfi_addrframe(cfi, pc - cfi_bias, &frame)) ||
		    ((cfi = dwfl_module_dwarf_cfi(mo->mod, &cfi_bias)) && !dwarf_cfi_addrframe(cfi, pc - cfi_bias, &frame)))
			end = !dwarf_frame_cfa(frame, &ops, &nops) && nops == 1 && ops[0].atom == DW_OP_bregx &&
			      ops[0].number == DWARF_RBP && ops[0].number2 == 16 ? FL_CALLERS_DEPTH
										 : FL_CALLERS_NO_FRAME_POINTER;
		free(frame);
	}
	f->fp[is_return] = (signed char)end;
	return end;
}

/* Was addr in executable memory of m at t? */
static bool is_code(const struct fl_model *m, __u64 t, __u64 addr)
{
	struct fl_vma ended;
	const struct fl_vma *v = fl_model_find_at(m, addr, t, &ended);
	return v && (v->prot & PROT_EXEC);
}

__s64 fl_stacks_callers(struct fl_stacks *st, const struct fl_model *m, __u64 t, __u64 ip, int kernel,
			const __u64 *callers, enum fl_caller_end *end)
{
	__u64 kept[FL_SITE_CALLERS];
	unsigned n = 0, i = 0;
	struct frame *f = frame_at(st, m, t, ip, 0);
	int is_return = 0;

	if (kernel) {
		/* callers[0] is the user pc the syscall saved: no frame vouches for it, the kernel does */
		if (!callers[0] || !is_code(m, t, callers[0] - 1)) {
			*end = FL_CALLERS_NOT_CODE;
			return 0;
		}
		kept[n++] = callers[i++];
		f = frame_at(st, m, t, kept[0], 1);
		is_return = 1;
	}
	for (;;) {
		*end = f ? keeps_frame_pointer(st, f, is_return) : FL_CALLERS_NO_UNWIND_INFO;
		if (*end != FL_CALLERS_DEPTH || i == FL_SITE_CALLERS)
			break;
		if (!callers[i]) {
			*end = FL_CALLERS_TOP;
			break;
		}
		if (!is_code(m, t, callers[i] - 1)) {
			*end = FL_CALLERS_NOT_CODE;
			break;
		}
		kept[n++] = callers[i++];
		f = frame_at(st, m, t, kept[n - 1], 1);
		is_return = 1;
	}
	return intern_at(st, m, t, kept, n);
}

void fl_stacks_symbolize(struct fl_stacks *st, bool (*stop)(void *ctx), void *ctx)
{
	for (; st->nsymbolized < st->nframes && !(stop && stop(ctx)); st->nsymbolized++) {
		const struct frame *f = &st->frames[st->nsymbolized];
		const struct module *mo = f->module ? module_of(st, f->module) : NULL;
		if (mo && mo->elf)
			symbolize_frame(st, mo, f);
	}
}

void fl_stacks_finish(struct fl_stacks *st)
{
	for (size_t i = 0; i < st->nsites; i++) {
		const struct site *s = &st->sites[i];
		fl_store_fault_site(st->store, s->vma_id, s->proc_id, s->cls, s->frame_id, s->count, s->faultline,
				    s->callers_id, s->callers_end >= 0 ? fl_caller_end_name((unsigned)s->callers_end) : NULL);
	}
	st->nsites = 0;
	fl_stacks_symbolize(st, NULL, NULL);
}
