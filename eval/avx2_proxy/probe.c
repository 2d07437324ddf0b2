/* What a patched library sees: built by eval/avx2_proxy, patched like any other library, loaded with ctypes. */
#include <cpuid.h>

unsigned probe_leaf7(int reg) {  /* CPUID leaf 7, subleaf 0: 1 = EBX, 2 = ECX, 3 = EDX */
    unsigned a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    return reg == 1 ? b : reg == 2 ? c : d;
}

unsigned probe_xcr0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return lo;
}
