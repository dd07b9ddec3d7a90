/* Random streams of Cortex: PCG32 (O'Neill), XSH-RR output.
 *
 * Every thread has its own default stream (seeded by cx_seed) and a current
 * stream (the default unless cx_rng_use switched it); every random draw of
 * the library comes from the calling thread's current stream. */
#include "internal.h"
#include <math.h>

#define PCG_MULT 6364136223846793005ULL
#define RNG_INIT {0x853c49e6748fea9bULL, 0xda3e39cb94b95bdbULL}

static _Thread_local cx_rng tl_default = RNG_INIT;
static _Thread_local cx_rng *tl_current;

cx_rng *cx_rng_current(void) { return tl_current ? tl_current : &tl_default; }
cx_rng *cx_rng_default(void) { return &tl_default; }

cx_rng *cx_rng_use(cx_rng *r) {
    cx_rng *prev = cx_rng_current();
    tl_current = r == &tl_default ? NULL : r;
    return prev;
}

uint32_t cx_rng_u32(cx_rng *r) {
    uint64_t old = r->state;
    r->state = old * PCG_MULT + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

void cx_rng_seed(cx_rng *r, uint64_t seed) {
    r->state = 0;
    r->inc = (seed << 1u) | 1u;
    (void)cx_rng_u32(r);
    r->state += seed ^ 0x9E3779B97F4A7C15ULL;
    (void)cx_rng_u32(r);
}

cx_rng cx_rng_new(uint64_t seed) {
    cx_rng r;
    cx_rng_seed(&r, seed);
    return r;
}

cx_rng cx_rng_split(cx_rng *parent) {
    /* 64 bits of start state and 63 bits of stream selector from the parent:
     * a different increment is a different PCG stream */
    uint64_t s = (uint64_t)cx_rng_u32(parent) << 32;
    s |= cx_rng_u32(parent);
    uint64_t q = (uint64_t)cx_rng_u32(parent) << 32;
    q |= cx_rng_u32(parent);
    cx_rng c;
    c.state = 0;
    c.inc = (q << 1u) | 1u;
    (void)cx_rng_u32(&c);
    c.state += s;
    (void)cx_rng_u32(&c);
    return c;
}

float cx_rng_uniform(cx_rng *r) {
    /* 24 random bits -> [0, 1) exactly representable */
    return (float)(cx_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

float cx_rng_normal(cx_rng *r) {
    /* Box-Muller; u1 in (0, 1] so log is finite */
    double u1 = ((double)(cx_rng_u32(r) >> 8) + 1.0) / 16777216.0;
    double u2 = (double)(cx_rng_u32(r) >> 8) / 16777216.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint32_t cx_rng_below(cx_rng *r, uint32_t n) {
    if (n == 0) return 0;
    /* rejection for exact uniformity */
    uint32_t threshold = (uint32_t)(-n) % n;
    for (;;) {
        uint32_t v = cx_rng_u32(r);
        if (v >= threshold) return v % n;
    }
}

/* ---- the calling thread's streams */
void cx_seed(uint64_t seed) { cx_rng_seed(&tl_default, seed); }
uint32_t cx_rand_u32(void) { return cx_rng_u32(cx_rng_current()); }
float cx_rand_uniform(void) { return cx_rng_uniform(cx_rng_current()); }
float cx_rand_normal(void) { return cx_rng_normal(cx_rng_current()); }
uint32_t cx_rand_below(uint32_t n) { return cx_rng_below(cx_rng_current(), n); }
cx_rng cx_rng_get(void) { return *cx_rng_current(); }
void cx_rng_set(cx_rng s) { *cx_rng_current() = s; }
