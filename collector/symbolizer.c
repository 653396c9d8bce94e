/* SPDX-License-Identifier: MIT */
/* symbolizer.c - frames named on a thread of their own (see symbolizer.h). */
#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <gelf.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "debugcache.h"
#include "debugfind.h"
#include "symbolizer.h"
#include "symtab.h"
#include "vec.h"

/* A module opened for symbolization, kept open for the frames that come later. */
struct module {
	bool opened;
	Dwfl *dwfl;
	Dwfl_Module *mod;
	Elf *elf;               /* NULL: cannot be read (its frames stay unnamed) */
	GElf_Addr bias;
	struct fl_symtab *syms;  /* its symbols by address; NULL: ask libdwfl */
	char build_id[2 * 64 + 1];
};

/*
 * The modules nearly every stack has frames in (and the target's own),
 * opened by the thread before any frame: libdw decompresses every
 * compressed section of a debug file the first time it reads it
 * (libc6-dbg's took ~50 ms of a recording of `true`); the thread also keeps
 * a decompressed copy for the next runs (debugcache.h).  The collector's
 * own libc and ld.so are the target's but in a container or chroot;
 * module_of() takes one when the paths are the same.
 */
#define NWARM 4
struct warm {
	char path[PATH_MAX];
	struct module mo;
	bool ours;              /* faultline's own (not the target's): its debug file may be cached */
	bool taken;             /* moved to the table of modules */
};

/* A frame to name. */
struct job {
	__s64 frame_id;
	unsigned module;
	const char *path;
	__u64 rel;
	int is_return;
};

/* A frame named, its text its own. */
struct named {
	__s64 frame_id;
	char build_id[2 * 64 + 1];
	char *function, *file;
	__u64 offset;
	int line;
};

struct fl_symbolizer {
	pthread_mutex_t lock;   /* the jobs, the names, done, busy */
	pthread_cond_t wake;    /* to the thread: jobs, or done */
	pthread_cond_t idle;    /* from the thread: no job left, none under way */
	struct job *jobs;
	size_t head, njobs, capjobs; /* jobs[head, njobs) wait */
	struct named *names;
	size_t nnames, capnames;
	bool done, busy, running;
	pthread_t thread;

	pthread_mutex_t dwfl;   /* modules and their libdwfl handles: the thread, or the caller without it */
	struct module *modules; /* by strtab index */
	size_t capmodules;
	struct module *cfi;     /* the caller's own, for frame pointers: by strtab index, no symbols */
	size_t capcfi;
	struct warm warm[NWARM];
	unsigned nwarm;
	bool warm_ready;        /* warm[] opened (under dwfl) */
};

struct fl_symbolizer *fl_symbolizer_new(void)
{
	struct fl_symbolizer *sy = calloc(1, sizeof(*sy));

	if (!sy)
		return NULL;
	pthread_mutex_init(&sy->lock, NULL);
	pthread_mutex_init(&sy->dwfl, NULL);
	pthread_cond_init(&sy->wake, NULL);
	pthread_cond_init(&sy->idle, NULL);
	return sy;
}

static void close_module(struct module *mo)
{
	fl_symtab_free(mo->syms);
	if (mo->dwfl)
		dwfl_end(mo->dwfl);
}

static void free_names(struct named *n, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(n[i].function);
		free(n[i].file);
	}
}

void fl_symbolizer_free(struct fl_symbolizer *sy)
{
	if (!sy)
		return;
	if (sy->running) {
		pthread_mutex_lock(&sy->lock);
		sy->done = true;
		sy->head = sy->njobs; /* what waits is dropped */
		pthread_cond_signal(&sy->wake);
		pthread_mutex_unlock(&sy->lock);
		pthread_join(sy->thread, NULL);
	}
	for (unsigned i = 0; i < sy->nwarm; i++)
		if (!sy->warm[i].taken)
			close_module(&sy->warm[i].mo);
	for (size_t m = 0; m < sy->capmodules; m++)
		close_module(&sy->modules[m]);
	for (size_t m = 0; m < sy->capcfi; m++)
		close_module(&sy->cfi[m]);
	free(sy->cfi);
	free_names(sy->names, sy->nnames);
	free(sy->names);
	free(sy->jobs);
	free(sy->modules);
	pthread_cond_destroy(&sy->idle);
	pthread_cond_destroy(&sy->wake);
	pthread_mutex_destroy(&sy->dwfl);
	pthread_mutex_destroy(&sy->lock);
	free(sy);
}

/* ---- modules ---------------------------------------------------------------------- */

static const Dwfl_Callbacks dwfl_callbacks = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = fl_debug_find,
	.section_address = dwfl_offline_section_address,
};

static void build_id_hex(Dwfl_Module *mod, char *out, size_t len)
{
	const unsigned char *bits;
	GElf_Addr vaddr;
	int n = dwfl_module_build_id(mod, &bits, &vaddr);
	out[0] = 0;
	for (int i = 0; i < n && (size_t)(2 * i + 2) < len; i++)
		snprintf(out + 2 * i, 3, "%02x", bits[i]);
}

/*
 * Open the module at path into mo (its fields stay empty where it cannot be
 * read); with its symbols.  Opened here (fl_open_regular), not by libdw: the
 * path is one a target mapped, and it may have put a FIFO there since.
 */
static void open_module(struct module *mo, const char *path, bool symbols)
{
	struct stat st;
	int fd;

	mo->opened = true;
	if ((fd = fl_open_regular(path, &st)) < 0 || !(mo->dwfl = dwfl_begin(&dwfl_callbacks))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	mo->mod = dwfl_report_elf(mo->dwfl, path, path, fd, 0, false); /* fd is libdw's if it succeeds */
	if (!mo->mod)
		close(fd);
	dwfl_report_end(mo->dwfl, NULL, NULL);
	mo->elf = mo->mod ? dwfl_module_getelf(mo->mod, &mo->bias) : NULL;
	if (mo->mod)
		build_id_hex(mo->mod, mo->build_id, sizeof(mo->build_id));
	if (mo->elf && symbols)
		mo->syms = fl_symtab_new(mo->mod);
}

/* The opened module of path the thread began with, if there is one and it is ready: into mo. */
static bool take_warm(struct fl_symbolizer *sy, const char *path, struct module *mo)
{
	for (unsigned i = 0; sy->warm_ready && i < sy->nwarm; i++) {
		struct warm *w = &sy->warm[i];
		if (w->taken || strcmp(path, w->path))
			continue;
		w->taken = true;
		*mo = w->mo;
		return true;
	}
	return false;
}

/* Entry m of the table *t of *cap modules, made room for; NULL when out of memory. */
static struct module *module_slot(struct module **t, size_t *cap, unsigned m)
{
	size_t old = *cap;
	if (fl_vec_reserve((void **)t, cap, (size_t)m + 1, sizeof(**t)))
		return NULL;
	memset(*t + old, 0, (*cap - old) * sizeof(**t));
	return &(*t)[m];
}

/* Module m (a strtab index) at path, opened on first use; NULL when out of memory.  Under dwfl. */
static struct module *module_of(struct fl_symbolizer *sy, unsigned m, const char *path)
{
	struct module *mo = module_slot(&sy->modules, &sy->capmodules, m);
	if (mo && !mo->opened && !take_warm(sy, path, mo))
		open_module(mo, path, true);
	return mo;
}

/* Add the file at path (resolved) to what the thread opens first; ours: faultline's own. */
static void warm_add(struct fl_symbolizer *sy, const char *path, bool ours)
{
	char *real = path ? realpath(path, NULL) : NULL;

	for (unsigned i = 0; real && i < sy->nwarm; i++)
		if (!strcmp(sy->warm[i].path, real))
			real[0] = 0;
	if (real && real[0] && sy->nwarm < NWARM && strlen(real) < sizeof(sy->warm[0].path)) {
		sy->warm[sy->nwarm].ours = ours;
		strcpy(sy->warm[sy->nwarm++].path, real);
	}
	free(real);
}

static const char *object_of(const void *addr)
{
	Dl_info info;
	return addr && dladdr(addr, &info) ? info.dli_fname : NULL;
}

/*
 * Open the warm modules, outside the dwfl lock (a frame pointer asked for
 * meanwhile opens its own module rather than wait), then offer them.
 * Where a debuginfod server is configured, libdebuginfod is loaded here
 * too: it is asked the first time a module has no debug file on this
 * machine, and loading its ~30 libraries (curl, gnutls, krb5) took 8-13 ms
 * after the target had ended; without a server it is never loaded
 * (debugfind.h).
 */
static void prewarm(struct fl_symbolizer *sy)
{
	Dwarf_Addr bias;

	fl_debuginfod_load();
	for (unsigned i = 0; i < sy->nwarm; i++) {
		struct module *mo = &sy->warm[i].mo;
		GElf_Ehdr eh;
		open_module(mo, sy->warm[i].path, true);
		if (!mo->mod)
			continue;
		dwfl_module_getdwarf(mo->mod, &bias); /* the decompression: source lines need it */
		/* one line looked up (at the entry point) builds the module's table of
		 * address ranges, which every later lookup uses: 2-5 ms for ld.so */
		if (mo->elf && gelf_getehdr(mo->elf, &eh))
			dwfl_module_getsrc(mo->mod, eh.e_entry + mo->bias);
		if (sy->warm[i].ours) /* a target's debug file is never written to root's cache */
			fl_debugcache_keep(mo->mod); /* the next runs skip the decompression */
	}
	pthread_mutex_lock(&sy->dwfl);
	sy->warm_ready = true;
	pthread_mutex_unlock(&sy->dwfl);
}

/* ---- naming ------------------------------------------------------------------------ */

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

/* Name job j into *out (its text malloc'd).  false: its module cannot be read, no name.  Under dwfl. */
static bool name_frame(struct fl_symbolizer *sy, const struct job *j, struct named *out)
{
	const struct module *mo = module_of(sy, j->module, j->path);
	__s64 vaddr = mo && mo->elf ? offset_to_vaddr(mo->elf, j->rel) : -1;

	if (!mo || !mo->elf)
		return false;
	memset(out, 0, sizeof(*out));
	out->frame_id = j->frame_id;
	strcpy(out->build_id, mo->build_id);
	if (vaddr < 0)
		return true;
	GElf_Addr addr = (GElf_Addr)vaddr + mo->bias - (j->is_return ? 1 : 0), symoff = 0;
	GElf_Sym sym;
	const char *name = NULL, *file = NULL;
	if (fl_symtab_find(mo->syms, addr, &name, &symoff) < 0) /* left to libdwfl: its answer, its slow way */
		name = dwfl_module_addrinfo(mo->mod, addr, &symoff, &sym, NULL, NULL, NULL);
	Dwfl_Line *l = dwfl_module_getsrc(mo->mod, addr);
	if (l)
		file = dwfl_lineinfo(l, NULL, &out->line, NULL, NULL, NULL);
	out->function = demangle(name);
	if (!out->function && name)
		out->function = strdup(name);
	out->file = file ? strdup(file) : NULL;
	out->offset = symoff + (j->is_return ? 1 : 0);
	return true;
}

/* Name j and keep the name for the next fl_symbolizer_take (a name without room is left out). */
static void name_one(struct fl_symbolizer *sy, const struct job *j)
{
	struct named n;

	pthread_mutex_lock(&sy->dwfl);
	bool named = name_frame(sy, j, &n);
	pthread_mutex_unlock(&sy->dwfl);
	if (!named)
		return;
	pthread_mutex_lock(&sy->lock);
	if (fl_vec_reserve((void **)&sy->names, &sy->capnames, sy->nnames + 1, sizeof(*sy->names)))
		free_names(&n, 1);
	else
		sy->names[sy->nnames++] = n;
	pthread_mutex_unlock(&sy->lock);
}

/*
 * The thread: the warm modules (while the eBPF programs load, before the
 * target runs), then every job as it comes, until done and none is left.
 * It names at the lowest priority: on a machine without a spare CPU it
 * takes the target's only when the target leaves it (node, with its own
 * helper threads, recorded 1.42x with naming at the commits and 1.59x with
 * this thread at the default priority), and the caller names what is left
 * at the end (fl_symbolizer_take).
 */
static void *run(void *arg)
{
	struct fl_symbolizer *sy = arg;

	prewarm(sy);
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19); /* this thread's nice value (Linux) */
	pthread_mutex_lock(&sy->lock);
	for (;;) {
		while (sy->head == sy->njobs && !sy->done) {
			sy->busy = false;
			pthread_cond_broadcast(&sy->idle);
			pthread_cond_wait(&sy->wake, &sy->lock);
		}
		if (sy->head == sy->njobs)
			break;
		struct job j = sy->jobs[sy->head++];
		sy->busy = true;
		pthread_mutex_unlock(&sy->lock);
		name_one(sy, &j);
		pthread_mutex_lock(&sy->lock);
	}
	sy->busy = false;
	pthread_cond_broadcast(&sy->idle);
	pthread_mutex_unlock(&sy->lock);
	return NULL;
}

void fl_symbolizer_start(struct fl_symbolizer *sy, const char *shim, const char *exe)
{
	warm_add(sy, object_of((void *)&malloc), true);
	warm_add(sy, object_of((void *)getauxval(AT_BASE)), true); /* ld.so: its ELF header */
	warm_add(sy, shim, true);
	warm_add(sy, exe, false);
	sy->running = !pthread_create(&sy->thread, NULL, run, sy);
}

int fl_symbolizer_add(struct fl_symbolizer *sy, __s64 frame_id, unsigned module, const char *path, __u64 rel,
		      int is_return)
{
	int rc = 0;

	pthread_mutex_lock(&sy->lock);
	if (sy->head == sy->njobs) /* all taken: start the array again */
		sy->head = sy->njobs = 0;
	if (fl_vec_reserve((void **)&sy->jobs, &sy->capjobs, sy->njobs + 1, sizeof(*sy->jobs)))
		rc = -ENOMEM;
	else
		sy->jobs[sy->njobs++] = (struct job){ frame_id, module, path, rel, is_return };
	pthread_cond_signal(&sy->wake);
	pthread_mutex_unlock(&sy->lock);
	return rc;
}

void fl_symbolizer_take(struct fl_symbolizer *sy, bool last, bool (*stop)(void *ctx), void *stop_ctx,
			void (*fn)(void *ctx, const struct fl_symbol *s), void *ctx)
{
	pthread_mutex_lock(&sy->lock);
	if (last && sy->running && !sy->done) {
		sy->done = true; /* the thread ends once no job is left */
		pthread_cond_signal(&sy->wake);
	}
	/*
	 * Without the thread, and at the end beside it (its priority is the
	 * lowest) once it has opened the warm modules, jobs are named here: not
	 * before, or libc would be opened twice, the second time reading the
	 * cached copy the first one had just made (e2e/debug_cache_bpf).
	 */
	pthread_mutex_lock(&sy->dwfl);
	bool warm = sy->warm_ready;
	pthread_mutex_unlock(&sy->dwfl);
	if (sy->running && sy->done && !warm)
		while (sy->head < sy->njobs || sy->busy)
			pthread_cond_wait(&sy->idle, &sy->lock);
	if (!sy->running || sy->done) {
		while (sy->head < sy->njobs && !(stop && stop(stop_ctx))) {
			struct job j = sy->jobs[sy->head++];
			pthread_mutex_unlock(&sy->lock);
			name_one(sy, &j);
			pthread_mutex_lock(&sy->lock);
		}
		while (sy->running && sy->busy) /* the thread's job under way */
			pthread_cond_wait(&sy->idle, &sy->lock);
	}
	struct named *names = sy->names;
	size_t n = sy->nnames;
	sy->names = NULL;
	sy->nnames = sy->capnames = 0;
	pthread_mutex_unlock(&sy->lock);
	for (size_t i = 0; i < n; i++) { /* the thread ends meanwhile, joined by fl_symbolizer_free */
		const struct named *d = &names[i];
		struct fl_symbol s = { d->frame_id, d->build_id[0] ? d->build_id : NULL, d->function, d->offset,
				       d->file, d->line };
		fn(ctx, &s);
	}
	free_names(names, n);
	free(names);
}

/* ---- frame pointers ------------------------------------------------------------------- */

#define DWARF_RBP 6  /* x86-64 DWARF register numbers (System V psABI, figure 3.36) */

/*
 * Asked of the unwind tables (.eh_frame, else .debug_frame): they say so per
 * instruction, inside prologues and leaf functions too.  CFA = rbp + 16 is
 * push %rbp; mov %rsp,%rbp: [rbp + 8] is the return address and [rbp] the
 * caller's rbp.  The caller's thread has modules of its own for this (no
 * symbols read): it asks while it reads a process's smaps, right after
 * draining the rings, and must not wait there for the thread opening a large
 * module (e2e/exit_killed_bpf saw a MADV_DONTNEED land in such a wait).
 */
enum fl_caller_end fl_symbolizer_frame_pointer(struct fl_symbolizer *sy, unsigned module, const char *path,
					       __u64 rel, int is_return)
{
	enum fl_caller_end end = FL_CALLERS_NO_UNWIND_INFO;
	struct module *mo = module_slot(&sy->cfi, &sy->capcfi, module);

	if (mo && !mo->opened)
		open_module(mo, path, false);
	__s64 vaddr = mo && mo->elf ? offset_to_vaddr(mo->elf, rel) : -1;
	if (vaddr >= 0) {
		Dwarf_Addr pc = (Dwarf_Addr)vaddr + mo->bias - (is_return ? 1 : 0), cfi_bias;
		Dwarf_CFI *cfi;
		Dwarf_Frame *frame = NULL;
		Dwarf_Op *ops;
		size_t nops;

		if (((cfi = dwfl_module_eh_cfi(mo->mod, &cfi_bias)) && !dwarf_cfi_addrframe(cfi, pc - cfi_bias, &frame)) ||
		    ((cfi = dwfl_module_dwarf_cfi(mo->mod, &cfi_bias)) && !dwarf_cfi_addrframe(cfi, pc - cfi_bias, &frame)))
			end = !dwarf_frame_cfa(frame, &ops, &nops) && nops == 1 && ops[0].atom == DW_OP_bregx &&
			      ops[0].number == DWARF_RBP && ops[0].number2 == 16 ? FL_CALLERS_DEPTH
										 : FL_CALLERS_NO_FRAME_POINTER;
		free(frame);
	}
	return end;
}
