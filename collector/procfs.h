/* SPDX-License-Identifier: MIT */
/* procfs.h - what the collector reads from /proc/PID of a target process. */
#ifndef FL_PROCFS_H
#define FL_PROCFS_H

#include <linux/types.h>
#include <stddef.h>
#include <sys/types.h>

#include "model.h"

/*
 * Parse one /proc/PID/maps line into v (path interned).  Returns 0, or -1
 * if the line is malformed.
 */
int fl_procfs_parse_maps_line(const char *line, struct fl_vma *v);

/* All mappings of pid, sorted. *out is malloc'd. Returns 0 or -errno. */
int fl_procfs_maps(pid_t pid, struct fl_vma **out, size_t *n);

/* RssAnon/RssFile/RssShmem/VmSwap of pid in bytes. Returns 0 or -errno. */
int fl_procfs_rss(pid_t pid, __u64 *anon, __u64 *file, __u64 *shmem, __u64 *swap);

/* minflt and majflt of pid from /proc/PID/stat. Returns 0 or -errno. */
int fl_procfs_faults(pid_t pid, __u64 *min_flt, __u64 *maj_flt);

/*
 * The path of a file pid mapped at [start, end): by its identity (dev in
 * the kernel's encoding, inode; 0 when unknown) as fl_procfs_file_path()
 * finds it, else /proc/PID/map_files, else what fd refers to; NULL if none
 * can tell.  Interned.
 */
const char *fl_procfs_mapped_path(pid_t pid, __u64 start, __u64 end, int fd, __u32 dev, __u64 inode);

/* The file a successful mmap of a file by pid mapped (as fl_procfs_mapped_path), else NULL. */
const char *fl_procfs_call_path(pid_t pid, const struct fl_call *c);

/* A zombie's wait status (as waitpid gives it, /proc/PID/stat's exit_code)
 * and its final minor and major fault totals, from one read.  Returns 0, or
 * -errno (-ESRCH: not a zombie, or reaped). */
int fl_procfs_zombie(pid_t pid, int *wait_status, __u64 faults[2]);

/* /proc/PID/cmdline as a NULL-terminated argv (one malloc'd block: free it), or NULL. */
char **fl_procfs_argv(pid_t pid);

/*
 * The path of a file pid maps (dev in the kernel's encoding, inode): as a
 * maps snapshot read so far showed it, else hint (a path it may have, like
 * an exec's filename) if stat agrees, else from pid's /proc/PID/maps now;
 * NULL if none can tell.  Interned.
 */
const char *fl_procfs_file_path(pid_t pid, __u32 dev, __u64 inode, const char *hint);

/*
 * A file the run maps that faultline chose (the shim; the channel, opened
 * as /proc/PID/fd/N): rows of it get `name` (NULL: the file's real path)
 * even when their process ended before its maps were read, with no search
 * on disk (fl_procfs_resolve_files took 0.2 s for the shim of
 * `record -- true`, and looks in vain for a memfd).
 */
void fl_procfs_know_file(const char *path, const char *name);

/*
 * The shared objects faultline itself has loaded (libc, ld.so, libgcc_s,
 * ...), known as above: a target maps the same files before its shim can
 * name them (the eBPF side reports them by inode), and naming them at the
 * end by a search on disk took 2-50 ms of `record -- true`.
 */
void fl_procfs_know_own_files(void);

/* readlink /proc/PID/exe, interned, or NULL. */
const char *fl_procfs_exe(pid_t pid);

/*
 * The path of each file (dev[i], inode[i]) (kernel encoding), into out[i]
 * (NULL: not found): one the run saw mapped, else one found on disk near
 * the run's other files (procfs.c says where).  For rows whose process was
 * gone before its mappings could be read.
 */
void fl_procfs_resolve_files(const __u32 *dev, const __u64 *inode, size_t n, const char **out);

#endif /* FL_PROCFS_H */
