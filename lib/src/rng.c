/* rng.c: the seeded generator of embt/ops.h: SplitMix64 seeding, xoshiro256** 1.0, the [0, 1) double
 * and the polar-method normal. Only exactly rounded IEEE operations are used, so a seed gives the same
 * numbers on every machine (baseline x86-64 has no FMA, and -std=c11 turns off GCC's contraction). */
#include <math.h>

#include "rng.h"

static uint64_t splitmix64(uint64_t *state)
{
    /* Steele, Lea & Flood 2014; the reference constants of prng.di.unimi.it/splitmix64.c */
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void embt_rng_seed(embt_rng *rng, uint64_t seed)
{
    uint64_t st = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&st);
    rng->spare = 0.0;
    rng->has_spare = 0;
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** 1.0 (Blackman & Vigna 2018) */
uint64_t embt_rng_u64(embt_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double embt_rng_double(embt_rng *rng)
{
    return (double)(embt_rng_u64(rng) >> 11) * 0x1.0p-53;
}

double embt__rng_log(double x)
{
    /* x = m 2^e with m in [sqrt(1/2), sqrt(2)): ln x = e ln 2 + 2 atanh(t), t = (m - 1) / (m + 1),
     * |t| <= 0.1716, so t^(2k+1) / (2k+1) falls below 2^-53 relative well before k = 30 */
    int e;
    double m = frexp(x, &e); /* [0.5, 1) */
    if (m < 0.70710678118654752440) {
        m *= 2.0;
        e -= 1;
    }
    double t = (m - 1.0) / (m + 1.0);
    double t2 = t * t;
    double sum = 0.0;
    for (int k = 29; k >= 0; k--) /* Horner from the smallest term */
        sum = sum * t2 + 1.0 / (double)(2 * k + 1);
    /* ln 2 split in a high part exact in 32 bits and a low part (fdlibm's ln2_hi / ln2_lo) */
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    return (double)e * ln2_hi + (2.0 * t * sum + (double)e * ln2_lo);
}

double embt_rng_normal(embt_rng *rng)
{
    if (rng->has_spare) {
        rng->has_spare = 0;
        return rng->spare;
    }
    double u, v, s;
    do {
        u = 2.0 * embt_rng_double(rng) - 1.0;
        v = 2.0 * embt_rng_double(rng) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double f = sqrt(-2.0 * embt__rng_log(s) / s);
    rng->spare = v * f;
    rng->has_spare = 1;
    return u * f;
}
