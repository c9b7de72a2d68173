/* alloc.c: the library's allocator hooks; every allocation goes through here so tests can fail the
 * n-th one. The hooks are set once before first use (embt_set_allocator). */
#include <stdlib.h>

#include "internal.h"

static embt_malloc_fn hook_malloc = malloc;
static embt_realloc_fn hook_realloc = realloc;
static embt_free_fn hook_free = free;

embt_status embt_set_allocator(embt_malloc_fn malloc_fn, embt_realloc_fn realloc_fn,
                               embt_free_fn free_fn)
{
    if (!malloc_fn && !realloc_fn && !free_fn) {
        hook_malloc = malloc;
        hook_realloc = realloc;
        hook_free = free;
        return EMBT_OK;
    }
    if (!malloc_fn || !realloc_fn || !free_fn)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "allocator hooks must be all set or all NULL");
    hook_malloc = malloc_fn;
    hook_realloc = realloc_fn;
    hook_free = free_fn;
    return EMBT_OK;
}

void *embt__malloc(size_t size)
{
    return hook_malloc(size ? size : 1);
}

void *embt__calloc(size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total))
        return NULL;
    void *p = embt__malloc(total);
    if (p)
        memset(p, 0, total);
    return p;
}

void *embt__realloc(void *ptr, size_t size)
{
    return hook_realloc(ptr, size ? size : 1);
}

void embt__free(void *ptr)
{
    if (ptr)
        hook_free(ptr);
}

char *embt__strndup(const char *s, size_t n)
{
    char *p = embt__malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void *embt__zalloc(void *opaque, unsigned items, unsigned size)
{
    (void)opaque;
    return embt__calloc(items, size);
}

void embt__zfree(void *opaque, void *ptr)
{
    (void)opaque;
    embt__free(ptr);
}
