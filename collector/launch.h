/* SPDX-License-Identifier: MIT */
/*
 * launch.h - start the target: resolve the command like a shell would,
 * fork a child that waits until the collector is ready (BPF attached to its
 * pid), then exec the command with the shim preloaded.
 */
#ifndef FL_LAUNCH_H
#define FL_LAUNCH_H

#include <sys/types.h>

struct fl_launch {
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
 * (when not NULL) and the given FAULTLINE_* settings.  malloc'd.
 */
char **fl_launch_env(const char *shim, const char *channel, unsigned depth, unsigned long long heap_sample);

/* Where the shim is: $FAULTLINE_PRELOAD, next to this binary, or the install libdir; NULL if none. */
const char *fl_launch_find_shim(char *buf, size_t len);

#endif /* FL_LAUNCH_H */
