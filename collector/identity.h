/* SPDX-License-Identifier: MIT */
/*
 * identity.h - who owns a channel ring, in the kernel's eyes.
 *
 * A ring's owner pid is written by the shim, in the target's memory: it is
 * the pid the process sees (getpid), which inside a PID namespace is not
 * the collector's (`unshare --pid --fork CMD` says 1, the host's init).
 * Believed as written, the root collector would watch and read the /proc
 * of a process outside the recorded tree.  So a claimed pid is checked
 * against the kernel before anything is read in its name:
 *
 *  - it is the recorded tree's if its parent chain (/proc/PID/stat) leads
 *    to the collector (the launched process's parent; orphans are
 *    reparented to the collector, a subreaper);
 *  - else it is a namespace pid: the tree is searched for the process whose
 *    innermost NSpid (/proc/PID/status) it is and that maps this very ring
 *    of the channel (its /proc/PID/maps shows the memfd's inode at the
 *    ring's offset): that is the host pid the records are filed under;
 *  - else it names a process outside the tree: the ring is not believed
 *    (its records are counted as unidentified, nothing is read).
 * A claimed pid with no /proc entry at all (the process already exited
 * and was reaped) cannot be checked and nothing can be read of it either:
 * it is taken as given.
 *
 * Only the parent chain of the claimed pid (the `stat` line) and its
 * NSpid are read before it is known to be in the tree; nothing of theirs
 * reaches the recording.
 */
#ifndef FL_IDENTITY_H
#define FL_IDENTITY_H

#include <linux/types.h>
#include <sys/types.h>

/* The host pid of the process owning the ring at file offset ring_offset of
 * the channel memfd (inode ino), which claims to be `claimed`; 0 if it is
 * not one of the tree under root. */
__u32 fl_identify(pid_t root, __u32 claimed, __u64 ino, __u64 ring_offset);

/* The host tid of the thread of host process `host` that calls itself
 * ns_tid in its namespace; ns_tid itself when none is found (a thread that
 * exited before its first record was read: its calls keep the namespace's
 * tid, and in BPF mode may miss their kernel twin and be stored twice). */
__u32 fl_identify_tid(__u32 host, __u32 ns_tid);

/* The parent of host, as /proc/PID/stat says (0 when it is gone). */
__u32 fl_identify_parent(__u32 host);

#endif /* FL_IDENTITY_H */
