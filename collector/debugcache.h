/* SPDX-License-Identifier: MIT */
/*
 * debugcache.h - debug files kept decompressed, by build ID, in
 * /var/cache/faultline/debug.
 *
 * Distributions compress the sections of their detached debug files
 * (libc6-dbg's, and what debuginfod serves), and libdw inflates every one of
 * them the first time it reads the file: ~60 ms of zlib for libc's at every
 * `faultline record` that symbolizes a frame in libc (which is nearly every
 * recording), on the start-up's critical path.  The prewarm thread keeps a
 * decompressed copy of the debug files of the modules it opens (libc,
 * ld.so: faultline's own, which the targets map too); later runs read the
 * copy as it is.  The directory is root's alone; a file in it that is not
 * root's alone, or whose build ID is not the one asked for, is not used.
 */
#ifndef FL_DEBUGCACHE_H
#define FL_DEBUGCACHE_H

#include <elfutils/libdwfl.h>

/* The cached copy of mod's debug file, open (its name into *debuginfo_file_name), or -1. */
int fl_debugcache_open(Dwfl_Module *mod, const char *modname, char **debuginfo_file_name);

/*
 * mod's DWARF has been read (dwfl_module_getdwarf): if its debug file is a
 * separate, compressed one, keep a decompressed copy for the next runs.
 * Costs a write of the file (~11 MB for libc's) once per build ID.
 */
void fl_debugcache_keep(Dwfl_Module *mod);

#endif
