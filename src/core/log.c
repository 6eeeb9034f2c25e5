/*
 * log.c - formatting, masking and writing log lines.
 *
 * Owns: the process-wide level and format (atomics, the one allowed global
 * knob) and the masking scanner. Must not allocate on the hot path beyond a
 * stack buffer; JSON lines are escaped by jansson. Any thread.
 */
#include "core/log.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static atomic_int log_level_v = LOG_INFO;
static atomic_bool log_json_v = false;
static atomic_int log_fd_v = 2;

void log_setup(enum log_level level, bool json)
{
    atomic_store(&log_level_v, (int)level);
    atomic_store(&log_json_v, json);
}

void log_set_fd(int fd)
{
    atomic_store(&log_fd_v, fd);
}

enum log_level log_level_get(void)
{
    return (enum log_level)atomic_load(&log_level_v);
}

int log_level_parse(const char *s)
{
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++)
        if (s && strcasecmp(s, names[i]) == 0)
            return i;
    if (s && strcasecmp(s, "warning") == 0)
        return LOG_WARN;
    return -1;
}

/* ---- masking ---- */

static bool is_word(int c)
{
    return isalnum(c) || c == '_';
}

static bool is_email_local(int c)
{
    return isalnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static bool is_domain(int c)
{
    return isalnum(c) || c == '.' || c == '-';
}

/*
 * Length of a phone-number-looking run at s (0 if none), and its digit count.
 * Runs that start with '+' or '0' may contain single separators (space, dash,
 * dot, brackets) between digits; other runs must be 10+ bare digits.
 */
static size_t phone_run(const char *s, int *ndigits)
{
    const char *p = s;
    bool sep_ok = (*p == '+' || *p == '0');
    int nd = 0;
    size_t last_digit_end = 0;

    if (*p == '+')
        p++;
    while (*p) {
        if (isdigit((unsigned char)*p)) {
            nd++;
            p++;
            last_digit_end = (size_t)(p - s);
        } else if (sep_ok && strchr(" -.()", *p) && p[1] &&
                   (isdigit((unsigned char)p[1]) || p[1] == '(' || p[1] == '0')) {
            p++;
        } else {
            break;
        }
        if (nd > 15)
            return 0;   /* too long for a phone number: some other identifier */
    }
    *ndigits = nd;
    if (isalpha((unsigned char)s[last_digit_end]) || s[last_digit_end] == '_')
        return 0;       /* glued to a word: not a phone number */
    if (nd >= (sep_ok ? 9 : 10))
        return last_digit_end;
    return 0;
}

static size_t put(char *out, size_t o, size_t outsz, char c)
{
    if (o + 1 < outsz)
        out[o++] = c;
    return o;
}

static size_t mask_phone_into(const char *s, size_t len, int nd, char *out, size_t o, size_t outsz)
{
    int keep_head = (s[0] == '+') ? 2 : 0;   /* country code after '+' */
    int seen = 0;

    if (s[0] == '+')
        o = put(out, o, outsz, '+');
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            continue;
        if (seen < keep_head || seen >= nd - 3)
            o = put(out, o, outsz, s[i]);
        else
            o = put(out, o, outsz, '*');
        seen++;
    }
    return o;
}

/* If an email address starts at s (s at the local part's first char), its length. */
static size_t email_run(const char *s, size_t *at)
{
    size_t i = 0;
    while (is_email_local((unsigned char)s[i]))
        i++;
    if (i == 0 || s[i] != '@')
        return 0;
    *at = i;
    size_t j = i + 1, dot = 0;
    while (is_domain((unsigned char)s[j])) {
        if (s[j] == '.')
            dot = j;
        j++;
    }
    if (!dot || dot == i + 1 || dot + 1 >= j)
        return 0;
    while (j > i + 1 && (s[j - 1] == '.' || s[j - 1] == '-'))
        j--;
    return j;
}

size_t log_mask_text(const char *in, char *out, size_t outsz)
{
    size_t o = 0;
    const char *s = in;

    if (!outsz)
        return 0;
    while (*s) {
        bool boundary = (s == in) || !is_word((unsigned char)s[-1]);
        if (boundary && is_email_local((unsigned char)*s) && *s != '.' && *s != '+') {
            size_t at = 0, len = email_run(s, &at);
            if (len) {
                o = put(out, o, outsz, s[0]);
                for (int k = 0; k < 3; k++)
                    o = put(out, o, outsz, '*');
                for (size_t k = at; k < len; k++)
                    o = put(out, o, outsz, s[k]);
                s += len;
                continue;
            }
        }
        if (boundary && (*s == '+' || isdigit((unsigned char)*s))) {
            int nd = 0;
            size_t len = phone_run(s, &nd);
            if (len) {
                o = mask_phone_into(s, len, nd, out, o, outsz);
                s += len;
                continue;
            }
            /* skip the whole digit run so its tail is not re-scanned as a phone */
            if (isdigit((unsigned char)*s) || *s == '+') {
                do
                    o = put(out, o, outsz, *s++);
                while (isdigit((unsigned char)*s));
                continue;
            }
        }
        o = put(out, o, outsz, *s++);
    }
    out[o] = '\0';
    return o;
}

void log_mask_phone(const char *phone, char *out, size_t outsz)
{
    int nd = 0;
    size_t len;

    if (!outsz)
        return;
    if (!phone || !*phone) {
        snprintf(out, outsz, "%s", "");
        return;
    }
    len = phone_run(phone, &nd);
    if (len && phone[len] == '\0') {
        size_t o = mask_phone_into(phone, len, nd, out, 0, outsz);
        out[o] = '\0';
        return;
    }
    /* Not a recognisable number (withheld, "anonymous", short codes): mask all digits. */
    size_t o = 0;
    for (const char *p = phone; *p; p++)
        o = put(out, o, outsz, isdigit((unsigned char)*p) ? '*' : *p);
    out[o] = '\0';
}

/* ---- writing ---- */

static const char *level_name(enum log_level l)
{
    static const char *const n[] = {"debug", "info", "warn", "error", "off"};
    return n[l < 0 || l > LOG_OFF ? LOG_INFO : l];
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

void log_write(enum log_level level, const char *module, const char *fmt, ...)
{
    char raw[LOG_LINE_MAX], masked[LOG_LINE_MAX], line[LOG_LINE_MAX + 256];
    char ts[40];
    struct timespec now;
    struct tm tm;
    va_list ap;
    int n;

    if ((int)level < atomic_load(&log_level_v))
        return;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    log_mask_text(raw, masked, sizeof masked);

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    n = (int)strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - (size_t)n, ".%03ldZ", now.tv_nsec / 1000000);

    if (atomic_load(&log_json_v)) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s?}", "ts", ts, "level", level_name(level),
                              "module", module ? module : "-", "msg", masked);
        char *js = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (js) {
            n = snprintf(line, sizeof line, "%s\n", js);
        } else {
            /* invalid UTF-8 in the message: fall back to a text line */
            n = snprintf(line, sizeof line, "%s %s [%s] %s\n", ts, level_name(level),
                         module ? module : "-", masked);
        }
        free(js);
        json_decref(o);
    } else {
        n = snprintf(line, sizeof line, "%s %-5s [%s] %s\n", ts, level_name(level),
                     module ? module : "-", masked);
    }
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1, line[n - 1] = '\n';
    write_all(atomic_load(&log_fd_v), line, (size_t)n);
}
