/* SPDX-License-Identifier: MIT */
/*
 * tailjumps.S - hooks that cannot be C functions (x86-64).
 *
 * vfork: the child runs on the parent's stack until it execs or exits, and
 * returns through every frame between it and the vfork syscall; a C wrapper's
 * frame would be popped (and its return address clobbered) by the child
 * before the parent resumes in it.  glibc's own vfork (sysdeps/unix/sysv/
 * linux/x86_64/vfork.S) keeps its return address in a register for that
 * reason.  So we call a C pre-hook, undo our frame completely and jump.
 *
 * dlopen/dlclose: glibc's dlopen uses RETURN_ADDRESS(0) (dlfcn/dlopen.c) to
 * find the caller's link map, whose DT_RUNPATH and $ORIGIN drive the search
 * and whose namespace receives the object.  A tail jump keeps the caller's
 * return address on the stack, so glibc sees the real caller, not the shim.
 *
 * Each pre-hook returns the address of the real function in %rax.  The CFI
 * lets libunwind step through these frames while the pre-hook unwinds.
 */
#if defined(__x86_64__)

#ifdef __CET__
# define ENTRY_BRANCH endbr64
#else
# define ENTRY_BRANCH
#endif

	.text

/* pid_t vfork(void): record FL_K_VFORK, then become the real vfork. */
	.globl	vfork
	.type	vfork, @function
	.p2align 4
vfork:
	.cfi_startproc
	ENTRY_BRANCH
	sub	$8, %rsp		/* align the stack for the call */
	.cfi_adjust_cfa_offset 8
	call	fl_shim_vfork_pre
	add	$8, %rsp
	.cfi_adjust_cfa_offset -8
	jmp	*%rax
	.cfi_endproc
	.size	vfork, .-vfork

/* void *dlopen(const char *file, int mode): record FL_K_DLOPEN, then jump. */
	.globl	dlopen
	.type	dlopen, @function
	.p2align 4
dlopen:
	.cfi_startproc
	ENTRY_BRANCH
	push	%rdi
	.cfi_adjust_cfa_offset 8
	push	%rsi
	.cfi_adjust_cfa_offset 8
	sub	$8, %rsp
	.cfi_adjust_cfa_offset 8
	call	fl_shim_dlopen_pre
	add	$8, %rsp
	.cfi_adjust_cfa_offset -8
	pop	%rsi
	.cfi_adjust_cfa_offset -8
	pop	%rdi
	.cfi_adjust_cfa_offset -8
	jmp	*%rax
	.cfi_endproc
	.size	dlopen, .-dlopen

/* int dlclose(void *handle): record FL_K_DLCLOSE, then jump. */
	.globl	dlclose
	.type	dlclose, @function
	.p2align 4
dlclose:
	.cfi_startproc
	ENTRY_BRANCH
	push	%rdi			/* also aligns the stack */
	.cfi_adjust_cfa_offset 8
	call	fl_shim_dlclose_pre
	pop	%rdi
	.cfi_adjust_cfa_offset -8
	jmp	*%rax
	.cfi_endproc
	.size	dlclose, .-dlclose

#else
# error "faultline's shim supports x86-64 only"
#endif

	.section .note.GNU-stack, "", @progbits
