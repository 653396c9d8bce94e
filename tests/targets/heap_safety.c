/* SPDX-License-Identifier: MIT */
/*
 * heap_safety: the malloc family under the shim keeps its contract.
 * Usage: heap_safety errno | signals | fork N
 *   errno    results and errno of every hooked function, failing and not
 *   signals  a SIGALRM handler that mallocs, reallocs and frees every 200 us
 *            in the main thread, which meanwhile mmaps and munmaps (so the
 *            handler often interrupts the shim recording those), while four
 *            threads (SIGALRM blocked) malloc and free; must end.  (Not
 *            while the main thread is inside malloc: glibc's arena lock
 *            would deadlock the handler, shim or not.)
 *   fork N   the main thread mallocs 500 x 100 B at site_parent (kept), then
 *            4 threads allocate while it forks N children; each child
 *            frees the odd site_parent blocks it inherited, mallocs
 *            1000 x 200 B at site_child (kept) and exits; then one
 *            more child execs /bin/true
 * Exits 0 when everything held, else prints what did not.
 */
/* The errno case asks for impossible sizes and frees a block a failed
 * realloc left in place, on purpose: */
#pragma GCC diagnostic ignored "-Walloc-size-larger-than="
#pragma GCC diagnostic ignored "-Wuse-after-free"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static int failed;

#define EXPECT(c) do { if (!(c)) { printf("FAILED line %d: %s\n", __LINE__, #c); failed = 1; } } while (0)

static int check_errno(void)
{
	void *p, *q;

	errno = EDOM;
	p = malloc(100);
	EXPECT(p && errno == EDOM);
	free(p);
	EXPECT(errno == EDOM);
	p = calloc(10, 10);
	EXPECT(p && errno == EDOM && ((char *)p)[99] == 0);
	q = realloc(p, 1000);
	EXPECT(q && errno == EDOM);
	free(q);
	EXPECT(errno == EDOM);
	errno = 0;
	p = malloc(SIZE_MAX / 2);
	EXPECT(!p && errno == ENOMEM);
	errno = 0;
	size_t huge = SIZE_MAX / 2;
	p = calloc(huge, 4);
	EXPECT(!p && errno == ENOMEM);
	errno = 0;
	p = reallocarray(NULL, huge, 4);
	EXPECT(!p && errno == ENOMEM);
	q = malloc(64);
	memset(q, 7, 64);
	errno = 0;
	p = realloc(q, SIZE_MAX / 2);          /* fails: q is still there */
	EXPECT(!p && errno == ENOMEM && ((char *)q)[63] == 7);
	free(q);
	errno = EDOM;
	EXPECT(posix_memalign(&p, 3, 100) == EINVAL && errno == EDOM);
	EXPECT(posix_memalign(&p, 64, 100) == 0 && ((uintptr_t)p & 63) == 0 && errno == EDOM);
	free(p);
	p = aligned_alloc(4096, 4096);
	EXPECT(p && ((uintptr_t)p & 4095) == 0);
	free(p);
	p = memalign(256, 1000);
	EXPECT(p && ((uintptr_t)p & 255) == 0);
	free(p);
	p = valloc(10);
	EXPECT(p && ((uintptr_t)p & 4095) == 0);
	free(p);
	p = pvalloc(10);
	EXPECT(p && ((uintptr_t)p & 4095) == 0 && malloc_usable_size(p) >= 4096);
	free(p);
	free(NULL);
	p = realloc(NULL, 10);
	EXPECT(p);
	errno = EDOM;
	EXPECT(realloc(p, 0) == NULL && errno == EDOM); /* glibc: frees p */
	return failed;
}

static volatile sig_atomic_t ticks;
static volatile int stop;

static void on_alarm(int sig)
{
	(void)sig;
	/* not async-signal-safe, and programs do it anyway: must not hang */
	void *p = malloc(64 + ticks % 4096);
	void *q = realloc(p, 8192);
	free(q ? q : p);
	ticks++;
}

static void *churn(void *arg)
{
	void *keep[64] = { 0 };
	unsigned long i = (uintptr_t)arg;

	while (!stop) {
		i = i * 6364136223846793005ul + 1;
		unsigned k = (unsigned)(i >> 58);
		free(keep[k]);
		keep[k] = malloc(16 + (i >> 40) % 20000);
		char *r = realloc(keep[(k + 1) & 63], 1 + (i >> 30) % 70000);
		if (r)
			keep[(k + 1) & 63] = r;
	}
	for (int k = 0; k < 64; k++)
		free(keep[k]);
	return NULL;
}

static int check_signals(void)
{
	pthread_t t[4];
	struct itimerval it = { { 0, 200 }, { 0, 200 } };

	sigset_t alrm;

	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &alrm, NULL);  /* the threads inherit it blocked */
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1));
	pthread_sigmask(SIG_UNBLOCK, &alrm, NULL);
	signal(SIGALRM, on_alarm);
	setitimer(ITIMER_REAL, &it, NULL);
	for (struct timeval t0, t1; gettimeofday(&t0, NULL) == 0;) {
		for (int k = 0; k < 100; k++) {
			void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			EXPECT(m != MAP_FAILED);
			munmap(m, 4096);
		}
		gettimeofday(&t1, NULL);
		static long spent;
		spent += (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_usec - t0.tv_usec);
		if (spent > 700000)
			break;
	}
	it = (struct itimerval){ { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &it, NULL);
	stop = 1;
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	EXPECT(ticks > 10);
	return failed;
}

__attribute__((noinline)) static void **site_child(void)
{
	void **v = malloc(1000 * sizeof(void *));
	for (int i = 0; i < 1000; i++)
		v[i] = malloc(200);
	return v;
}

static void *parent_blocks[500];

__attribute__((noinline)) static void site_parent(void)
{
	for (int i = 0; i < 500; i++)
		parent_blocks[i] = malloc(100);
}

static int check_fork(int n)
{
	pthread_t t[4];

	site_parent();

	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 7));
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			for (int k = 1; k < 500; k += 2)
				free(parent_blocks[k]);
			void **v = site_child();
			_exit(v[999] ? 0 : 1);
		}
		int st;
		EXPECT(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	int st;
	EXPECT(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	stop = 1;
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	return failed;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "errno"))
		return check_errno();
	if (argc > 1 && !strcmp(argv[1], "signals"))
		return check_signals();
	if (argc > 2 && !strcmp(argv[1], "fork"))
		return check_fork(atoi(argv[2]));
	fprintf(stderr, "usage: heap_safety errno | signals | fork N\n");
	return 2;
}
