/*
 * err.c - the error table's lookups and struct err helpers.
 * Owns nothing global but the const table. Any thread.
 */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct err_row {
    const char *name;
    const char *say;
};

static const struct err_row err_rows[] = {
    {"ok", ""},
#define ERR__ROW(sym, name, say) {name, say},
    ERR_LIST(ERR__ROW)
#undef ERR__ROW
};

#define ERR_ROWS ((int)(sizeof err_rows / sizeof err_rows[0]))

static const struct err_row *row_for(int code)
{
    int i = -code;
    if (i < 0 || i >= ERR_ROWS)
        i = -ERR_INTERNAL;
    return &err_rows[i];
}

const char *err_name(int code)
{
    return row_for(code)->name;
}

const char *err_say(int code)
{
    return row_for(code)->say;
}

void err_clear(struct err *e)
{
    if (e)
        memset(e, 0, sizeof *e);
}

int err_set(struct err *e, int code, const char *say, const char *detail_fmt, ...)
{
    if (!e || e->code)
        return e && e->code ? e->code : code;
    e->code = code;
    snprintf(e->say, sizeof e->say, "%s", say ? say : err_say(code));
    e->detail[0] = '\0';
    if (detail_fmt) {
        va_list ap;
        va_start(ap, detail_fmt);
        vsnprintf(e->detail, sizeof e->detail, detail_fmt, ap);
        va_end(ap);
    }
    return code;
}
