/* SPDX-License-Identifier: MIT */
/*
 * launch.h - start the target: resolve the command like a shell would,
 * fork a child that waits until the collector is ready (BPF attached to its
 * pid), then exec the command with the shim preloaded.
 */
#ifndef FL_LAUNCH_H
#define FL_LAUNCH_H

#include <sys/types.h>

#define FL_LAUNCH_GROUPS 256

/*
 * Who the target runs as when faultline is root for eBPF but the person is
 * not: the sudo caller (SUDO_UID/SUDO_GID) or `--user NAME`.  Found before
 * the fork, so the child only makes the set*id syscalls.
 */
struct fl_launch_user {
	uid_t uid;
	gid_t gid;
	gid_t groups[FL_LAUNCH_GROUPS];
	int ngroups;
	char name[256], home[1024], shell[1024];
};

/*
 * The user named (a name or a number), or else the sudo caller when we are
 * root under sudo.  Returns 1 when found (u filled), 0 when the target runs
 * as we do, -1 with a message in err.
 */
int fl_launch_user(const char *name, struct fl_launch_user *u, char *err, size_t errlen);

/*
 * A process running as u that keeps the channel's memfd open, so u's
 * processes may open it at the path written to path (/proc/PID/fd/3): a
 * process of another uid may not open a root process's /proc/PID/fd.  It
 * is our own binary re-executed (`faultline __keep-channel`: nothing of
 * ours in its memory, no other fd), in its own session (Ctrl-C is not for
 * it), and exits when we do.  Returns 0 or -errno.
 */
int fl_launch_keeper(const struct fl_launch_user *u, int memfd, char *path, size_t pathlen);

struct fl_launch {
	const struct fl_launch_user *user; /* run the target as this user; NULL: as we are */
	pid_t pid;
	int release_fd;         /* write a byte: the child may exec */
	int error_fd;           /* the child's exec errno, or EOF once exec succeeded */
	char path[4096];        /* the resolved executable */
};

/*
 * Find argv[0] on PATH (as execvp would).  Returns 0, or -ENOENT / -EACCES
 * with a message in err (the caller exits 127 / 126 like a shell).
 */
int fl_launch_resolve(const char *cmd, char *path, size_t pathlen, char *err, size_t errlen);

/*
 * Fork the held child with env (NULL-terminated "K=V" strings) and
 * sigmask restored to orig_mask.  Returns 0 or -errno.
 */
int fl_launch_start(struct fl_launch *l, char *const *argv, char *const *env, const void *orig_mask);

/* Let the child exec.  Returns 0 once it did, or -errno why it could not. */
int fl_launch_release(struct fl_launch *l);

/*
 * The environment for the target: ours with LD_PRELOAD prefixed by shim
 * (when not NULL) and the given FAULTLINE_* settings.  malloc'd.  With a
 * user, HOME, USER, LOGNAME and SHELL are that user's and SUDO_* are gone:
 * the target sees what it would have, run by that user.
 */
char **fl_launch_env(const char *shim, const char *channel, unsigned depth, unsigned long long heap_sample,
		     const struct fl_launch_user *user);
/* Free what fl_launch_env made (the entries it copied from environ stay environ's). */
void fl_launch_env_free(char **env);

/* Where the shim is: $FAULTLINE_PRELOAD, next to this binary, or the install libdir; NULL if none. */
const char *fl_launch_find_shim(char *buf, size_t len);

#endif /* FL_LAUNCH_H */
