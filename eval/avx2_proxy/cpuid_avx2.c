/* The trap half of the AVX2 proxy (eval/avx2_proxy), loaded with LD_PRELOAD.

   In the libraries the proxy patched, the first byte (0x0f) of every CPUID and XGETBV instruction is int3 (0xcc).
   Executing one raises SIGTRAP; this handler runs the real instruction, clears what an AVX2-only CPU lacks (the
   AVX-512 family, AVX-VNNI, AVX512-BF16, AVX-IFMA, AVX10, AMX, and the ZMM/opmask/tile state in XCR0), writes
   the result into the trapped thread's registers and resumes after the instruction. The library then picks its
   AVX2 kernels once, at start, and runs them at native speed. Any other SIGTRAP (a debugger's int3, kill -TRAP)
   goes to the handler that was there before, or kills the process as it would have without the proxy. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

static struct sigaction previous;

static void pass_on(int sig, siginfo_t *info, void *context) {
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(sig, info, context);
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
    } else {
        signal(sig, SIG_DFL);  /* SIGTRAP cannot be ignored when the kernel raises it: die as before */
        raise(sig);
    }
}

static void as_avx2_only(unsigned leaf, unsigned sub, unsigned *a, unsigned *b, unsigned *c, unsigned *d) {
    if (leaf == 7 && sub == 0) {
        /* EBX: AVX512 F, DQ, IFMA, PF, ER, CD, BW, VL */
        *b &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
        /* ECX: AVX512 VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ */
        *c &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
        /* EDX: AVX512 4VNNIW, 4FMAPS, VP2INTERSECT, AMX-BF16, AVX512-FP16, AMX-TILE, AMX-INT8 */
        *d &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
    } else if (leaf == 7 && sub == 1) {
        *a &= ~((1u << 4) | (1u << 5) | (1u << 21) | (1u << 23));  /* AVX-VNNI, AVX512-BF16, AMX-FP16, AVX-IFMA */
        *d &= ~((1u << 4) | (1u << 5) | (1u << 10) | (1u << 19));  /* AVX-VNNI-INT8, AVX-NE-CONVERT, -INT16, AVX10 */
    }
}

static void on_trap(int sig, siginfo_t *info, void *context) {
    greg_t *r = ((ucontext_t *)context)->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)r[REG_RIP];  /* just after the int3 */
    if (info->si_code != SI_KERNEL || ip[-1] != 0xcc) {
        pass_on(sig, info, context);
    } else if (ip[0] == 0xa2) {  /* cpuid: 0f a2 */
        unsigned leaf = (unsigned)r[REG_RAX], sub = (unsigned)r[REG_RCX], a, b, c, d;
        __cpuid_count(leaf, sub, a, b, c, d);
        as_avx2_only(leaf, sub, &a, &b, &c, &d);
        r[REG_RAX] = a; r[REG_RBX] = b; r[REG_RCX] = c; r[REG_RDX] = d;
        r[REG_RIP] += 1;
    } else if (ip[0] == 0x01 && ip[1] == 0xd0) {  /* xgetbv: 0f 01 d0 */
        unsigned index = (unsigned)r[REG_RCX], lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(index));
        if (index == 0) lo &= ~((1u << 5) | (1u << 6) | (1u << 7) | (1u << 17) | (1u << 18));  /* opmask, ZMM, tiles */
        r[REG_RAX] = lo; r[REG_RDX] = hi;
        r[REG_RIP] += 2;
    } else {
        pass_on(sig, info, context);
    }
}

__attribute__((constructor)) static void install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_trap;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTRAP, &action, &previous);
}
