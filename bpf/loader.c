/* SPDX-License-Identifier: MIT */
/*
 * loader.c - user side of the BPF programs (fl_kern.bpf.c): load, attach
 * (tracepoints through the skeleton, perf software page-fault events per
 * CPU), follow a tree, stream the ring buffer, drain the fault aggregates.
 */
#include <errno.h>
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "fl_bpf.h"
#include "fl_kern.h"
#include "fl_kern.skel.h"

/* Previously reported value of one aggregate entry (drain reports differences). */
struct snap {
	__u8 used;
	struct fl_fault_key key;  /* fl_site_key has the same size */
	struct fl_fault_counts val;
};

struct snap_tab {
	struct snap *v;
	size_t cap;   /* power of two */
	size_t n;
};

struct fl_bpf {
	struct fl_kern *skel;
	struct ring_buffer *rb;
	struct fl_bpf_ops ops;
	struct bpf_link **links;
	int nlinks;
	struct snap_tab faults;
	struct snap_tab sites;
	__u32 *dead;          /* tgids whose EXIT was seen: their aggregates go at the next drain */
	size_t ndead, capdead;
};

static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (!getenv("FAULTLINE_DEBUG"))
		return 0;
	(void)level;
	return vfprintf(stderr, fmt, ap);
}

/* ---- snapshot table ------------------------------------------------------ */

static __u64 hash24(const void *k)
{
	const __u64 *w = k;
	__u64 h = w[0] * 0x9e3779b97f4a7c15ull;

	h ^= (w[1] + (h << 6) + (h >> 2)) * 0xc2b2ae3d27d4eb4full;
	h ^= (w[2] + (h << 6) + (h >> 2)) * 0x165667b19e3779f9ull;
	return h ^ (h >> 29);
}

static int snap_grow(struct snap_tab *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 1024;
	struct snap *nv = calloc(ncap, sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->v[i].used)
			continue;
		size_t j = hash24(&t->v[i].key) & (ncap - 1);
		while (nv[j].used)
			j = (j + 1) & (ncap - 1);
		nv[j] = t->v[i];
	}
	free(t->v);
	t->v = nv;
	t->cap = ncap;
	return 0;
}

/* The entry for key, created zeroed when missing; NULL only on ENOMEM. */
static struct snap *snap_get(struct snap_tab *t, const void *key)
{
	size_t j;

	if ((t->n + 1) * 2 > t->cap && snap_grow(t))
		return NULL;
	j = hash24(key) & (t->cap - 1);
	while (t->v[j].used) {
		if (!memcmp(&t->v[j].key, key, sizeof(t->v[j].key)))
			return &t->v[j];
		j = (j + 1) & (t->cap - 1);
	}
	t->v[j].used = 1;
	memcpy(&t->v[j].key, key, sizeof(t->v[j].key));
	memset(&t->v[j].val, 0, sizeof(t->v[j].val));
	t->n++;
	return &t->v[j];
}

/* Remove key (backward-shift deletion keeps probe chains intact). */
static void snap_del(struct snap_tab *t, const void *key)
{
	size_t j, k;

	if (!t->cap)
		return;
	j = hash24(key) & (t->cap - 1);
	while (t->v[j].used && memcmp(&t->v[j].key, key, sizeof(t->v[j].key)))
		j = (j + 1) & (t->cap - 1);
	if (!t->v[j].used)
		return;
	t->v[j].used = 0;
	t->n--;
	for (k = (j + 1) & (t->cap - 1); t->v[k].used; k = (k + 1) & (t->cap - 1)) {
		struct snap e = t->v[k];

		t->v[k].used = 0;
		t->n--;
		*snap_get(t, &e.key) = e;
	}
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
	case FL_R_TASK: {
		const struct fl_task *t = data;

		if (h->size < sizeof(*t))
			break;
		if (t->kind == FL_T_EXIT) {
			if (b->ndead == b->capdead) {
				size_t nc = b->capdead ? b->capdead * 2 : 64;
				__u32 *nd = realloc(b->dead, nc * sizeof(*nd));

				if (nd) {
					b->dead = nd;
					b->capdead = nc;
				}
			}
			if (b->ndead < b->capdead)
				b->dead[b->ndead++] = t->pid;
		}
		if (b->ops.task)
			b->ops.task(b->ops.ctx, t);
		break;
	}
	case FL_R_RSS:
		if (h->size >= sizeof(struct fl_rss) && b->ops.rss)
			b->ops.rss(b->ops.ctx, data);
		break;
	case FL_R_VMA:
		if (h->size >= sizeof(struct fl_vma_rec) && b->ops.vma)
			b->ops.vma(b->ops.ctx, data);
		break;
	}
	return 0;
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

static int attach_perf(struct fl_bpf *b, int ncpu, char *why, size_t whylen)
{
	static const __u64 cfg[2] = { PERF_COUNT_SW_PAGE_FAULTS_MIN, PERF_COUNT_SW_PAGE_FAULTS_MAJ };
	struct bpf_program *prog[2] = { b->skel->progs.on_fault_min, b->skel->progs.on_fault_maj };
	int opened = 0;

	b->links = calloc((size_t)ncpu * 2, sizeof(*b->links));
	if (!b->links)
		return -ENOMEM;
	for (int cpu = 0; cpu < ncpu; cpu++) {
		for (int i = 0; i < 2; i++) {
			int fd = perf_open(cfg[i], cpu), err;
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
			l = bpf_program__attach_perf_event(prog[i], fd);
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

/* Load and attach everything; see fl_bpf.h. */
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
	b->skel = fl_kern__open();
	if (!b->skel) {
		err = -errno;
		snprintf(why, whylen, "cannot open the BPF object: %s", strerror(-err));
		goto fail;
	}
	err = fl_kern__load(b->skel);
	if (err) {
		if (err == -EPERM || err == -EACCES)
			snprintf(why, whylen, "need CAP_BPF and CAP_PERFMON (run as root)");
		else
			snprintf(why, whylen, "the kernel refused the BPF programs: %s "
				 "(FAULTLINE_DEBUG=1 shows the verifier log)", strerror(-err));
		goto fail;
	}
	err = fl_kern__attach(b->skel);
	if (err) {
		snprintf(why, whylen, "cannot attach tracepoints (tp_btf): %s", strerror(-err));
		goto fail;
	}
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
	fl_kern__destroy(b->skel);
	free(b->faults.v);
	free(b->sites.v);
	free(b->dead);
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
 * become base_*_flt of its EXIT record; each thread's own counts are where
 * the per-thread gup accounting starts.
 */
int fl_bpf_track(struct fl_bpf *b, __u32 pid)
{
	struct fl_proc p = {};
	char path[64];
	struct dirent *de;
	DIR *d;
	int err;

	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	err = read_flt(path, &p.base_min, &p.base_maj);
	if (err)
		return err;
	snprintf(path, sizeof(path), "/proc/%u/task", pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct fl_thread th = {};
		char tpath[96];
		__u32 tid = strtoul(de->d_name, NULL, 10);

		if (!tid)
			continue;
		snprintf(tpath, sizeof(tpath), "/proc/%u/task/%u/stat", pid, tid);
		if (read_flt(tpath, &th.seen_min, &th.seen_maj))
			continue;
		th.seen_ok = 1;
		if (bpf_map_update_elem(bpf_map__fd(b->skel->maps.threads), &tid, &th, BPF_ANY)) {
			err = -errno;
			break;
		}
	}
	closedir(d);
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

int fl_bpf_poll(struct fl_bpf *b)
{
	return ring_buffer__consume(b->rb);
}

/* ---- drain ------------------------------------------------------------------ */

static int is_dead(struct fl_bpf *b, __u32 tgid)
{
	for (size_t i = 0; i < b->ndead; i++)
		if (b->dead[i] == tgid)
			return 1;
	return 0;
}

/*
 * Walk one aggregate map, report what grew since the last drain, and delete
 * the entries of processes that have exited.  Entries of live processes are
 * never deleted: a delete racing with the kernel's atomic add could lose
 * counts (docs/faults.md).
 */
static int drain_map(struct fl_bpf *b, int fd, int is_site, struct snap_tab *t)
{
	struct fl_fault_key key, next, *del = NULL;
	size_t ndel = 0, capdel = 0;
	int reported = 0, err = 0, first = 1;

	while (bpf_map_get_next_key(fd, first ? NULL : &key, &next) == 0) {
		struct fl_fault_counts val, d;
		struct snap *s;
		int changed = 0;

		first = 0;
		key = next;
		memset(&val, 0, sizeof(val));
		if (bpf_map_lookup_elem(fd, &key, &val))
			continue; /* deleted meanwhile */
		s = snap_get(t, &key);
		if (!s) {
			err = -ENOMEM;
			break;
		}
		if (is_site) {
			__u64 now = val.cls[0], delta = now - s->val.cls[0];

			if (delta) {
				s->val.cls[0] = now;
				if (b->ops.site)
					b->ops.site(b->ops.ctx, (const struct fl_site_key *)&key, delta);
				reported++;
			}
		} else {
			const __u64 *nv = (const __u64 *)&val;
			__u64 *ov = (__u64 *)&s->val, *dv = (__u64 *)&d;
			size_t nw = sizeof(val) / sizeof(__u64);

			for (size_t i = 0; i < nw; i++) {
				dv[i] = nv[i] - ov[i];
				if (&dv[i] != &d.last_ns && dv[i])
					changed = 1;
			}
			d.last_ns = val.last_ns;
			if (changed) {
				s->val = val;
				if (b->ops.faults)
					b->ops.faults(b->ops.ctx, &key, &d);
				reported++;
			}
		}
		if (is_dead(b, key.tgid)) {
			if (ndel == capdel) {
				size_t nc = capdel ? capdel * 2 : 64;
				struct fl_fault_key *nd = realloc(del, nc * sizeof(*nd));

				if (!nd) {
					err = -ENOMEM;
					break;
				}
				del = nd;
				capdel = nc;
			}
			del[ndel++] = key;
		}
	}
	for (size_t i = 0; i < ndel; i++) {
		bpf_map_delete_elem(fd, &del[i]);
		snap_del(t, &del[i]);
	}
	free(del);
	return err ? err : reported;
}

int fl_bpf_drain(struct fl_bpf *b)
{
	int nf, ns;

	_Static_assert(sizeof(struct fl_site_key) == sizeof(struct fl_fault_key), "snap key");
	nf = drain_map(b, bpf_map__fd(b->skel->maps.faults), 0, &b->faults);
	if (nf < 0)
		return nf;
	ns = drain_map(b, bpf_map__fd(b->skel->maps.sites), 1, &b->sites);
	if (ns < 0)
		return ns;
	b->ndead = 0;
	return nf + ns;
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
}

/* ---- doctor ------------------------------------------------------------------- */

static int have_cap(const struct __user_cap_data_struct *d, int cap)
{
	return (d[cap / 32].effective >> (cap % 32)) & 1;
}

int fl_bpf_doctor(FILE *out)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = { { 0 } };
	int ok = 1, fd, cap_bpf, cap_perfmon, cap_admin, btf, tracefs, perf = 0;
	struct fl_bpf *b = NULL;
	char why[256];

	if (syscall(SYS_capget, &hdr, data))
		memset(data, 0, sizeof(data));
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
