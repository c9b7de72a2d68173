/* tmpfile.h: the temporary file that becomes a destination by rename (writer.c, output.c). */
#ifndef EMBT_TMPFILE_H
#define EMBT_TMPFILE_H

#include "internal.h"

typedef struct embt__tmpfile {
    int fd;         /* the temporary file, open for writing; -1 once closed */
    char *path;     /* what rename() replaces: the destination, or its symbolic link's target */
    char *dir_path; /* path's directory, fsynced after the rename */
    char *tmp_path; /* "<path>.tmp.<pid>.<n>"; NULL once renamed or removed */
} embt__tmpfile;

/* Checks the destination `path` and creates the temporary file beside it. A missing destination or
 * a regular file is fine, a symbolic link is followed; a directory, device, FIFO or socket is
 * EINVAL and left alone. The temporary file takes an existing destination's permission bits (and,
 * where allowed, its owner and group). On failure *t holds nothing. */
embt_status embt__tmpfile_create(embt__tmpfile *t, const char *path);

/* fsyncs and closes the temporary file, renames it over the destination and fsyncs the directory.
 * A failure before the rename removes the temporary file; the destination is then untouched. */
embt_status embt__tmpfile_commit(embt__tmpfile *t);

/* Records a temporary file that now exists for embt_remove_temp_files() (embt/common.h), and forgets
 * it again; the name must stay allocated until unregistered. */
void embt__temp_register(const char *name);
void embt__temp_unregister(const char *name);

/* Closes and removes the temporary file (if not renamed yet) and frees the names. */
void embt__tmpfile_discard(embt__tmpfile *t);

#endif
