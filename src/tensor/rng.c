/* The one seeded PRNG of Cortex: PCG32 (O'Neill), XSH-RR output. */
#include "internal.h"
#include <math.h>

static cx_rng_state rng = {0x853c49e6748fea9bULL, 0xda3e39cb94b95bdbULL};

void cx_seed(uint64_t seed) {
    rng.state = 0;
    rng.inc = (seed << 1u) | 1u;
    (void)cx_rand_u32();
    rng.state += seed ^ 0x9E3779B97F4A7C15ULL;
    (void)cx_rand_u32();
}

uint32_t cx_rand_u32(void) {
    uint64_t old = rng.state;
    rng.state = old * 6364136223846793005ULL + rng.inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

float cx_rand_uniform(void) {
    /* 24 random bits -> [0, 1) exactly representable */
    return (float)(cx_rand_u32() >> 8) * (1.0f / 16777216.0f);
}

float cx_rand_normal(void) {
    /* Box-Muller; u1 in (0, 1] so log is finite */
    double u1 = ((double)(cx_rand_u32() >> 8) + 1.0) / 16777216.0;
    double u2 = (double)(cx_rand_u32() >> 8) / 16777216.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint32_t cx_rand_below(uint32_t n) {
    if (n == 0) return 0;
    /* Lemire-free simple rejection for exact uniformity */
    uint32_t threshold = (uint32_t)(-n) % n;
    for (;;) {
        uint32_t r = cx_rand_u32();
        if (r >= threshold) return r % n;
    }
}

cx_rng_state cx_rng_get(void) { return rng; }
void cx_rng_set(cx_rng_state s) { rng = s; }
