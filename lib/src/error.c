/* error.c: the per-thread error record. Set once where a problem is found; callers pass the code up. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static _Thread_local embt_error last_error;

const embt_error *embt_error_last(void)
{
    return &last_error;
}

embt_error *embt__error_record(void)
{
    return &last_error;
}

void embt_error_clear(void)
{
    memset(&last_error, 0, sizeof last_error);
    last_error.offset = EMBT_NO_OFFSET;
}

static void set_record(embt_status code, int sys_errno, uint64_t offset, const char *section,
                       uint32_t rule, uint32_t line, uint32_t column, const char *fmt, va_list ap)
{
    embt_error *e = &last_error;
    e->code = code;
    e->sys_errno = sys_errno;
    e->offset = offset;
    e->line = line;
    e->column = column;
    e->rule = rule;
    snprintf(e->section, sizeof e->section, "%s", section ? section : "");
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    /* one line: a message built from file bytes must not carry a newline to the terminal */
    for (char *p = e->message; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

embt_status embt__error(embt_status code, uint64_t offset, const char *section, uint32_t rule,
                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_record(code, 0, offset, section, rule, 0, 0, fmt, ap);
    va_end(ap);
    return code;
}

embt_status embt__error_sys(int sys_errno, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_record(EMBT_EIO, sys_errno, EMBT_NO_OFFSET, NULL, 0, 0, 0, fmt, ap);
    va_end(ap);
    return EMBT_EIO;
}

embt_status embt__error_parse(uint32_t line, uint32_t column, uint64_t offset, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_record(EMBT_EPARSE, 0, offset, NULL, 0, line, column, fmt, ap);
    va_end(ap);
    return EMBT_EPARSE;
}

embt_status embt__error_nomem(void)
{
    embt_error *e = &last_error;
    memset(e, 0, sizeof *e);
    e->code = EMBT_ENOMEM;
    e->offset = EMBT_NO_OFFSET;
    memcpy(e->message, "out of memory", sizeof "out of memory");
    return EMBT_ENOMEM;
}

void embt__error_set_section(const char *section)
{
    if (section && last_error.section[0] == '\0')
        snprintf(last_error.section, sizeof last_error.section, "%s", section);
}

const char *embt_status_name(embt_status status)
{
    switch (status) {
    case EMBT_OK: return "EMBT_OK";
    case EMBT_ERROR: return "EMBT_ERROR";
    case EMBT_ENOMEM: return "EMBT_ENOMEM";
    case EMBT_EIO: return "EMBT_EIO";
    case EMBT_EINVAL: return "EMBT_EINVAL";
    case EMBT_ENOTFOUND: return "EMBT_ENOTFOUND";
    case EMBT_EEXISTS: return "EMBT_EEXISTS";
    case EMBT_EFORMAT: return "EMBT_EFORMAT";
    case EMBT_EVERSION: return "EMBT_EVERSION";
    case EMBT_ECORRUPT: return "EMBT_ECORRUPT";
    case EMBT_ELIMIT: return "EMBT_ELIMIT";
    case EMBT_EPARSE: return "EMBT_EPARSE";
    case EMBT_ECANCELED: return "EMBT_ECANCELED";
    }
    return "EMBT_UNKNOWN";
}
