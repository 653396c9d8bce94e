/* SPDX-License-Identifier: MIT */
/*
 * debugfind.h - where a module's debug file is: faultline's decompressed
 * copy (debugcache.h), then the machine's files, then a debuginfod server
 * when one is configured.
 *
 * libdw's own search (dwfl_standard_find_debuginfo) ends, for any module it
 * found no debug file for here, by asking debuginfod, and for that dlopens
 * libdebuginfod whether a server is configured or not: ~30 libraries (curl,
 * gnutls, krb5) whose loading took 10 ms of CPU and, a process with threads
 * relocating them, TLB shootdowns on every CPU, while the eBPF programs were
 * verified beside it: `record -- true` 63 -> 50 ms on this 2-CPU VM.  So the
 * search here is libdw's, made by faultline (non-blocking), and debuginfod
 * is asked last, by build ID, only where DEBUGINFOD_URLS names a server
 * (libdebuginfod's own rule for asking none).
 */
#ifndef FL_DEBUGFIND_H
#define FL_DEBUGFIND_H

#include <stdbool.h>
#include <sys/stat.h>
#include <elfutils/libdwfl.h>

/*
 * The file at path, open read-only (its stat into *st), if it is a regular
 * file; else -1.  Every file named after what a target mapped is opened so
 * (modules, debug files, dwz alternates): O_NONBLOCK, as the target may
 * have put a FIFO there, where libdw's own open() waited for ever.
 */
int fl_open_regular(const char *path, struct stat *st);

/* DEBUGINFOD_URLS names a server: a debug file found nowhere here is asked of it. */
bool fl_debuginfod_configured(void);

/* Where a server is configured, load libdebuginfod (once: the symbolizer's prewarm does it before
 * the first question).  Returns whether its client can be asked. */
bool fl_debuginfod_load(void);

/*
 * Dwfl_Callbacks.find_debuginfo.  The cached copy of mod's debug file
 * (debugcache.h); then what dwfl_standard_find_debuginfo finds on this
 * machine, in the same places: by build ID under /usr/lib/debug, then by the
 * module's .gnu_debuglink name (or FILE.debug) beside the file, in its
 * .debug/ and under /usr/lib/debug, a file believed when it carries the
 * module's build ID (or, for a module without one, the link's CRC); then, by
 * build ID, a debuginfod server if one is configured.  A dwz alternate file
 * likewise, by the build ID its debug file's .gnu_debugaltlink names.  Every
 * candidate is opened non-blocking and used only if it is a regular file.
 */
int fl_debug_find(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
		  const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
		  char **debuginfo_file_name);

#endif
