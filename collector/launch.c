/* SPDX-License-Identifier: MIT */
/* launch.c - start the target held until the collector is ready (see launch.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch.h"

extern char **environ;

static int is_executable(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int fl_launch_resolve(const char *cmd, char *path, size_t pathlen, char *err, size_t errlen)
{
	if (!*cmd) {
		snprintf(err, errlen, "empty command");
		return -ENOENT;
	}
	if (strchr(cmd, '/')) {
		snprintf(path, pathlen, "%s", cmd);
		if (is_executable(path))
			return 0;
		int e = access(path, F_OK) == 0 ? EACCES : ENOENT;
		snprintf(err, errlen, "%s: %s", cmd, e == EACCES ? "permission denied" : "no such file");
		return -e;
	}
	const char *p = getenv("PATH");
	int saw_noexec = 0;
	if (!p)
		p = "/usr/local/bin:/usr/bin:/bin";
	while (*p) {
		size_t n = strcspn(p, ":");
		snprintf(path, pathlen, "%.*s%s%s", (int)n, n ? p : ".", "/", cmd);
		if (is_executable(path))
			return 0;
		if (access(path, F_OK) == 0)
			saw_noexec = 1;
		p += n + (p[n] == ':');
	}
	snprintf(err, errlen, "%s: %s", cmd, saw_noexec ? "permission denied" : "command not found");
	return saw_noexec ? -EACCES : -ENOENT;
}

/* Is this environment entry the variable name (given with its '=')? */
static int is_var(const char *entry, const char *name_eq)
{
	return !strncmp(entry, name_eq, strlen(name_eq));
}

char **fl_launch_env(const char *shim, const char *channel, unsigned depth, unsigned long long heap_sample)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 5, sizeof(*env));
	if (!env)
		return NULL;
	const char *old_preload = getenv("LD_PRELOAD");
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!is_var(environ[i], "LD_PRELOAD=") && !is_var(environ[i], "FAULTLINE_CHANNEL=") &&
		    !is_var(environ[i], "FAULTLINE_DEPTH=") && !is_var(environ[i], "FAULTLINE_HEAP_SAMPLE="))
			env[k++] = environ[i];
	char *s;
	if (shim) {
		/* ours first: its mmap must be the one every other preload's calls reach */
		if (asprintf(&s, "LD_PRELOAD=%s%s%s", shim, old_preload && *old_preload ? ":" : "",
			     old_preload ? old_preload : "") > 0)
			env[k++] = s;
		if (asprintf(&s, "FAULTLINE_CHANNEL=%s", channel) > 0)
			env[k++] = s;
		if (asprintf(&s, "FAULTLINE_DEPTH=%u", depth) > 0)
			env[k++] = s;
		if (asprintf(&s, "FAULTLINE_HEAP_SAMPLE=%llu", heap_sample) > 0)
			env[k++] = s;
	} else if (old_preload && asprintf(&s, "LD_PRELOAD=%s", old_preload) > 0) {
		env[k++] = s;
	}
	env[k] = NULL;
	return env;
}

const char *fl_launch_find_shim(char *buf, size_t len)
{
	const char *env = getenv("FAULTLINE_PRELOAD");
	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return access(buf, R_OK) == 0 ? buf : NULL;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			snprintf(buf, len, "%s/libfaultline-preload.so", self);
			if (access(buf, R_OK) == 0)
				return buf;
		}
	}
	snprintf(buf, len, "%s/libfaultline-preload.so", FL_LIBDIR);
	return access(buf, R_OK) == 0 ? buf : NULL;
}

/* In the child: wait for the release, then exec; report exec's errno on error_fd. */
static void child(int release_rd, int error_wr, const char *path, char *const *argv, char *const *env,
		  const sigset_t *mask)
{
	char c;
	ssize_t n;
	/*
	 * The collector only blocked signals (for its signalfd) and changed no
	 * disposition, so restoring the mask gives the target exactly what it
	 * would have had without faultline, ignored signals included.
	 */
	sigprocmask(SIG_SETMASK, mask, NULL);
	do
		n = read(release_rd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1) {
		execve(path, argv, env);
		if (errno == ENOEXEC) {
			/* like execvp and a shell: a file without #! is a shell script */
			size_t argc = 0;
			while (argv[argc])
				argc++;
			char **sh = calloc(argc + 2, sizeof(*sh));
			if (sh) {
				sh[0] = "/bin/sh";
				sh[1] = (char *)path;
				memcpy(sh + 2, argv + 1, argc * sizeof(*sh));
				execve("/bin/sh", sh, env);
				errno = ENOEXEC;
			}
		}
	}
	int e = n == 1 ? errno : ECANCELED;
	if (write(error_wr, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

int fl_launch_start(struct fl_launch *l, char *const *argv, char *const *env, const void *orig_mask)
{
	int rel[2], errp[2];
	if (pipe2(rel, O_CLOEXEC))
		return -errno;
	if (pipe2(errp, O_CLOEXEC)) {
		int e = errno;
		close(rel[0]);
		close(rel[1]);
		return -e;
	}
	l->pid = fork();
	if (l->pid < 0) {
		int e = errno;
		close(rel[0]);
		close(rel[1]);
		close(errp[0]);
		close(errp[1]);
		return -e;
	}
	if (l->pid == 0) {
		close(rel[1]);
		close(errp[0]);
		child(rel[0], errp[1], l->path, argv, env, orig_mask);
	}
	close(rel[0]);
	close(errp[1]);
	l->release_fd = rel[1];
	l->error_fd = errp[0];
	return 0;
}

int fl_launch_release(struct fl_launch *l)
{
	char c = 1;
	int e = 0;
	ssize_t n = write(l->release_fd, &c, 1);
	close(l->release_fd);
	l->release_fd = -1;
	if (n != 1)
		return -EPIPE;
	do
		n = read(l->error_fd, &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(l->error_fd);
	l->error_fd = -1;
	return n == sizeof(e) ? -e : 0;
}
