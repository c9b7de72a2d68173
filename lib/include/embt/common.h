/* embt/common.h: export macro, version, status codes and the error record shared by every module. */
#ifndef EMBT_COMMON_H
#define EMBT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define EMBT_API __attribute__((visibility("default")))
#else
#define EMBT_API
#endif

/* Library version (not the file format version, see EMBT_FORMAT_VERSION_*). */
#define EMBT_VERSION_MAJOR 0
#define EMBT_VERSION_MINOR 1
#define EMBT_VERSION_PATCH 0
#define EMBT_VERSION_STRING "0.1.0"

/* Container version this library writes and the newest minor it reads (spec/FORMAT.md section 9). */
#define EMBT_FORMAT_VERSION_MAJOR 1
#define EMBT_FORMAT_VERSION_MINOR 0

/* Returned by every function that can fail. 0 is success; failures are negative.
 * The set is fixed and part of the contract: spec/CLI.md and format/ use these names. */
typedef enum embt_status {
    EMBT_OK = 0,
    EMBT_ERROR = -1,     /* internal or unclassified; see embt_error_last() */
    EMBT_ENOMEM = -2,    /* an allocation failed */
    EMBT_EIO = -3,       /* a system call failed; sys_errno is set */
    EMBT_EINVAL = -4,    /* bad argument or option: caller bug or bad command line */
    EMBT_ENOTFOUND = -5, /* token, table or key absent: an expected outcome */
    EMBT_EEXISTS = -6,   /* duplicate name, or output exists and overwrite not asked */
    EMBT_EFORMAT = -7,   /* not an .embt file / unrecognised input format */
    EMBT_EVERSION = -8,  /* major version newer than this library */
    EMBT_ECORRUPT = -9,  /* breaks spec/FORMAT.md: truncated, out of bounds, bad checksum */
    EMBT_ELIMIT = -10,   /* valid, but beyond this build's limits or features */
    EMBT_EPARSE = -11,   /* malformed text input (vectors, vocab, YAML); line/column set */
    EMBT_ECANCELED = -12 /* a callback asked to stop */
} embt_status;

#define EMBT_NO_OFFSET UINT64_MAX
#define EMBT_NONE_ID UINT32_MAX

/* Details of the last failure on the calling thread. Tests assert on code, offset, line/column, section
 * and rule; message is for humans (one line, lowercase, no trailing period, no path). */
typedef struct embt_error {
    embt_status code;
    int sys_errno;     /* errno for EMBT_EIO, else 0 */
    uint64_t offset;   /* absolute byte offset in the input, or EMBT_NO_OFFSET */
    uint32_t line;     /* 1-based for text inputs, 0 otherwise */
    uint32_t column;   /* 1-based for text inputs, 0 otherwise */
    uint32_t rule;     /* spec/FORMAT.md section 7 rule number broken, 0 if none */
    char section[64];  /* section or key being read ("header", "table embedding"), "" if none */
    char message[256]; /* one line, no trailing newline */
} embt_error;

/* The calling thread's record of its last failure. Never NULL; valid until the thread's next embt call
 * that fails. Thread safety: each thread has its own record. */
EMBT_API const embt_error *embt_error_last(void);

/* Clears the calling thread's error record (code EMBT_OK). */
EMBT_API void embt_error_clear(void);

/* The name of a status code, e.g. "EMBT_ECORRUPT"; "EMBT_UNKNOWN" for values outside the set.
 * The returned string is static. */
EMBT_API const char *embt_status_name(embt_status status);

/* Replaces the allocator used by the library (all three must be given, or all NULL for the C library's).
 * Call it before any other embt function; not thread-safe. Tests use it to fail the n-th allocation. */
typedef void *(*embt_malloc_fn)(size_t size);
typedef void *(*embt_realloc_fn)(void *ptr, size_t size);
typedef void (*embt_free_fn)(void *ptr);
EMBT_API embt_status embt_set_allocator(embt_malloc_fn malloc_fn, embt_realloc_fn realloc_fn,
                                        embt_free_fn free_fn);

/* Removes the temporary files of the outputs this process is writing (a writer or exporter not yet
 * committed or freed, and convert's intermediate .embt): for a SIGINT/SIGTERM handler, which may
 * then end the process. Async-signal-safe (it only reads the registered names and calls unlink);
 * the library keeps at most EMBT_TEMP_FILES_MAX names at once. */
#define EMBT_TEMP_FILES_MAX 16
EMBT_API void embt_remove_temp_files(void);

#ifdef __cplusplus
}
#endif
#endif
