/* SPDX-License-Identifier: MIT */
/*
 * bootcache.h - what the loader keeps per boot in /run/faultline: the
 * kernel cannot change until the next boot, so what its BTF says is worked
 * out once (by the first recording after a boot) and read back by the rest.
 * The directory is root's alone (/run is a tmpfs, emptied at boot); a file
 * in it that is not root's alone is ignored.
 */
#ifndef FL_BOOTCACHE_H
#define FL_BOOTCACHE_H

#include <stddef.h>

/* The loader's n facts from the kernel's BTF (loader.c struct btf_facts) into v: 0, or -1 if none. */
int fl_boot_facts_load(int *v, int n);
void fl_boot_facts_save(const int *v, int n);

/*
 * A BTF holding only the kernel types the BPF object obj[0..len) relocates
 * against (`bpftool gen min_core_btf`): libbpf then matches each CO-RE
 * relocation among a few dozen types instead of the kernel's ~130,000.
 * Made on first use (when bpftool is installed).  Returns its path (in
 * path[pathlen]) or NULL: then libbpf reads the kernel's BTF, as without.
 */
const char *fl_boot_core_btf(const void *obj, size_t len, char *path, size_t pathlen);

/* path (from fl_boot_core_btf) did not load: drop it, the next start makes it again. */
void fl_boot_core_btf_forget(const char *path);

#endif
