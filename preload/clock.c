/* SPDX-License-Identifier: MIT */
/*
 * clock.c - the shim's clock: the kernel's vDSO clock_gettime, called
 * directly.  Through libc's clock_gettime, the shim's first record in a
 * process touched a page of libc text the program may never run, and the
 * fault-around of that first touch (up to 16 pages) was counted as the
 * program's (docs/check.md, "faultline's own footprint").  The vDSO's own
 * pages are faultline's when only the shim uses them.
 *
 * The vDSO is found from /proc/self/auxv (AT_SYSINFO_EHDR), read with raw
 * syscalls, and its symbol table walked as the kernel's
 * tools/testing/selftests/vDSO/parse_vdso.c does.  Without it (no /proc, an
 * unexpected image) the clock is the clock_gettime system call.
 */
#include <elf.h>
#include <fcntl.h>
#include <link.h>

#include "preload.h"

int (*shim_vdso_gettime)(clockid_t, struct timespec *);

static const void *vdso_base(void)
{
	ElfW(auxv_t) av[64];
	long n = 0, r;
	int fd = (int)shim_syscall(SYS_openat, AT_FDCWD, "/proc/self/auxv", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	while (n < (long)sizeof(av) && (r = shim_syscall(SYS_read, fd, (char *)av + n, sizeof(av) - (size_t)n)) > 0)
		n += r;
	shim_syscall(SYS_close, fd);
	for (long i = 0; i < n / (long)sizeof(av[0]) && av[i].a_type != AT_NULL; i++)
		if (av[i].a_type == AT_SYSINFO_EHDR)
			return (const void *)av[i].a_un.a_val;
	return NULL;
}

static int same(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

/* The address of symbol `name` in the vDSO at base, or NULL. */
static void *vdso_sym(const char *base, const char *name)
{
	const ElfW(Ehdr) *e = (const ElfW(Ehdr) *)base;
	const ElfW(Phdr) *ph = (const ElfW(Phdr) *)(base + e->e_phoff);
	const ElfW(Dyn) *dyn = NULL;
	const ElfW(Sym) *sym = NULL;
	const ElfW(Word) *hash = NULL;
	const char *str = NULL;
	uintptr_t load = 0;
	int have_load = 0;

	if (e->e_ident[EI_MAG0] != ELFMAG0 || e->e_ident[EI_MAG1] != ELFMAG1 || e->e_ident[EI_MAG2] != ELFMAG2 ||
	    e->e_ident[EI_MAG3] != ELFMAG3 || e->e_ident[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32))
		return NULL;
	for (unsigned i = 0; i < e->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD && !have_load) {
			load = (uintptr_t)base + ph[i].p_offset - ph[i].p_vaddr;
			have_load = 1;
		} else if (ph[i].p_type == PT_DYNAMIC) {
			dyn = (const ElfW(Dyn) *)(base + ph[i].p_offset);
		}
	}
	for (; dyn && have_load && dyn->d_tag != DT_NULL; dyn++) {
		if (dyn->d_tag == DT_SYMTAB)
			sym = (const ElfW(Sym) *)(load + dyn->d_un.d_ptr);
		else if (dyn->d_tag == DT_STRTAB)
			str = (const char *)(load + dyn->d_un.d_ptr);
		else if (dyn->d_tag == DT_HASH)
			hash = (const ElfW(Word) *)(load + dyn->d_un.d_ptr);
	}
	if (!sym || !str || !hash)
		return NULL;
	for (ElfW(Word) i = 0; i < hash[1]; i++)  /* nchain: the number of symbols */
		if (ELF64_ST_TYPE(sym[i].st_info) == STT_FUNC && sym[i].st_shndx != SHN_UNDEF &&
		    same(str + sym[i].st_name, name))
			return (void *)(load + sym[i].st_value);
	return NULL;
}

void shim_clock_init(void)
{
	const char *base = vdso_base();
	struct timespec ts;

	*(void **)&shim_vdso_gettime = base ? vdso_sym(base, "__vdso_clock_gettime") : NULL;
	if (shim_vdso_gettime && shim_vdso_gettime(CLOCK_MONOTONIC, &ts))
		shim_vdso_gettime = NULL;
}
