/* SPDX-License-Identifier: MIT */
/*
 * clone3.c: clone3(2) with a function to run in the child on a stack of
 * its own, which neither glibc 2.36 (its __clone3 is private) nor the
 * syscall() wrapper can do: a child that wakes on a new stack cannot return
 * through the wrapper that made the call. This is glibc's own clone3 entry
 * (sysdeps/unix/sysv/linux/x86_64/clone3.S), reduced: syscall, and in the
 * child align the stack, call fn(arg), exit with what it returns.
 *
 * x86-64 only; elsewhere agt_clone3_run says -ENOSYS and spawn.c goes the
 * posix_spawn way.
 */
#include <errno.h>

#include "agt.h"

#if defined(__x86_64__)
/* rdi: args, rsi: size, rdx: fn, rcx: arg. syscall keeps rdx and r8. */
__asm__(".text\n"
        ".globl agt_clone3_run\n"
        ".type agt_clone3_run,@function\n"
        "agt_clone3_run:\n"
        "    mov %rcx, %r8\n"
        "    mov $435, %eax\n" /* __NR_clone3 */
        "    syscall\n"
        "    test %rax, %rax\n"
        "    jz 1f\n"
        "    ret\n" /* the parent: the pid, or -errno */
        "1:  xor %ebp, %ebp\n"
        "    and $-16, %rsp\n"
        "    mov %r8, %rdi\n"
        "    call *%rdx\n"
        "    mov %eax, %edi\n"
        "    mov $60, %eax\n" /* __NR_exit */
        "    syscall\n"
        "    hlt\n"
        ".size agt_clone3_run, .-agt_clone3_run\n");
#else
long
agt_clone3_run(struct agt_clone_args *args, size_t size, int (*fn)(void *), void *arg)
{
    (void)args;
    (void)size;
    (void)fn;
    (void)arg;
    return -ENOSYS;
}
#endif
