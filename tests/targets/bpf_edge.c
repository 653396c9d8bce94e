/* SPDX-License-Identifier: MIT */
/*
 * bpf_edge MODE [N] [FILE] - the kernel's fault edge cases (issue 13), one
 * per mode, for the bpf suite's class tests (tests/bpf/bpf_test.py holds the
 * expected counts and docs/faults.md the kernel paths).  Prints to stderr:
 *   target region PID NAME 0xADDR LEN   a region whose faults the test checks
 *   target note PID TEXT                 something the test may assert on
 *   target rusage PID MIN MAJ            getrusage(RUSAGE_SELF) just before exit
 * Regions are aligned so that fault-around windows (64 KiB) and huge pages
 * (2 MiB) fall the same way every run.  Exit 3: the machine lacks what the
 * mode needs (the test skips and says why).
 */

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define PG 4096L
#define HPAGE (2L << 20)

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

static void region(const char *name, const void *p, long len)
{
	fprintf(stderr, "target region %d %s %p %ld\n", getpid(), name, p, len);
}

static void note(const char *fmt, long v)
{
	fprintf(stderr, "target note %d ", getpid());
	fprintf(stderr, fmt, v);
	fputc('\n', stderr);
}

static void say_rusage(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr, "target rusage %d %ld %ld\n", getpid(), ru.ru_minflt, ru.ru_majflt);
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void lacks(const char *what)
{
	fprintf(stderr, "bpf_edge: this machine lacks %s\n", what);
	exit(3);
}

/*
 * len bytes at an address aligned to align, between two PROT_NONE pages so
 * that the kernel merges the region with no neighbour (one VMA, one key).
 */
static char *map_aligned(long len, long align, int prot, int flags, int fd, off_t off)
{
	long span = len + align + 2 * PG;
	char *raw = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *p;

	if (raw == MAP_FAILED)
		die("mmap reserve");
	p = (char *)(((uintptr_t)raw + PG + align - 1) & ~(uintptr_t)(align - 1));
	if (p - PG > raw)
		munmap(raw, p - PG - raw);
	if (raw + span > p + len + PG)
		munmap(p + len + PG, raw + span - (p + len + PG));
	if (mmap(p, len, prot, flags | MAP_FIXED, fd, off) == MAP_FAILED)
		die("mmap");
	return p;
}

static char *anon(long len, long align, int advice)
{
	char *p = map_aligned(len, align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (advice >= 0)
		madvise(p, len, advice);
	return p;
}

static void touch_write(char *p, long n, long step)
{
	for (long i = 0; i < n; i++)
		((volatile char *)p)[i * step] = (char)(i + 1);
}

static long touch_read(const char *p, long n, long step)
{
	long s = 0;

	for (long i = 0; i < n; i++)
		s += ((const volatile char *)p)[i * step];
	return s;
}

/* A file of n pages in the page cache (written with write(2)). */
static int make_file(const char *path, long n)
{
	char buf[PG];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		die(path);
	memset(buf, 'x', sizeof(buf));
	for (long i = 0; i < n; i++)
		if (write(fd, buf, PG) != PG)
			die("write");
	return fd;
}

static int memfd(long n)
{
	int fd = memfd_create("bpf_edge", 0);

	if (fd < 0 || ftruncate(fd, n * PG))
		die("memfd");
	return fd;
}

/* ---- userfaultfd --------------------------------------------------------- */

struct uffd_job {
	int fd;
	long n;           /* events to serve */
	int wp;           /* resolve write-protect faults instead of copying */
	char *src;        /* one page to copy from */
};

static void *uffd_serve(void *arg)
{
	struct uffd_job *j = arg;

	for (long done = 0; done < j->n;) {
		struct pollfd pf = { j->fd, POLLIN, 0 };
		struct uffd_msg m;

		if (poll(&pf, 1, 5000) != 1)
			die("uffd poll (timeout)");
		if (read(j->fd, &m, sizeof(m)) != sizeof(m) || m.event != UFFD_EVENT_PAGEFAULT)
			continue;
		if (j->wp) {
			struct uffdio_writeprotect w = {
				.range = { m.arg.pagefault.address & ~(PG - 1), PG }, .mode = 0 };

			if (ioctl(j->fd, UFFDIO_WRITEPROTECT, &w))
				die("UFFDIO_WRITEPROTECT");
		} else {
			struct uffdio_copy c = { .dst = m.arg.pagefault.address & ~(PG - 1),
						 .src = (uintptr_t)j->src, .len = PG, .mode = 0 };

			if (ioctl(j->fd, UFFDIO_COPY, &c))
				die("UFFDIO_COPY");
		}
		done++;
	}
	return NULL;
}

static int uffd_open(__u64 features)
{
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC);
	struct uffdio_api api = { .api = UFFD_API, .features = features };

	if (fd < 0)
		lacks("userfaultfd");
	if (ioctl(fd, UFFDIO_API, &api))
		lacks("userfaultfd features");
	return fd;
}

static void uffd_register(int fd, char *p, long len, __u64 mode)
{
	struct uffdio_register r = { .range = { (uintptr_t)p, len }, .mode = mode };

	if (ioctl(fd, UFFDIO_REGISTER, &r))
		lacks("userfaultfd registration of this mode");
}

/* MISSING mode: n/2 reads then n/2 writes from user mode, each page copied in by a handler thread. */
static void uffd_copy(long n)
{
	int fd = uffd_open(0);
	char *p = anon(n * PG, 64 * 1024, MADV_NOHUGEPAGE);
	struct uffd_job j = { fd, n, 0, anon(PG, PG, -1) };
	pthread_t t;

	memset(j.src, 7, PG);
	uffd_register(fd, p, n * PG, UFFDIO_REGISTER_MODE_MISSING);
	region("uffd", p, n * PG);
	pthread_create(&t, NULL, uffd_serve, &j);
	touch_read(p, n / 2, PG);
	touch_write(p + n / 2 * PG, n - n / 2, PG);
	pthread_join(t, NULL);
}

/* MISSING mode, faults taken in kernel mode: read(2) into the registered range. */
static void uffd_kernel(long n, const char *path)
{
	int fd = uffd_open(0), ffd = make_file(path, n);
	char *p = anon(n * PG, 64 * 1024, MADV_NOHUGEPAGE);
	struct uffd_job j = { fd, n, 0, anon(PG, PG, -1) };
	pthread_t t;

	memset(j.src, 7, PG);
	uffd_register(fd, p, n * PG, UFFDIO_REGISTER_MODE_MISSING);
	region("uffd", p, n * PG);
	pthread_create(&t, NULL, uffd_serve, &j);
	if (pread(ffd, p, n * PG, 0) != n * PG)
		die("pread");
	pthread_join(t, NULL);
	close(ffd);
	unlink(path);
}

/* Write-protect mode: n pages written (anon_new), protected, written again (uffd). */
static void uffd_wp(long n)
{
	int fd = uffd_open(UFFD_FEATURE_PAGEFAULT_FLAG_WP);
	char *p = anon(n * PG, 64 * 1024, MADV_NOHUGEPAGE);
	struct uffd_job j = { fd, n, 1, NULL };
	struct uffdio_writeprotect w = { .range = { (uintptr_t)p, n * PG },
					 .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	pthread_t t;

	uffd_register(fd, p, n * PG, UFFDIO_REGISTER_MODE_WP);
	region("uffd", p, n * PG);
	touch_write(p, n, PG);
	if (ioctl(fd, UFFDIO_WRITEPROTECT, &w))
		die("UFFDIO_WRITEPROTECT");
	pthread_create(&t, NULL, uffd_serve, &j);
	touch_write(p, n, PG);
	pthread_join(t, NULL);
}

/* ---- threads -------------------------------------------------------------- */

static pthread_barrier_t go;
static char *race_p;
static long race_n;
static volatile long race_turn[2];
static long race_faults;  /* the kernel's count of the writers' faults (RUSAGE_THREAD) */

/* Both threads write page i at the same moment: a spin rendezvous per page. */
static void *race_writer(void *arg)
{
	long me = (long)arg;
	struct rusage ru0, ru1;

	pthread_barrier_wait(&go);
	getrusage(RUSAGE_THREAD, &ru0);
	for (long i = 0; i < race_n; i++) {
		__atomic_store_n(&race_turn[me], i + 1, __ATOMIC_RELEASE);
		while (__atomic_load_n(&race_turn[!me], __ATOMIC_ACQUIRE) < i + 1)
			;
		((volatile char *)race_p)[i * PG] = 1;
	}
	getrusage(RUSAGE_THREAD, &ru1);
	__atomic_add_fetch(&race_faults, ru1.ru_minflt - ru0.ru_minflt, __ATOMIC_RELAXED);
	return NULL;
}

/*
 * Two threads, one per CPU, write the same zero-page-mapped pages at once:
 * one copy wins per page.  Rounds repeat (MADV_DONTNEED, read, race) until
 * the threads collided at least once, at most 10.
 */
static void race_cow_zero(long n)
{
	pthread_t t[2];
	long rounds = 0;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		lacks("a second CPU");
	race_p = anon(n * PG, 64 * 1024, MADV_NOHUGEPAGE);
	race_n = n;
	region("race", race_p, n * PG);
	while (rounds < 10 && race_faults <= rounds * n) {
		madvise(race_p, n * PG, MADV_DONTNEED);
		touch_read(race_p, n, PG);
		race_turn[0] = race_turn[1] = 0;
		pthread_barrier_init(&go, NULL, 2);
		for (long i = 0; i < 2; i++) {
			cpu_set_t one;

			CPU_ZERO(&one);
			CPU_SET(i, &one);
			pthread_create(&t[i], NULL, race_writer, (void *)i);
			pthread_setaffinity_np(t[i], sizeof(one), &one);
		}
		for (int i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&go);
		rounds++;
	}
	note("race_rounds %ld", rounds);
	note("race_faults %ld", race_faults);
}

static volatile int churn_stop;

static void *churner(void *arg)
{
	long rounds = 0;

	(void)arg;
	while (!churn_stop) {
		void *q = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (q != MAP_FAILED) {
			mprotect(q, PG, PROT_READ);
			munmap(q, 16 * PG);
		}
		rounds++;
	}
	return (void *)rounds;
}

static void *nothing(void *arg)
{
	return arg;
}

static __attribute__((noinline)) void write_pages(char *priv, char *shared, long n)
{
	for (long i = 0; i < n; i++) {
		priv[i * PG] = 1;
		shared[i * PG] = 1;
	}
}

/*
 * One thread writes a private and a shared file mapping while another maps
 * and unmaps as fast as it can (mmap_lock taken for writing all the time).
 * Whatever else the writing thread does meanwhile is faulted in before the
 * other one starts (usleep's and pthread_join's code, a thread's stack, the
 * writing loop, churn_stop's page): a fault there while the lock is held
 * would be counted by address too, in neither region (find_vma_loss saw the
 * loss row one above the two regions' sum once).
 */
static void map_churn(long n, const char *path)
{
	int fd = make_file(path, 2 * n);
	char *priv = map_aligned(n * PG, 64 * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	char *shared = map_aligned(n * PG, 64 * 1024, PROT_READ | PROT_WRITE, MAP_SHARED, fd, n * PG);
	pthread_t t;
	void *rounds;

	region("private", priv, n * PG);
	region("shared", shared, n * PG);
	churn_stop = 0;
	usleep(1);
	write_pages(priv, shared, 0);
	pthread_create(&t, NULL, nothing, NULL); /* its stack is the churner's next (glibc keeps it) */
	pthread_join(t, NULL);
	pthread_create(&t, NULL, churner, NULL);
	usleep(2000);
	write_pages(priv, shared, n);
	churn_stop = 1;
	pthread_join(t, &rounds);
	note("churn_rounds %ld", (long)rounds);
	close(fd);
	unlink(path);
}

/* ---- swap ----------------------------------------------------------------- */

static int paged_out(char *p, long n)
{
	unsigned char v[4096];

	if (n > (long)sizeof(v) || madvise(p, n * PG, MADV_PAGEOUT))
		return 0;
	if (mincore(p, n * PG, v))
		return 0;
	for (long i = 0; i < n; i++)
		if (v[i] & 1)
			return 0;
	return 1;
}

/* Private file pages COWed, swapped out, read back: major_swap. */
static void swap_cow_file(long n, const char *path)
{
	int fd = make_file(path, n);
	char *p = map_aligned(n * PG, 64 * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);

	madvise(p, n * PG, MADV_RANDOM); /* swap-in reads one page per fault */
	region("cowfile", p, n * PG);
	touch_write(p, n, PG);
	if (!paged_out(p, n))
		lacks("swap (MADV_PAGEOUT left pages resident)");
	touch_read(p, n, PG);
	close(fd);
	unlink(path);
}

/* Anonymous pages swapped out and read back; then, shared with a child, read from the swap cache. */
static void swap_anon(long n)
{
	char *p = anon(n * PG, 64 * 1024, MADV_NOHUGEPAGE);
	char *q = anon(n * PG, 64 * 1024, MADV_NOHUGEPAGE);
	struct rusage ru0, ru1;
	int pfd[2];
	pid_t c;

	madvise(p, n * PG, MADV_RANDOM);
	madvise(q, n * PG, MADV_RANDOM);
	region("swapin", p, n * PG);
	region("shared_swap", q, n * PG);
	touch_write(p, n, PG);
	touch_write(q, n, PG);
	if (!paged_out(p, n) || !paged_out(q, n))
		lacks("swap (MADV_PAGEOUT left pages resident)");
	touch_read(p, n, PG); /* swap count 1 on a synchronous device: read directly, major */
	if (pipe(pfd))
		die("pipe");
	c = fork();
	if (c == 0) {
		char ok;

		/* the parent reads first: its swap-in leaves each page in the swap cache */
		close(pfd[1]);
		if (read(pfd[0], &ok, 1) != 1)
			_exit(1);
		region("swapcache", q, n * PG);
		touch_read(q, n, PG);
		say_rusage();
		_exit(0);
	}
	close(pfd[0]);
	/*
	 * Swap count 2: through the swap cache, with swap readahead (which
	 * MADV_RANDOM does not stop here): the first fault of each readahead
	 * window is major, the rest find their page in the swap cache.  The
	 * kernel's own count of majors is the reference.
	 */
	getrusage(RUSAGE_SELF, &ru0);
	touch_read(q, n, PG);
	getrusage(RUSAGE_SELF, &ru1);
	note("shared_swap_majors %ld", ru1.ru_majflt - ru0.ru_majflt);
	if (write(pfd[1], "g", 1) != 1)
		die("write pipe");
	waitpid(c, NULL, 0);
}

/* ---- main ----------------------------------------------------------------- */

static sigjmp_buf segv_jmp;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(segv_jmp, 1);
}

/* Write each of n pages, each expected to raise SIGSEGV; returns how many did. */
static long trap_each(char *p, long n)
{
	volatile long i, hits = 0;

	for (i = 0; i < n; i++)
		if (sigsetjmp(segv_jmp, 1) == 0)
			((volatile char *)p)[i * PG] = 1;
		else
			hits++;
	return hits;
}

/* Touch n pages far below the stack pointer, lowest first: one expansion, then n first touches. */
static __attribute__((noinline)) void stack_growth(long n)
{
	volatile char here;
	char *low = (char *)(((uintptr_t)&here - (4L << 20)) & ~(uintptr_t)(PG - 1));

	region("stack", low, n * PG);
	for (long i = 0; i < n; i++)
		((volatile char *)low)[i * PG] = 1;
}

static void warm_stack(void)
{
	volatile char buf[64 * 1024];

	for (long i = 0; i < (long)sizeof(buf); i += PG)
		buf[i] = 0;
}

static void vdso_vvar(void)
{
	char line[512], *vvar = NULL;
	char *vdso = (char *)getauxval(AT_SYSINFO_EHDR);
	long vdso_len = 0;
	FILE *f = fopen("/proc/self/maps", "r");
	pid_t c;

	while (f && fgets(line, sizeof(line), f)) {
		unsigned long a, b;

		if (sscanf(line, "%lx-%lx", &a, &b) != 2)
			continue;
		if (strstr(line, "[vdso]"))
			vdso_len = b - a;
		else if (strstr(line, "[vvar]") && !vvar)
			vvar = (char *)a;
	}
	if (f)
		fclose(f);
	if (!vdso || !vdso_len || !vvar)
		lacks("a [vdso] and a [vvar] mapping");
	/*
	 * A child: fork copies no PTE of the vdso (no anon_vma, not PFNMAP), so
	 * each of its pages faults once; the parent never touched [vvar].
	 */
	c = fork();
	if (c == 0) {
		region("vdso", vdso, vdso_len);
		region("vvar", vvar, PG);
		touch_read(vdso, vdso_len / PG, PG);
		touch_read(vvar, 1, PG);
		say_rusage();
		_exit(0);
	}
	waitpid(c, NULL, 0);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	long n = argc > 2 ? atol(argv[2]) : 16;
	const char *path = argc > 3 ? argv[3] : "/var/tmp/faultline-bpf-edge";
	char *p;

	warm_stack();
	if (!strcmp(mode, "tmpfs_private")) {
		/* read (fault-around: one fault per 16 pages), then write each page: a COW of shmem */
		int fd = memfd(n);

		p = map_aligned(n * PG, 64 * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
		region("tmpfs", p, n * PG);
		for (long i = 0; i < n; i++) /* in the page cache, not mapped */
			if (pwrite(fd, "x", 1, i * PG) != 1)
				die("pwrite");
		touch_read(p, n, PG);
		touch_write(p, n, PG);
	} else if (!strcmp(mode, "faultaround_file")) {
		int fd = make_file(path, n);

		p = map_aligned(n * PG, 64 * 1024, PROT_READ, MAP_SHARED, fd, 0);
		region("file", p, n * PG);
		touch_read(p, n, PG);
		close(fd);
		unlink(path);
	} else if (!strcmp(mode, "devzero")) {
		int fd = open("/dev/zero", O_RDWR);

		if (fd < 0)
			die("/dev/zero");
		p = map_aligned(n * PG, 64 * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
		madvise(p, n * PG, MADV_NOHUGEPAGE);
		region("devzero", p, n * PG);
		touch_write(p, n / 2, PG);
		touch_read(p + n / 2 * PG, n - n / 2, PG);
	} else if (!strcmp(mode, "vdso")) {
		vdso_vvar();
	} else if (!strcmp(mode, "shared_anon")) {
		/* shmem behind MAP_SHARED|MAP_ANONYMOUS and a memfd: writes, then reads of other pages */
		int fd = memfd(n);
		char *m = map_aligned(n * PG, 64 * 1024, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

		p = map_aligned(n * PG, 64 * 1024, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		region("shared_anon", p, n * PG);
		region("memfd", m, n * PG);
		touch_write(p, n / 2, PG);
		touch_read(p + n / 2 * PG, n - n / 2, PG);
		touch_write(m, n / 2, PG);
		touch_read(m + n / 2 * PG, n - n / 2, PG);
	} else if (!strcmp(mode, "dontneed")) {
		p = anon(n * PG, 64 * 1024, MADV_NOHUGEPAGE);
		region("anon", p, n * PG);
		touch_write(p, n, PG);
		madvise(p, n * PG, MADV_DONTNEED);
		touch_write(p, n, PG);
		madvise(p, n * PG, MADV_DONTNEED);
		touch_read(p, n, PG);
	} else if (!strcmp(mode, "free")) {
		/* MADV_FREE keeps the (clean, writable) PTEs: no fault until reclaim; MADV_PAGEOUT discards */
		p = anon(n * PG, 64 * 1024, MADV_NOHUGEPAGE);
		region("anon", p, n * PG);
		touch_write(p, n, PG);
		madvise(p, n * PG, MADV_FREE);
		touch_read(p, n, PG);
		madvise(p, n * PG, MADV_FREE);
		if (madvise(p, n * PG, MADV_PAGEOUT))
			die("MADV_PAGEOUT");
		touch_write(p, n, PG);
	} else if (!strcmp(mode, "populate")) {
		p = map_aligned(n * PG, 64 * 1024, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		region("populate", p, n * PG);
		touch_write(p, n, PG);
		p = anon(n * PG, 64 * 1024, MADV_NOHUGEPAGE);
		region("mlock", p, n * PG);
		if (mlock(p, n * PG))
			die("mlock");
		touch_write(p, n, PG);
		p = anon(n * PG, 64 * 1024, MADV_NOHUGEPAGE);
		region("populate_write", p, n * PG);
		if (madvise(p, n * PG, MADV_POPULATE_WRITE))
			die("MADV_POPULATE_WRITE");
		touch_write(p, n, PG);
		p = anon(n * PG, 64 * 1024, MADV_NOHUGEPAGE);
		region("populate_read", p, n * PG);
		if (madvise(p, n * PG, MADV_POPULATE_READ))
			die("MADV_POPULATE_READ");
		touch_read(p, n, PG);
	} else if (!strcmp(mode, "stack")) {
		stack_growth(n);
	} else if (!strcmp(mode, "segv")) {
		/* PROT_NONE and guard pages: SIGSEGV, no fault completes */
		struct sigaction sa = { .sa_handler = on_segv };
		volatile long hits = 0;

		sigaction(SIGSEGV, &sa, NULL);
		p = map_aligned(n * PG, 64 * 1024, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		region("prot_none", p, n * PG);
		hits += trap_each(p, n);
		p = anon(n * PG, 64 * 1024, MADV_NOHUGEPAGE);
		region("guard", p, n * PG);
		if (madvise(p, n * PG, MADV_GUARD_INSTALL) == 0) {
			hits += trap_each(p, n);
		} else {
			hits += n; /* no guard pages before 6.13: counted as if they had trapped */
			note("no_guard %ld", 1);
		}
		note("segv %ld", hits);
	} else if (!strcmp(mode, "thp")) {
		/* THP first write, huge zero page, COW split in a child */
		long hp = n;
		char *z;
		pid_t c;

		p = anon(hp * HPAGE, HPAGE, MADV_HUGEPAGE);
		z = anon(hp * HPAGE, HPAGE, MADV_HUGEPAGE);
		region("thp", p, hp * HPAGE);
		region("huge_zero", z, hp * HPAGE);
		touch_write(p, hp, HPAGE);
		touch_read(z, hp, HPAGE);
		c = fork();
		if (c == 0) {
			region("thp_child", p, hp * HPAGE);
			touch_write(p, hp, HPAGE);
			say_rusage();
			_exit(0);
		}
		waitpid(c, NULL, 0);
	} else if (!strcmp(mode, "mthp")) {
		/* 64 KiB folios in a 1 MiB region that no PMD fits (n 64 KiB chunks) */
		p = map_aligned((n + 1) * 64 * 1024, HPAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		munmap(p, 64 * 1024); /* from 64 KiB past a 2 MiB boundary: no PMD fits */
		p += 64 * 1024;
		madvise(p, n * 64 * 1024, MADV_HUGEPAGE);
		region("mthp", p, n * 64 * 1024);
		touch_write(p, n, 64 * 1024);
	} else if (!strcmp(mode, "collapse")) {
		int rc;

		p = anon(HPAGE, HPAGE, -1);
		region("collapse", p, HPAGE);
		touch_write(p, HPAGE / PG, PG);
		rc = madvise(p, HPAGE, MADV_COLLAPSE);
		note("collapse_rc %ld", rc ? errno : 0);
		touch_write(p, HPAGE / PG, PG);
	} else if (!strcmp(mode, "hugetlb")) {
		p = mmap(NULL, 2 * HPAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		if (p == MAP_FAILED)
			lacks("hugetlb pages (vm.nr_hugepages)");
		region("hugetlb", p, 2 * HPAGE);
		touch_write(p, 1, HPAGE);
		touch_read(p + HPAGE, 1, HPAGE);
	} else if (!strcmp(mode, "ksm")) {
		char buf[64];
		long merged = 0;
		int fd;

		p = anon(n * PG, 64 * 1024, MADV_NOHUGEPAGE);
		region("ksm", p, n * PG);
		for (long i = 0; i < n; i++)
			memset(p + i * PG, 0x5a, PG);
		if (madvise(p, n * PG, MADV_MERGEABLE))
			lacks("KSM (MADV_MERGEABLE)");
		for (int tries = 0; tries < 4000 && merged < n; tries++) {
			usleep(10000);
			fd = open("/proc/self/ksm_merging_pages", O_RDONLY);
			if (fd < 0)
				lacks("/proc/self/ksm_merging_pages");
			memset(buf, 0, sizeof(buf));
			if (read(fd, buf, sizeof(buf) - 1) > 0)
				merged = atol(buf);
			close(fd);
		}
		note("ksm_merged %ld", merged);
		if (merged < n)
			lacks("ksmd merging within 40 s");
		touch_write(p, n, PG);
	} else if (!strcmp(mode, "swap_cow_file")) {
		swap_cow_file(n, path);
	} else if (!strcmp(mode, "swap_anon")) {
		swap_anon(n);
	} else if (!strcmp(mode, "uffd_copy")) {
		uffd_copy(n);
	} else if (!strcmp(mode, "uffd_kernel")) {
		uffd_kernel(n, path);
	} else if (!strcmp(mode, "uffd_wp")) {
		uffd_wp(n);
	} else if (!strcmp(mode, "race_cow_zero")) {
		race_cow_zero(n);
	} else if (!strcmp(mode, "map_churn")) {
		map_churn(n, path);
	} else if (!strcmp(mode, "readahead")) {
		/* a file read through a mapping after fadvise(DONTNEED): readahead may use large folios */
		int fd = make_file(path, n);

		fsync(fd);
		posix_fadvise(fd, 0, n * PG, POSIX_FADV_DONTNEED);
		p = map_aligned(n * PG, HPAGE, PROT_READ, MAP_PRIVATE, fd, 0);
		madvise(p, n * PG, MADV_NOHUGEPAGE);
		region("file", p, n * PG);
		touch_read(p, n, PG);
		close(fd);
		unlink(path);
	} else if (!strcmp(mode, "shm_rmid")) {
		int id = shmget(IPC_PRIVATE, n * PG, IPC_CREAT | 0600);

		if (id < 0)
			lacks("SysV shared memory");
		p = shmat(id, NULL, 0);
		if (p == (void *)-1)
			die("shmat");
		shmctl(id, IPC_RMID, NULL);
		region("shm", p, n * PG);
		touch_write(p, n, PG);
		shmdt(p);
	} else {
		fprintf(stderr, "bpf_edge: unknown mode '%s'\n", mode);
		return 2;
	}
	say_rusage();
	return 0;
}
