/* SPDX-License-Identifier: MIT */
/* launch.c - start the target held until the collector is ready (see launch.h). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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

/* Does the target not get this variable as we have it? */
static int replaced(const char *entry, const struct fl_launch_user *u)
{
	static const char *const ours[] = { "LD_PRELOAD=", "FAULTLINE_CHANNEL=", "FAULTLINE_DEPTH=",
					    "FAULTLINE_HEAP_SAMPLE=" };
	static const char *const users[] = { "HOME=", "USER=", "LOGNAME=", "SHELL=", "SUDO_" };
	for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
		if (is_var(entry, ours[i]))
			return 1;
	for (size_t i = 0; u && i < sizeof(users) / sizeof(users[0]); i++)
		if (is_var(entry, users[i]))
			return 1;
	return 0;
}

char **fl_launch_env(const char *shim, const char *channel, unsigned depth, unsigned long long heap_sample,
		     const struct fl_launch_user *user)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 9, sizeof(*env));
	if (!env)
		return NULL;
	const char *old_preload = getenv("LD_PRELOAD");
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!replaced(environ[i], user))
			env[k++] = environ[i];
	char *s;
	if (user) {
		if (asprintf(&s, "HOME=%s", user->home) > 0)
			env[k++] = s;
		if (asprintf(&s, "USER=%s", user->name) > 0)
			env[k++] = s;
		if (asprintf(&s, "LOGNAME=%s", user->name) > 0)
			env[k++] = s;
		if (asprintf(&s, "SHELL=%s", user->shell) > 0)
			env[k++] = s;
	}
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

void fl_launch_env_free(char **env)
{
	for (size_t i = 0; env && env[i]; i++) {
		size_t j = 0;
		while (environ[j] && environ[j] != env[i])
			j++;
		if (!environ[j])
			free(env[i]);
	}
	free(env);
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

/* Become u: groups first, the uid last (after it, nothing else may change). */
static int become(const struct fl_launch_user *u)
{
	if (setgroups((size_t)u->ngroups, u->groups) || setgid(u->gid) || setuid(u->uid))
		return errno;
	return 0;
}

/* In the child: wait for the release, then exec; report exec's errno on error_fd. */
static void child(int release_rd, int error_wr, const struct fl_launch *l, char *const *argv,
		  char *const *env, const sigset_t *mask)
{
	const char *path = l->path;
	char c;
	ssize_t n;
	int dropped = l->user ? become(l->user) : 0;
	/*
	 * The collector only blocked signals (for its signalfd) and changed no
	 * disposition, so restoring the mask gives the target exactly what it
	 * would have had without faultline, ignored signals included.
	 */
	sigprocmask(SIG_SETMASK, mask, NULL);
	do
		n = read(release_rd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1 && dropped)
		errno = dropped;
	else if (n == 1) {
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
		child(rel[0], errp[1], l, argv, env, orig_mask);
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

/* A name or a number from the password database into u, with its groups. */
static int user_from(struct passwd *pw, const char *what, struct fl_launch_user *u, char *err, size_t errlen)
{
	if (!pw) {
		snprintf(err, errlen, "no such user: %s", what);
		return -1;
	}
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	snprintf(u->name, sizeof(u->name), "%s", pw->pw_name);
	snprintf(u->home, sizeof(u->home), "%s", pw->pw_dir);
	snprintf(u->shell, sizeof(u->shell), "%s", pw->pw_shell && *pw->pw_shell ? pw->pw_shell : "/bin/sh");
	u->ngroups = FL_LAUNCH_GROUPS;
	if (getgrouplist(pw->pw_name, pw->pw_gid, u->groups, &u->ngroups) < 0) {
		u->groups[0] = pw->pw_gid;   /* more than we keep: the primary one only, said */
		u->ngroups = 1;
		fprintf(stderr, "faultline: %s is in more than %d groups; the target gets only its primary group\n",
			pw->pw_name, FL_LAUNCH_GROUPS);
	}
	return 1;
}

int fl_launch_user(const char *name, struct fl_launch_user *u, char *err, size_t errlen)
{
	if (name) {
		char *end;
		unsigned long id = strtoul(name, &end, 10);
		if (geteuid() != 0) {
			snprintf(err, errlen, "--user needs faultline to run as root");
			return -1;
		}
		return user_from(*name && !*end ? getpwuid((uid_t)id) : getpwnam(name), name, u, err, errlen);
	}
	const char *su = getenv("SUDO_UID"), *sg = getenv("SUDO_GID");
	if (geteuid() != 0 || !su || !*su || !sg || !*sg || !strcmp(su, "0"))
		return 0;
	if (user_from(getpwuid((uid_t)strtoul(su, NULL, 10)), su, u, err, errlen) < 0)
		return -1;
	u->gid = (gid_t)strtoul(sg, NULL, 10); /* sudo's word for the primary group */
	return 1;
}

/* In the keeper's first child: the keeper itself; never returns. */
static void keeper(const struct fl_launch_user *u, int memfd, int hold_rd, int ready_wr)
{
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	/* above every fd we will set, then into place: 3 the channel, 4 held open by us, 5 ready */
	int a = fcntl(memfd, F_DUPFD, 10), b = fcntl(hold_rd, F_DUPFD, 10), c = fcntl(ready_wr, F_DUPFD, 10);
	if (nul < 0 || a < 0 || b < 0 || c < 0 || dup2(nul, 0) < 0 || dup2(nul, 1) < 0 || dup2(nul, 2) < 0 ||
	    dup2(a, 3) < 0 || dup2(b, 4) < 0 || dup2(c, 5) < 0)
		_exit(127);
	/* nothing else of ours (the recording, BPF) for a process the user may ptrace */
	if (syscall(SYS_close_range, 6, ~0u, 0))
		for (int fd = 6; fd < 65536; fd++)
			close(fd);
	setsid();
	if (become(u))
		_exit(127);
	execl("/proc/self/exe", "faultline", "__keep-channel", (char *)NULL);
	_exit(127);
}

int fl_launch_keeper(const struct fl_launch_user *u, int memfd, char *path, size_t pathlen)
{
	int hold[2], ready[2];
	if (pipe2(hold, O_CLOEXEC))
		return -errno;
	if (pipe2(ready, O_CLOEXEC)) {
		int e = errno;
		close(hold[0]);
		close(hold[1]);
		return -e;
	}
	/* Twice: the keeper is no child of ours (we reap every child as a subreaper). */
	pid_t mid = fork(), k = -1;
	if (mid == 0) {
		if (fork() == 0)
			keeper(u, memfd, hold[0], ready[1]);
		_exit(0);
	}
	close(hold[0]);
	close(ready[1]);
	int st = 0;
	if (mid > 0)
		waitpid(mid, &st, 0);
	/* the keeper writes its pid once it runs as u, re-executed (its /proc/PID/fd open to u) */
	ssize_t got = mid > 0 ? read(ready[0], &k, sizeof(k)) : 0;
	close(ready[0]);
	if (got != sizeof(k)) {
		close(hold[1]);
		return -ECHILD;
	}
	snprintf(path, pathlen, "/proc/%d/fd/3", (int)k);
	return 0; /* hold[1] stays open (CLOEXEC) until we exit: then the keeper does */
}
