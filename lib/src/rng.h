/* rng.h: internals of the seeded generator (rng.c) shared with init.c and the tests: the portable
 * natural logarithm behind embt_rng_normal(). The public generator is in embt/ops.h. Never installed. */
#ifndef EMBT_RNG_H
#define EMBT_RNG_H

#include "internal.h"

/* ln(x) for finite x > 0 using only frexp (exact) and IEEE double +, -, *, / with a fixed number of
 * terms, so every machine gives the same bits; within 2 ulp of the true value. */
double embt__rng_log(double x);

#endif
