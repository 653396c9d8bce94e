/* SPDX-License-Identifier: MIT */
/*
 * loader.c - user side of the BPF programs (fl_kern.bpf.c): load, attach
 * (tracepoints through the skeleton, perf software page-fault events per
 * CPU), follow a tree, stream the ring buffer, drain the fault aggregates.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/perf_event.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include "bootcache.h"
#include "fl_bpf.h"
#include "fl_kern.h"
#include "fl_kern.skel.h"

struct fl_bpf {
	struct fl_kern *skel;   /* the maps: its programs are loaded by part[] */
	struct fl_kern *part[2]; /* the programs, the two halves loaded side by side (open_and_load) */
	struct ring_buffer *rb;
	struct fl_bpf_ops ops;
	struct bpf_link **links;
	int nlinks;
	void *batch;          /* drain buffers: keys, then values */
	size_t batch_cap;     /* entries */
	struct fl_cap caps[FL_CAP_N];
	bool drain_wanted;    /* BPF asked for an early drain (FL_R_DRAIN) */
	int open_errno;       /* why the object could not be opened (open_and_load), 0 if it was */
};

static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (!getenv("FAULTLINE_DEBUG"))
		return 0;
	(void)level;
	return vfprintf(stderr, fmt, ap);
}

/* ---- ring buffer ---------------------------------------------------------- */

static int on_record(void *ctx, void *data, size_t size)
{
	struct fl_bpf *b = ctx;
	const struct fl_rec *h = data;

	if (size < sizeof(*h) || h->size > size)
		return 0;
	switch (h->type) {
	case FL_R_CALL:
		if (h->size >= sizeof(struct fl_call_rec) && b->ops.call)
			b->ops.call(b->ops.ctx, &((const struct fl_call_rec *)data)->call);
		break;
	case FL_R_TASK:
		if (h->size >= sizeof(struct fl_task) && b->ops.task)
			b->ops.task(b->ops.ctx, data);
		break;
	case FL_R_RSS:
		if (h->size >= sizeof(struct fl_rss) && b->ops.rss)
			b->ops.rss(b->ops.ctx, data);
		break;
	case FL_R_VMA:
		if (h->size >= sizeof(struct fl_vma_rec) && b->ops.vma)
			b->ops.vma(b->ops.ctx, data);
		break;
	case FL_R_DRAIN:
		b->drain_wanted = true;
		break;
	}
	return 0;
}

/* ---- capabilities ------------------------------------------------------------ */

static const struct fl_cap cap_table[FL_CAP_N] = {
#define FL_CAP_ROW(id, name, what, repl) [id] = { name, what, FL_CAP_PRESENT, repl, 0 },
	FL_CAPS(FL_CAP_ROW)
#undef FL_CAP_ROW
};

const char *fl_cap_state_name(enum fl_cap_state s)
{
	return s == FL_CAP_PRESENT ? "present" : s == FL_CAP_REPLACED ? "replaced" : "missing";
}

/* name is in the comma-separated list (or the list is "all"). */
static int listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	if (!list)
		return 0;
	if (!strcmp(list, "all"))
		return 1;
	for (const char *p = list; (p = strstr(p, name)); p += n)
		if ((p == list || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return 1;
	return 0;
}

/* Number of arguments of tracepoint tp as tp_btf programs see them (-1: unknown). */
static int tp_nargs(const struct btf *btf, const char *tp)
{
	char name[128];
	const struct btf_type *t;
	int id;

	snprintf(name, sizeof(name), "btf_trace_%s", tp);
	id = btf__find_by_name_kind(btf, name, BTF_KIND_TYPEDEF);
	if (id < 0)
		return -1;
	t = btf__type_by_id(btf, btf__type_by_id(btf, id)->type); /* pointer */
	if (!t || !btf_is_ptr(t))
		return -1;
	t = btf__type_by_id(btf, t->type);
	if (!t || !btf_is_func_proto(t))
		return -1;
	return btf_vlen(t) - 1; /* the first is the tracepoint's private data */
}

static int has_member(const struct btf *btf, const char *type, const char *member)
{
	int id = btf__find_by_name_kind(btf, type, BTF_KIND_STRUCT);
	const struct btf_type *t = id < 0 ? NULL : btf__type_by_id(btf, id);
	const struct btf_member *m = t ? btf_members(t) : NULL;

	for (int i = 0; t && i < btf_vlen(t); i++)
		if (!strcmp(btf__name_by_offset(btf, m[i].name_off), member))
			return 1;
	return 0;
}

/*
 * The tracepoints the tp_btf programs attach to: the loader gives the
 * kernel their BTF ids itself (prepare_tp_btf below).
 */
static const char *const tracepoints[] = {
	"rss_stat", "page_fault_user", "page_fault_kernel", "mm_page_alloc", "mm_page_free",
	"sched_process_fork", "sched_process_exec", "sched_process_exit", "sys_enter", "sys_exit",
};
#define NTP (sizeof(tracepoints) / sizeof(tracepoints[0]))

static const char *const kfunc_names[FL_KF_N] = {
#define FL_KF_NAME(id, name) [id] = name,
	FL_KFUNCS(FL_KF_NAME)
#undef FL_KF_NAME
};

/*
 * What the kernel's BTF says that the loader needs, worked out once per
 * boot (bootcache.h) and kept as one array of ints: the features (0 or 1),
 * then the BTF ids (0: absent) of the tracepoints' btf_trace_* types and of
 * the kfuncs.  libbpf would otherwise parse the kernel's 5 MB BTF at every
 * start to find these few ids (16-20 ms of `record -- true` on 6.18).
 */
struct btf_facts {
	int have[FL_CAP_N];
	int tp_id[NTP];
	int kfunc_id[FL_KF_N];
};
#define NFACTS ((int)(sizeof(struct btf_facts) / sizeof(int)))

static struct btf_facts facts; /* this process's kernel: one per process, as libbpf's handlers are */

/* Read the facts from the kernel's BTF. Returns 0 or -errno. */
static int probe_btf(struct btf_facts *f)
{
	struct btf *btf = btf__load_vmlinux_btf();
	int err = libbpf_get_error(btf), *have = f->have;
	char name[128];

	if (err)
		return err < 0 ? err : -err;
	have[FL_CAP_FIND_VMA] = btf__find_by_name_kind(btf, "bpf_find_vma", BTF_KIND_FUNC) >= 0 &&
				btf__find_by_name_kind(btf, "bpf_loop", BTF_KIND_FUNC) >= 0;
	have[FL_CAP_EXEC_VMAS] = btf__find_by_name_kind(btf, "bpf_iter_task_vma_new", BTF_KIND_FUNC) >= 0;
	have[FL_CAP_EXIT_GROUP_DEAD] = tp_nargs(btf, "sched_process_exit") >= 2;
	have[FL_CAP_RSS_PERCPU] = btf__find_by_name_kind(btf, "mm_rss_stat", BTF_KIND_STRUCT) < 0;
	have[FL_CAP_RSS_UNSPLIT] = !has_member(btf, "task_struct", "rss_stat");
	/* mm_struct's members sit in an anonymous struct (randomized layout): look for the tree type */
	have[FL_CAP_VMA_TREE] = btf__find_by_name_kind(btf, "maple_tree", BTF_KIND_STRUCT) >= 0;
	for (size_t i = 0; i < NTP; i++) {
		snprintf(name, sizeof(name), "btf_trace_%s", tracepoints[i]);
		f->tp_id[i] = btf__find_by_name_kind(btf, name, BTF_KIND_TYPEDEF);
		f->tp_id[i] = f->tp_id[i] < 0 ? 0 : f->tp_id[i];
	}
	for (int i = 0; i < FL_KF_N; i++) {
		f->kfunc_id[i] = btf__find_by_name_kind(btf, kfunc_names[i], BTF_KIND_FUNC);
		f->kfunc_id[i] = f->kfunc_id[i] < 0 ? 0 : f->kfunc_id[i];
	}
	btf__free(btf);
	return 0;
}

/* The facts of this boot: cached, else probed (and cached). Returns 0 or -errno. */
static int boot_facts(struct btf_facts *f)
{
	int *v = (int *)f, err;
	bool ok = !fl_boot_facts_load(v, NFACTS);

	for (int i = 0; ok && i < NFACTS; i++) /* the features are 0 or 1, the ids not negative */
		ok = i < FL_CAP_N ? v[i] == 0 || v[i] == 1 : v[i] >= 0;
	if (ok)
		return 0;
	if (getenv("FAULTLINE_DEBUG"))
		fprintf(stderr, "faultline: the kernel's BTF read for this boot's facts\n");
	if ((err = probe_btf(f)))
		return err;
	fl_boot_facts_save(v, NFACTS);
	return 0;
}

int fl_bpf_probe(struct fl_cap caps[FL_CAP_N])
{
	const char *pretend = getenv("FAULTLINE_PRETEND_MISSING");
	int *have = facts.have, err;

	memcpy(caps, cap_table, sizeof(cap_table));
	if ((err = boot_facts(&facts)))
		return err;
	for (int i = 0; i < FL_CAP_N; i++) {
		/* the RSS layouts are the kernel's: a kernel that has them cannot run the other code */
		int can_pretend = i == FL_CAP_EXEC_VMAS || i == FL_CAP_EXIT_GROUP_DEAD || i == FL_CAP_VMA_TREE;
		int on = have[i];

		if (on && can_pretend && listed(pretend, caps[i].name)) {
			on = 0;
			caps[i].pretended = 1;
		}
		caps[i].state = on ? FL_CAP_PRESENT : caps[i].how ? FL_CAP_REPLACED : FL_CAP_MISSING;
		if (on)
			caps[i].how = NULL;
		else if (!caps[i].how)
			caps[i].how = "the kernel is older than faultline's eBPF side needs: the run has the shim's fidelity";
	}
	return 0;
}

/* ---- tp_btf without the kernel's BTF in user space ------------------------------ */

/*
 * libbpf's own tp_btf handling looks each tracepoint's BTF id up in the
 * kernel's BTF, which it parses for that at every load.  faultline's
 * handler for SEC("tp_btf/...") hands the kernel the ids of the boot's
 * facts instead.  The programs are opened as raw tracepoints (a type
 * libbpf needs no kernel BTF for) and become BTF-typed tracing programs
 * just before their load, which libbpf allows (prog_prepare_load_fn).
 */

/* Is insn a call of placeholder kfunc *k (fl_kern.h FL_KFUNCS)? */
static bool kfunc_call(const struct bpf_insn *insn, __u32 *k)
{
	*k = (__u32)insn->imm - FL_KFUNC_PLACEHOLDER;
	return insn->code == (BPF_JMP | BPF_CALL) && !insn->src_reg && *k < FL_KF_N;
}

/* Replace each placeholder kfunc call in prog with a call of the kernel's function. 0 or -errno. */
static int patch_kfuncs(struct bpf_program *prog)
{
	const struct bpf_insn *insns = bpf_program__insns(prog);
	size_t n = bpf_program__insn_cnt(prog), i = 0;
	struct bpf_insn *copy;
	__u32 k;
	int err;

	while (i < n && !kfunc_call(&insns[i], &k))
		i++;
	if (i == n)
		return 0;
	if (!(copy = malloc(n * sizeof(*copy))))
		return -ENOMEM;
	memcpy(copy, insns, n * sizeof(*copy));
	for (err = 0; i < n && !err; i++) {
		if (!kfunc_call(&copy[i], &k))
			continue;
		err = facts.kfunc_id[k] ? 0 : -ENOENT; /* none is loaded where the kernel lacks its kfuncs */
		copy[i].src_reg = BPF_PSEUDO_KFUNC_CALL;
		copy[i].off = 0; /* vmlinux */
		copy[i].imm = facts.kfunc_id[k];
	}
	err = err ? err : bpf_program__set_insns(prog, copy, n); /* libbpf copies them */
	free(copy);
	return err;
}

static int prepare_tp_btf(struct bpf_program *prog, struct bpf_prog_load_opts *opts, long cookie)
{
	const char *tp = strchr(bpf_program__section_name(prog), '/') + 1;
	size_t i = 0;

	(void)cookie;
	while (i < NTP && strcmp(tracepoints[i], tp))
		i++;
	if (i == NTP || !facts.tp_id[i]) {
		fprintf(stderr, "faultline: tracepoint %s: %s\n", tp,
			i == NTP ? "not in the loader's list (loader.c tracepoints)" : "not in the kernel's BTF");
		return -ENOENT;
	}
	bpf_program__set_type(prog, BPF_PROG_TYPE_TRACING);
	opts->expected_attach_type = BPF_TRACE_RAW_TP;
	opts->attach_btf_obj_fd = 0; /* vmlinux */
	opts->attach_btf_id = (__u32)facts.tp_id[i];
	return patch_kfuncs(prog);
}

int fl_bpf_use_boot_ids(void)
{
	static int id;
	LIBBPF_OPTS(libbpf_prog_handler_opts, o, .prog_prepare_load_fn = prepare_tp_btf);

	if (id <= 0)
		id = libbpf_register_prog_handler("tp_btf/", BPF_PROG_TYPE_RAW_TRACEPOINT, BPF_TRACE_RAW_TP, &o);
	return id > 0 ? 0 : id;
}

const struct fl_cap *fl_bpf_caps(struct fl_bpf *b)
{
	return b->caps;
}

/* Load exactly one program of each pair, as the kernel allows. */
static void choose_programs(struct fl_kern *skel, const struct fl_cap *caps)
{
	int vmas = caps[FL_CAP_EXEC_VMAS].state == FL_CAP_PRESENT;
	int group_dead = caps[FL_CAP_EXIT_GROUP_DEAD].state == FL_CAP_PRESENT;

	bpf_program__set_autoload(skel->progs.on_exec_vmas, vmas);
	bpf_program__set_autoload(skel->progs.on_exec, !vmas);
	bpf_program__set_autoload(skel->progs.on_exit, group_dead);
	bpf_program__set_autoload(skel->progs.on_exit_live, !group_dead);
	skel->rodata->fl_tree_walk = caps[FL_CAP_VMA_TREE].state == FL_CAP_PRESENT;
}

/* ---- open / close ----------------------------------------------------------- */

static int perf_open(__u64 config, int cpu)
{
	struct perf_event_attr a = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(a),
		.config = config,
		.sample_period = 1,
	};

	return syscall(SYS_perf_event_open, &a, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

/*
 * Attach every loaded tp_btf program, each link into b->links.  Not through
 * the skeleton: from libbpf 1.2 on, bpf_program__set_type (prepare_tp_btf)
 * drops the program's SEC() handler, and the skeleton's attach then skips
 * the program without a word (seen with 1.5: no call, no VMA recorded).
 */
static int attach_tracepoints(struct fl_bpf *b, char *why, size_t whylen)
{
	for (int h = 0; h < 2; h++) {
		struct bpf_program *prog;

		bpf_object__for_each_program(prog, b->part[h]->obj) {
			const char *sec = bpf_program__section_name(prog);
			struct bpf_link *l;

			if (!bpf_program__autoload(prog) || strncmp(sec, "tp_btf/", 7))
				continue;
			if (!(l = bpf_program__attach_trace(prog))) {
				int err = -errno;
				snprintf(why, whylen, "cannot attach %s: %s", sec, strerror(-err));
				return err;
			}
			b->links[b->nlinks++] = l;
		}
	}
	return 0;
}

static int attach_perf(struct fl_bpf *b, int ncpu, char *why, size_t whylen)
{
	static const __u64 cfg[2] = { PERF_COUNT_SW_PAGE_FAULTS_MIN, PERF_COUNT_SW_PAGE_FAULTS_MAJ };
	int opened = 0;

	for (int cpu = 0; cpu < ncpu; cpu++) {
		for (int i = 0; i < 2; i++) {
			int fd = perf_open(cfg[i], cpu), err;
			LIBBPF_OPTS(bpf_perf_event_opts, o, .bpf_cookie = i); /* on_fault: 1 = major */
			struct bpf_link *l;

			if (fd < 0) {
				err = -errno;
				if (err == -ENODEV) /* possible but offline CPU */
					continue;
				snprintf(why, whylen, "perf software page-fault events unavailable: %s%s",
					 strerror(-err), err == -EACCES || err == -EPERM ?
					 " (need CAP_PERFMON: run as root)" : "");
				return err;
			}
			l = bpf_program__attach_perf_event_opts(b->part[0]->progs.on_fault, fd, &o);
			if (!l) {
				err = -errno;
				close(fd);
				snprintf(why, whylen, "cannot attach to perf software page-fault events: %s",
					 strerror(-err));
				return err;
			}
			b->links[b->nlinks++] = l; /* the link owns fd */
			opened++;
		}
	}
	if (!opened) {
		snprintf(why, whylen, "perf software page-fault events unavailable: no online CPU");
		return -ENODEV;
	}
	return 0;
}

static int have_cap(const struct __user_cap_data_struct *d, int cap)
{
	return (d[cap / 32].effective >> (cap % 32)) & 1;
}

static void get_caps(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };

	if (syscall(SYS_capget, &hdr, data))
		memset(data, 0, 2 * sizeof(*data));
}

/* CAP_SYS_ADMIN, or CAP_BPF and CAP_PERFMON. */
static int privileged(void)
{
	struct __user_cap_data_struct d[2];

	get_caps(d);
	return have_cap(d, 21) || (have_cap(d, 39) && have_cap(d, 38));
}

/* Load and attach everything; see fl_bpf.h. */
/*
 * FAULTLINE_SITE_MAP_ENTRIES=N gives each site map room for N sites instead
 * of 65536: a test fills them to see every site not counted is a loss row.
 * The early drain (agg_half) comes at half of the smaller map.
 */
static void size_site_maps(struct fl_kern *skel)
{
	const char *env = getenv("FAULTLINE_SITE_MAP_ENTRIES");
	long n = env ? strtol(env, NULL, 10) : 0;

	if (n > 0 && n < (1l << 20)) {
		bpf_map__set_max_entries(skel->maps.sites0, (__u32)n);
		bpf_map__set_max_entries(skel->maps.sites1, (__u32)n);
		if ((__u64)n / 2 < skel->rodata->agg_half)
			skel->rodata->agg_half = (__u64)n / 2;
	}
}

/* The object, opened; NULL with *open_errno set when it cannot be. */
static struct fl_kern *open_skel(const char *core_btf, int *open_errno)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .btf_custom_path = core_btf);
	struct fl_kern *skel = fl_kern__open_opts(&opts);

	if (!skel)
		*open_errno = errno ? errno : ENOEXEC;
	return skel;
}

/*
 * The programs the second thread loads: the kernel verifies the two halves
 * side by side, about as long each on 6.18 (on_fault ~18 ms and the fault
 * path's small ones; on_sys_exit ~10, on_sys_enter ~4, on_rss_stat ~4 and
 * the once-per-process ones), ~45 ms on one CPU before.
 */
static bool second_half(const struct bpf_program *prog)
{
	static const char *const names[] = { "on_sys_exit", "on_sys_enter", "on_rss_stat", "on_exec_vmas",
					     "on_exec", "on_exit", "on_exit_live", "on_fork" };
	const char *name = bpf_program__name(prog);

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i]))
			return true;
	return false;
}

/*
 * Open half h of the programs into b->part[h]: the same object, its maps
 * those b->skel made.  0, -ENOEXEC if it could not be opened (*open_errno
 * says why), or libbpf's error.
 */
static int open_part(struct fl_bpf *b, int h, const char *core_btf, int *open_errno)
{
	struct fl_kern *p = b->part[h] = open_skel(core_btf, open_errno);
	struct bpf_program *prog;
	struct bpf_map *map;
	int err = 0;

	if (!p)
		return -ENOEXEC;
	choose_programs(p, b->caps);
	bpf_object__for_each_program(prog, p->obj)
		if (second_half(prog) != h)
			bpf_program__set_autoload(prog, false);
	bpf_object__for_each_map(map, p->obj) {
		struct bpf_map *made = bpf_object__find_map_by_name(b->skel->obj, bpf_map__name(map));
		if (!err)
			err = made ? bpf_map__reuse_fd(map, bpf_map__fd(made)) : -ENOENT;
	}
	return err;
}

struct part_load {
	struct fl_bpf *b;
	const char *core_btf;
	int err, open_errno;
};

static void *load_second_half(void *arg)
{
	struct part_load *l = arg;

	l->err = open_part(l->b, 1, l->core_btf, &l->open_errno);
	if (!l->err)
		l->err = fl_kern__load(l->b->part[1]);
	return NULL;
}

static void destroy_skels(struct fl_bpf *b)
{
	for (int h = 0; h < 2; h++) {
		fl_kern__destroy(b->part[h]);
		b->part[h] = NULL;
	}
	fl_kern__destroy(b->skel);
	b->skel = NULL;
}

/*
 * Open the object into b->skel and make its maps, then load the programs,
 * half of them on a second thread, their CO-RE relocations made against
 * core_btf (a path, bootcache.h) or the kernel's BTF (NULL).  0, or libbpf's
 * error; b->open_errno says why when the object could not even be opened.
 */
static int open_and_load(struct fl_bpf *b, const char *core_btf)
{
	struct part_load second = { b, core_btf, 0, 0 };
	struct bpf_program *prog;
	pthread_t thread;
	int err;

	destroy_skels(b);
	b->open_errno = 0;
	if (!(b->skel = open_skel(core_btf, &b->open_errno)))
		return -ENOEXEC;
	if (core_btf && getenv("FAULTLINE_DEBUG"))
		fprintf(stderr, "faultline: CO-RE relocations against %s\n", core_btf);
	choose_programs(b->skel, b->caps); /* its read-only data, which the parts share */
	size_site_maps(b->skel);
	bpf_object__for_each_program(prog, b->skel->obj)
		bpf_program__set_autoload(prog, false);
	if ((err = fl_kern__load(b->skel)))
		return err;
	bool threaded = !pthread_create(&thread, NULL, load_second_half, &second);
	err = open_part(b, 0, core_btf, &b->open_errno);
	if (!err)
		err = fl_kern__load(b->part[0]);
	if (threaded)
		pthread_join(thread, NULL);
	else
		load_second_half(&second);
	if (!b->open_errno)
		b->open_errno = second.open_errno;
	return err ? err : second.err;
}

int fl_bpf_open(struct fl_bpf **out, const struct fl_bpf_ops *ops, char *why, size_t whylen)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
	struct fl_bpf *b;
	int ncpu, err;
	char dummy[8];

	if (!why) {
		why = dummy;
		whylen = sizeof(dummy);
	}
	*why = 0;
	*out = NULL;
	libbpf_set_print(quiet_print);
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		snprintf(why, whylen, "kernel has no BTF (/sys/kernel/btf/vmlinux missing)");
		return -ENOENT;
	}
	setrlimit(RLIMIT_MEMLOCK, &rl); /* pre-5.11 kernels charge maps to memlock */
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0) {
		snprintf(why, whylen, "cannot count CPUs: %s", strerror(-ncpu));
		return ncpu ? ncpu : -EINVAL;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	if (ops)
		b->ops = *ops;
	err = fl_bpf_probe(b->caps);
	if (err) {
		snprintf(why, whylen, "cannot read the kernel's BTF: %s", strerror(-err));
		goto fail;
	}
	if (b->caps[FL_CAP_FIND_VMA].state != FL_CAP_PRESENT) {
		snprintf(why, whylen, "kernel too old: no %s", b->caps[FL_CAP_FIND_VMA].what);
		err = -ENOTSUP;
		goto fail;
	}
	if ((err = fl_bpf_use_boot_ids())) {
		snprintf(why, whylen, "cannot register the tp_btf handler with libbpf: %s", strerror(-err));
		goto fail;
	}
	char core_path[128];
	size_t objlen;
	const void *obj = fl_kern__elf_bytes(&objlen);
	const char *core = fl_boot_core_btf(obj, objlen, core_path, sizeof(core_path));
	err = open_and_load(b, core);
	if (err && core) {
		/* a cached BTF libbpf could not use: without it, and made again next time */
		fl_boot_core_btf_forget(core);
		err = open_and_load(b, NULL);
	}
	if (err && b->open_errno) {
		snprintf(why, whylen, "cannot open the BPF object: %s", strerror(b->open_errno));
		goto fail;
	}
	if (err) {
		/* the verifier also answers EACCES: only a missing privilege is said as one */
		if ((err == -EPERM || err == -EACCES) && !privileged())
			snprintf(why, whylen, "need CAP_BPF and CAP_PERFMON (run as root)");
		else
			snprintf(why, whylen, "the kernel refused the BPF programs: %s "
				 "(FAULTLINE_DEBUG=1 shows the verifier log)", strerror(-err));
		goto fail;
	}
	/* room for every program of the object (the tracepoints) and two perf events per CPU */
	b->links = calloc((size_t)ncpu * 2 + sizeof(b->part[0]->progs) / sizeof(struct bpf_program *),
			  sizeof(*b->links));
	if (!b->links) {
		err = -ENOMEM;
		goto fail;
	}
	err = attach_tracepoints(b, why, whylen);
	if (!err)
		err = attach_perf(b, ncpu, why, whylen);
	if (err)
		goto fail;
	b->rb = ring_buffer__new(bpf_map__fd(b->skel->maps.events), on_record, b, NULL);
	if (!b->rb) {
		err = -errno;
		snprintf(why, whylen, "cannot open the BPF ring buffer: %s", strerror(-err));
		goto fail;
	}
	*out = b;
	return 0;
fail:
	fl_bpf_close(b);
	return err < 0 ? err : -EINVAL;
}

void fl_bpf_close(struct fl_bpf *b)
{
	if (!b)
		return;
	ring_buffer__free(b->rb);
	for (int i = 0; i < b->nlinks; i++)
		bpf_link__destroy(b->links[i]);
	free(b->links);
	destroy_skels(b);
	free(b->batch);
	free(b);
}

/* ---- tracking --------------------------------------------------------------- */

/* minflt (field 10) and majflt (field 12) of a /proc stat file. */
static int read_flt(const char *path, __u64 *min, __u64 *maj)
{
	char buf[1024], *p;
	unsigned long long mn, mj;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	p = strrchr(buf, ')'); /* comm may hold spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %llu %*u %llu", &mn, &mj) != 2)
		return -EIO;
	*min = mn;
	*maj = mj;
	return 0;
}

/*
 * Track pid and its future descendants.  The faults the process already had
 * become base_*_flt of its EXIT record; what its counters gain beyond them
 * and the faults the perf events see is gup (fl_kern.bpf.c task_exit).
 */
int fl_bpf_track(struct fl_bpf *b, __u32 pid)
{
	struct fl_proc p = {};
	char path[64];
	int err;

	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	err = read_flt(path, &p.base_min, &p.base_maj);
	if (err)
		return err;
	if (bpf_map_update_elem(bpf_map__fd(b->skel->maps.tracked), &pid, &p, BPF_ANY))
		return -errno;
	return 0;
}

int fl_bpf_fd(struct fl_bpf *b)
{
	return ring_buffer__epoll_fd(b->rb);
}

int fl_bpf_sleep(struct fl_bpf *b)
{
	int n;

	__atomic_store_n(&b->skel->bss->collector_asleep, 1, __ATOMIC_SEQ_CST);
	n = ring_buffer__consume(b->rb);
	if (n)
		fl_bpf_awake(b);
	return n > 0 ? n : 0;
}

void fl_bpf_awake(struct fl_bpf *b)
{
	__atomic_store_n(&b->skel->bss->collector_asleep, 0, __ATOMIC_SEQ_CST);
}

int fl_bpf_poll(struct fl_bpf *b)
{
	return ring_buffer__consume(b->rb);
}

/* ---- drain ------------------------------------------------------------------ */

/*
 * Wait until no program counts into pair idx any more (inflight[idx] is 0
 * on every CPU).  A program announces itself before it checks `active`
 * again, and we flipped `active` before reading the counters, so any
 * program we do not see here counts into the other pair.
 */
static void wait_inflight(struct fl_bpf *b, __u32 idx)
{
	int fd = bpf_map__fd(b->skel->maps.inflight), ncpu = libbpf_num_possible_cpus();
	__u64 v[ncpu > 0 ? ncpu : 1];

	for (int spins = 0; spins < 1000000; spins++) {
		__u64 sum = 0;

		if (bpf_map_lookup_elem(fd, &idx, v))
			return;
		for (int i = 0; i < ncpu; i++)
			sum += v[i];
		if (!sum)
			return;
		sched_yield();
	}
}

/* Make room for n entries of key size ks and value size vs. */
static int batch_room(struct fl_bpf *b, size_t n, size_t ks, size_t vs)
{
	if (n <= b->batch_cap)
		return 0;
	void *nb = realloc(b->batch, n * (ks + vs));
	if (!nb)
		return -ENOMEM;
	b->batch = nb;
	b->batch_cap = n;
	return 0;
}

/*
 * Read and empty one aggregate map nobody counts into any more; each entry
 * is what happened since the last drain.
 */
static int drain_map(struct fl_bpf *b, int fd, int is_site)
{
	size_t ks = is_site ? sizeof(struct fl_site_key) : sizeof(struct fl_fault_key);
	size_t vs = is_site ? sizeof(__u64) : sizeof(struct fl_fault_counts);
	__u32 chunk = 4096, count;
	__u64 in = 0, out = 0;
	int reported = 0, first = 1, err;

	if (batch_room(b, chunk, ks, vs))
		return -ENOMEM;
	for (;;) {
		char *keys = b->batch, *vals = keys + (size_t)chunk * ks;
		DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, o);

		count = chunk;
		err = bpf_map_lookup_and_delete_batch(fd, first ? NULL : &in, &out, keys, vals, &count, &o);
		if (err && errno != ENOENT)
			return -errno;
		for (__u32 i = 0; i < count; i++) {
			if (is_site) {
				if (b->ops.site)
					b->ops.site(b->ops.ctx, (const void *)(keys + i * ks), *(__u64 *)(vals + i * vs));
			} else if (b->ops.faults) {
				b->ops.faults(b->ops.ctx, (const void *)(keys + i * ks), (const void *)(vals + i * vs));
			}
			reported++;
		}
		if (err) /* ENOENT: the map is empty now */
			break;
		in = out;
		first = 0;
	}
	return reported;
}

/*
 * Read and empty every CPU's run of faults in pair idx (fl_kern.h
 * fl_fault_run): what they counted and had not yet added to the maps.
 * Returns the runs read, or -errno.
 */
static int drain_runs(struct fl_bpf *b, __u32 idx)
{
	int fd = bpf_map__fd(b->skel->maps.runs), ncpu = libbpf_num_possible_cpus(), n = 0;
	size_t size = ncpu > 0 ? (size_t)ncpu * sizeof(struct fl_fault_run) : 0;
	struct fl_fault_run *r = size ? calloc(1, size) : NULL;

	if (!r)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &idx, r)) {
		free(r);
		return -errno;
	}
	for (int i = 0; i < ncpu; i++) {
		if (!r[i].site_n)
			continue;
		if (b->ops.faults)
			b->ops.faults(b->ops.ctx, &r[i].key, &r[i].counts);
		if (b->ops.site)
			b->ops.site(b->ops.ctx, &r[i].site, r[i].site_n);
		n++;
	}
	memset(r, 0, size);
	if (n && bpf_map_update_elem(fd, &idx, r, BPF_ANY))
		n = -errno;
	free(r);
	return n;
}

/* Flip the pair programs count into, wait for the old one to be quiet, then empty it. */
int fl_bpf_drain(struct fl_bpf *b)
{
	__u32 old = b->skel->bss->active & 1;
	int nf, ns, nr;

	b->drain_wanted = false;
	__atomic_store_n(&b->skel->bss->active, old ^ 1, __ATOMIC_SEQ_CST);
	wait_inflight(b, old);
	nf = drain_map(b, bpf_map__fd(old ? b->skel->maps.faults1 : b->skel->maps.faults0), 0);
	if (nf < 0)
		return nf;
	ns = drain_map(b, bpf_map__fd(old ? b->skel->maps.sites1 : b->skel->maps.sites0), 1);
	if (ns < 0)
		return ns;
	nr = drain_runs(b, old);
	if (nr < 0)
		return nr;
	/* empty, and nobody adds to it until the next flip: its count of new entries starts again */
	__atomic_store_n(&b->skel->bss->agg_new[old], 0, __ATOMIC_SEQ_CST);
	return nf + ns + 2 * nr;
}

bool fl_bpf_drain_wanted(const struct fl_bpf *b)
{
	return b->drain_wanted;
}

void fl_bpf_loss(struct fl_bpf *b, struct fl_bpf_loss *out)
{
	__u64 v[FL_LOSS_N] = { 0 };
	int fd = bpf_map__fd(b->skel->maps.losses);

	for (__u32 i = 0; i < FL_LOSS_N; i++)
		bpf_map_lookup_elem(fd, &i, &v[i]);
	memset(out, 0, sizeof(*out));
	out->ringbuf = v[FL_LOSS_RINGBUF];
	out->fault_map = v[FL_LOSS_FAULT_MAP];
	out->site_map = v[FL_LOSS_SITE_MAP];
	out->pending = v[FL_LOSS_PENDING];
	out->find_vma = v[FL_LOSS_FIND_VMA];
	out->thread_state = v[FL_LOSS_THREAD];
	out->cuts = v[FL_LOSS_CUTS];
	out->ia32 = v[FL_LOSS_IA32];
}

/* ---- doctor ------------------------------------------------------------------- */

void fl_bpf_print_cap(FILE *out, const struct fl_cap *c)
{
	fprintf(out, "  %-16s %-8s %s", c->name, fl_cap_state_name(c->state), c->what);
	if (c->how)
		fprintf(out, "\n  %-16s %-8s %s %s", "", "", c->state == FL_CAP_REPLACED ? "by:" : "lost:", c->how);
	if (c->pretended)
		fprintf(out, " (FAULTLINE_PRETEND_MISSING)");
	fputc('\n', out);
}

int fl_bpf_doctor(FILE *out)
{
	struct __user_cap_data_struct data[2] = { { 0 } };
	int ok = 1, fd, cap_bpf, cap_perfmon, cap_admin, btf, tracefs, perf = 0;
	struct fl_bpf *b = NULL;
	char why[256];

	get_caps(data);
	cap_bpf = have_cap(data, 39);      /* CAP_BPF */
	cap_perfmon = have_cap(data, 38);  /* CAP_PERFMON */
	cap_admin = have_cap(data, 21);    /* CAP_SYS_ADMIN */
	fprintf(out, "capabilities: CAP_BPF %s, CAP_PERFMON %s, CAP_SYS_ADMIN %s\n",
		cap_bpf ? "yes" : "no", cap_perfmon ? "yes" : "no", cap_admin ? "yes" : "no");
	if (!(cap_admin || (cap_bpf && cap_perfmon)))
		ok = 0;

	btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
	fprintf(out, "kernel BTF (/sys/kernel/btf/vmlinux): %s\n", btf ? "present" : "missing");
	ok &= btf;

	if (btf) {
		struct fl_cap caps[FL_CAP_N];
		int err = fl_bpf_probe(caps);

		if (err)
			fprintf(out, "kernel features: cannot read the BTF: %s\n", strerror(-err));
		for (int i = 0; !err && i < FL_CAP_N; i++)
			fl_bpf_print_cap(out, &caps[i]);
	}

	tracefs = access("/sys/kernel/tracing/events", F_OK) == 0 ||
		  access("/sys/kernel/debug/tracing/events", F_OK) == 0;
	fprintf(out, "tracefs: %s (not needed: faultline uses tp_btf)\n",
		tracefs ? "mounted" : "not mounted");

	fd = perf_open(PERF_COUNT_SW_PAGE_FAULTS_MIN, 0);
	if (fd >= 0) {
		perf = 1;
		close(fd);
		fprintf(out, "perf software page-fault events: openable\n");
	} else {
		fprintf(out, "perf software page-fault events: %s\n", strerror(errno));
	}
	ok &= perf;

	if (fl_bpf_open(&b, NULL, why, sizeof(why)) == 0) {
		fprintf(out, "BPF programs (tp_btf, perf_event, bpf_find_vma, ring buffer): load and attach\n");
		fl_bpf_close(b);
	} else {
		fprintf(out, "BPF programs: %s\n", why);
		ok = 0;
	}
	fprintf(out, "fidelity: %s\n", ok ?
		"full (syscall ground truth, per-VMA fault classes, RSS timeline)" :
		"reduced (preload shim + /proc sampling: no fault classes, no raw syscalls)");
	return ok ? 0 : 1;
}
