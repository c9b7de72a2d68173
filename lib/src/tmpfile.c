/* tmpfile.c: the temporary file next to a destination that the writer and the exporters fill, then
 * rename over it. The destination is checked first, because rename() replaces whatever node has the
 * name: run as root, `embt convert in.txt /dev/null` would otherwise turn /dev/null into a regular
 * file. A rewritten file keeps its permission bits (and, where allowed, its owner), so a private
 * model does not become world-readable when `embt meta set` rewrites it. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sysio.h"
#include "tmpfile.h"

#define TMP_ATTEMPTS 1000u /* temp names tried before giving up (O_EXCL collisions) */

/* The names of the temporary files that exist now, for embt_remove_temp_files() in a signal
 * handler: set only after O_EXCL created the file, cleared before it is renamed or removed. */
static _Atomic(const char *) registry[EMBT_TEMP_FILES_MAX];

void embt__temp_register(const char *name)
{
    for (size_t i = 0; i < EMBT_TEMP_FILES_MAX; i++) {
        const char *none = NULL;
        if (atomic_compare_exchange_strong(&registry[i], &none, name))
            return;
    }
}

void embt__temp_unregister(const char *name)
{
    for (size_t i = 0; i < EMBT_TEMP_FILES_MAX; i++) {
        const char *mine = name;
        if (atomic_compare_exchange_strong(&registry[i], &mine, NULL))
            return;
    }
}

void embt_remove_temp_files(void)
{
    for (size_t i = 0; i < EMBT_TEMP_FILES_MAX; i++) {
        const char *name = atomic_load(&registry[i]);
        if (name)
            unlink(name);
    }
}

/* An I/O failure of the output: the section tells the CLI to name OUTPUT, not INPUT. */
static embt_status output_sys(int e, const char *what)
{
    embt_status st = embt__error_sys(e, "%s", what);
    embt__error_set_section("output");
    return st;
}

/* The path rename() must replace: `path` itself, or the target of a symbolic link (followed, so
 * that the link stays a link). *exists tells whether it is there; *st is then its status. */
static embt_status resolve(char **final, bool *exists, struct stat *st, const char *path)
{
    *final = NULL;
    *exists = false;
    if (lstat(path, st) != 0) {
        if (errno != ENOENT)
            return output_sys(errno, "cannot inspect the output path");
        *final = embt__strndup(path, strlen(path));
        return *final ? EMBT_OK : embt__error_nomem();
    }
    if (S_ISLNK(st->st_mode)) {
        char *real = realpath(path, NULL);
        if (!real && errno == ENOMEM)
            return embt__error_nomem();
        if (!real) /* a dangling link: where its target would go is not followed */
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, "output", 0,
                               "a symbolic link that cannot be followed (%s)", strerror(errno));
        *final = embt__strndup(real, strlen(real));
        free(real);
        if (!*final)
            return embt__error_nomem();
        if (stat(*final, st) != 0) {
            int e = errno;
            embt__free(*final);
            *final = NULL;
            return output_sys(e, "cannot inspect the output's link target");
        }
    } else {
        *final = embt__strndup(path, strlen(path));
        if (!*final)
            return embt__error_nomem();
    }
    *exists = true;
    if (!S_ISREG(st->st_mode)) {
        embt__free(*final);
        *final = NULL;
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, "output", 0,
                           "exists and is not a regular file (%s); left alone",
                           S_ISDIR(st->st_mode)    ? "a directory"
                           : S_ISFIFO(st->st_mode) ? "a FIFO"
                           : S_ISSOCK(st->st_mode) ? "a socket"
                                                   : "a device");
    }
    return EMBT_OK;
}

embt_status embt__tmpfile_create(embt__tmpfile *t, const char *path)
{
    memset(t, 0, sizeof *t);
    t->fd = -1;
    if (!path[0])
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, "output", 0, "output path is empty");
    bool exists;
    struct stat st;
    embt_status rc = resolve(&t->path, &exists, &st, path);
    if (rc)
        return rc;
    size_t plen = strlen(t->path);
    size_t tmp_size = plen + 64; /* ".tmp." + two decimal numbers */
    /* allocated now so that nothing after the rename can fail for lack of memory */
    const char *slash = strrchr(t->path, '/');
    t->dir_path = slash ? embt__strndup(t->path, slash == t->path ? 1 : (size_t)(slash - t->path))
                        : embt__strndup(".", 1);
    t->tmp_path = embt__malloc(tmp_size);
    if (!t->dir_path || !t->tmp_path) {
        embt__free(t->tmp_path); /* no name in it yet: discard must not unlink it */
        t->tmp_path = NULL;
        embt__tmpfile_discard(t);
        return embt__error_nomem();
    }
    /* O_EXCL: never reuse a file another writer (or a crashed one) left behind; umask applies */
    for (unsigned n = 0;; n++) {
        snprintf(t->tmp_path, tmp_size, "%s.tmp.%ld.%u", t->path, (long)getpid(), n);
        t->fd = open(t->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (t->fd >= 0) {
            embt__temp_register(t->tmp_path);
            break;
        }
        if (errno != EEXIST || n + 1 >= TMP_ATTEMPTS) {
            rc = output_sys(errno, "cannot create the temporary output file");
            embt__free(t->tmp_path);
            t->tmp_path = NULL;
            embt__tmpfile_discard(t);
            return rc;
        }
    }
    if (exists) {
        /* best effort: an owner only root may give; chown first, as it may clear set-id bits. A
         * group that cannot be kept gets no permission: its bits were meant for another group */
        mode_t mode = st.st_mode & 07777;
        if (fchown(t->fd, st.st_uid, st.st_gid) != 0 && fchown(t->fd, (uid_t)-1, st.st_gid) != 0)
            mode &= ~(mode_t)02070;
        if (fchmod(t->fd, mode) != 0)
            errno = 0;
    }
    return EMBT_OK;
}

void embt__tmpfile_discard(embt__tmpfile *t)
{
    if (t->fd >= 0)
        close(t->fd);
    if (t->tmp_path) {
        embt__temp_unregister(t->tmp_path);
        unlink(t->tmp_path);
    }
    embt__free(t->tmp_path);
    embt__free(t->dir_path);
    embt__free(t->path);
    memset(t, 0, sizeof *t);
    t->fd = -1;
}

/* Makes the rename durable: fsync the directory that holds the destination. */
static embt_status sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return embt__error_sys(errno, "cannot open the output directory to sync it");
    embt_status st = EMBT_OK;
    if (embt__fsync(fd) != 0)
        st = embt__error_sys(errno, "fsync of the output directory failed");
    close(fd);
    return st;
}

embt_status embt__tmpfile_commit(embt__tmpfile *t)
{
    embt_status st = EMBT_OK;
    if (embt__fsync(t->fd) != 0) {
        st = embt__error_sys(errno, "fsync of the output file failed");
        goto failed;
    }
    int fd = t->fd;
    t->fd = -1;
    if (close(fd) != 0) {
        st = embt__error_sys(errno, "close of the output file failed");
        goto failed;
    }
    if (embt__rename(t->tmp_path, t->path) != 0) {
        st = embt__error_sys(errno, "cannot rename the temporary file over the output");
        goto failed;
    }
    /* after the rename: a signal in between unlinks a name that is gone, which is harmless */
    embt__temp_unregister(t->tmp_path);
    embt__free(t->tmp_path);
    t->tmp_path = NULL;
    /* the new file is in place; a failure here only means the rename may not survive a crash */
    return sync_dir(t->dir_path);
failed: /* the destination stays untouched */
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    embt__temp_unregister(t->tmp_path);
    unlink(t->tmp_path);
    embt__free(t->tmp_path);
    t->tmp_path = NULL;
    return st;
}
