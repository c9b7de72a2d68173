/* parse_float.h: exact decimal text to float32 (the value strtof gives in the C locale), for the text
 * importers and their tests. Never installed. */
#ifndef EMBT_PARSE_FLOAT_H
#define EMBT_PARSE_FLOAT_H

#include <stddef.h>

#include "embt/common.h"

/* Prepares the C locale used by the slow path; call once before embt__parse_f32 (cheap after the first
 * call; thread-safe). Errors: EMBT_ENOMEM when the locale cannot be created (error record set). */
embt_status embt__parse_float_init(void);

/* Parses the n bytes at s (need not be NUL-terminated) as one number, exactly as strtof in the C locale
 * would, requiring strtof to consume all n bytes and refusing leading white space. Overflow gives
 * +-infinity and underflow the subnormal or zero strtof gives (the caller decides about non-finite
 * values). Returns 0 and sets *out on success, -1 when the bytes are not a number, -2 when memory for a
 * long number ran out or embt__parse_float_init() did not succeed. Never touches the error record, so
 * any thread may call it. */
int embt__parse_f32(float *out, const char *s, size_t n);

#endif
