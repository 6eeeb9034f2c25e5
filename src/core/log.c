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

/*
 * What is masked (tests/test_log.c has the rows):
 *   +447700900001, +44 (0)7700 900001, %2B447700900001 -> +44*******001
 *   07700 900001, (07700) 900001, 0044 7700 900001,
 *   447700900001, 7700900001, other bare runs of 10-15 digits -> *******001
 *   "oh seven seven double oh nine ..." (9+ spoken digits)  -> *******001
 *   sarah@example.com                                       -> s***@example.com
 * What is not: ISO timestamps and clock times, Unix seconds/milliseconds
 * (10 or 13 bare digits starting with 1), call SIDs (CA + hex, glued to
 * letters), durations, claim references (RMC-1001), decimals (0.000123456).
 * The number of stars is fixed, so a masked number does not reveal its length.
 */
#define MASK_STARS "*******"

static bool is_word(int c)
{
    return isalnum(c) || c == '_';
}

/* Bytes >= 0x80: the UTF-8 of an internationalised address ("renée@", "@müller.de"). */
static bool is_email_local(int c)
{
    return isalnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' || c >= 0x80;
}

static bool is_domain(int c)
{
    return isalnum(c) || c == '.' || c == '-' || c >= 0x80;
}

/*
 * Bytes of one separator between digit groups at p, or 0: ASCII space, tab, CR, LF,
 * '-', '.', '(' and ')', and the UTF-8 spaces and dashes that models, phone
 * keyboards and word processors put inside numbers (no-break, narrow, thin
 * and ideographic spaces, U+2010-2015 dashes, the minus sign).
 */
static size_t phone_sep_len(const char *p)
{
    const unsigned char *s = (const unsigned char *)p;
    if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '-' || *s == '.' ||
        *s == '(' || *s == ')')
        return 1;
    if (s[0] == 0xc2 && s[1] == 0xa0) /* U+00A0 */
        return 2;
    if (s[0] == 0xe2 && s[1] == 0x80 &&
        ((s[2] >= 0x80 && s[2] <= 0x8a) || (s[2] >= 0x90 && s[2] <= 0x95) || s[2] == 0xaf))
        return 3; /* U+2000-200A spaces, U+2010-2015 dashes, U+202F */
    if (s[0] == 0xe2 && s[1] == 0x88 && s[2] == 0x92) /* U+2212 minus */
        return 3;
    if (s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80) /* U+3000 */
        return 3;
    return 0;
}

struct prun {
    size_t len;      /* bytes of input covered */
    int nd;          /* digits */
    char d[24];      /* the digits */
    int plus;        /* 0, or bytes of the '+' as written: 1 "+", 3 "%2B" */
};

static size_t digit_group(const char *p)
{
    size_t n = 0;
    while (isdigit((unsigned char)p[n]))
        n++;
    return n;
}

/*
 * Digit groups from p joined by 1-2 separators (when seps), up to `limit`
 * digits: a group that would pass the limit ends the run before it, so two
 * numbers side by side make two runs. Fills r->d/nd; returns bytes used.
 */
static size_t groups(const char *p, bool seps, int limit, struct prun *r)
{
    const char *q = p;
    size_t used = 0;
    for (;;) {
        size_t g = digit_group(q);
        if (!g)
            break;
        if (r->nd && r->nd + (int)g > limit)
            break;
        if (g > 15 || r->nd + (int)g > 20)
            return 0;   /* an identifier, not a phone number */
        memcpy(r->d + r->nd, q, g);
        r->nd += (int)g;
        r->d[r->nd] = '\0';
        q += g;
        used = (size_t)(q - p);
        if (!seps)
            break;
        size_t k = 0, l;
        for (int nsep = 0; nsep < 2 && (l = phone_sep_len(q + k)); nsep++)
            k += l;
        if (!k || !isdigit((unsigned char)q[k]))
            break;
        q += k;
    }
    return used;
}

/* s is at a word boundary on '+', '(', '%' or a digit. */
static bool phone_run(const char *s, struct prun *r)
{
    const char *p = s;
    size_t used;
    int limit, min;

    memset(r, 0, sizeof *r);
    if (*p == '(' && (p[1] == '+' || isdigit((unsigned char)p[1])))
        p++;
    if (*p == '+') {
        r->plus = 1, p++;
    } else if (p[0] == '%' && p[1] == '2' && (p[2] == 'B' || p[2] == 'b')) {
        r->plus = 3, p += 3;
    }
    if (!isdigit((unsigned char)*p))
        return false;

    if (r->plus) {
        limit = (p[0] == '4' && p[1] == '4') ? 13 : 15;   /* +44 (0)... carries a stray 0 */
        min = 8;
    } else if (p[0] == '0' && p[1] == '0') {
        limit = 17, min = 10;                             /* 00 international prefix */
    } else if (p[0] == '0') {
        if (p[1] == '.' || p[1] == ',')
            return false;                                 /* 0.000123456: a decimal */
        limit = 11, min = 9;
    } else if (p[0] == '4' && p[1] == '4') {
        limit = 13, min = 11;
    } else if (p[0] == '7') {
        limit = 10, min = 10;
    } else {
        limit = 15, min = 10;
    }
    bool seps = r->plus || p[0] == '0' || (p[0] == '4' && p[1] == '4') || p[0] == '7';
    used = groups(p, seps, limit, r);
    if (!used)
        return false;
    if (r->nd < min && !r->plus && seps && p[0] != '0') {
        /* "44 apples", "7 12": fall back to the plain rule for one bare group */
        memset(r->d, 0, sizeof r->d), r->nd = 0;
        used = groups(p, false, 15, r);
        min = 10;
    }
    if (!used || r->nd < min)
        return false;
    /* Unix seconds / milliseconds are not phone numbers. */
    if (!r->plus && !seps && r->d[0] == '1' && (r->nd == 10 || r->nd == 13))
        return false;
    r->len = (size_t)(p - s) + used;
    /* glued to a word (CA1234..., 07700900001abc): not a phone number */
    if (is_word((unsigned char)s[r->len]))
        return false;
    return true;
}

static size_t put(char *out, size_t o, size_t outsz, char c)
{
    if (o + 1 < outsz)
        out[o++] = c;
    return o;
}

static size_t puts_(char *out, size_t o, size_t outsz, const char *s)
{
    while (*s)
        o = put(out, o, outsz, *s++);
    return o;
}

/* "+44*******001", "%2B44*******001", "*******001". */
static size_t mask_digits(const struct prun *r, char *out, size_t o, size_t outsz)
{
    int keep = 0;
    if (r->plus == 1)
        o = put(out, o, outsz, '+');
    else if (r->plus == 3)
        o = puts_(out, o, outsz, "%2B");
    if (r->plus)   /* keep the country code: 1 and 7 are one digit, 44 and most others two */
        keep = (r->d[0] == '1' || r->d[0] == '7') ? 1 : 2;
    for (int i = 0; i < keep && i < r->nd - 3; i++)
        o = put(out, o, outsz, r->d[i]);
    o = puts_(out, o, outsz, MASK_STARS);
    for (int i = r->nd - 3; i < r->nd; i++)
        o = put(out, o, outsz, r->d[i]);
    return o;
}

/* ---- spoken digits ("oh seven seven double oh nine ...") ---- */

/* Length of the word at s if it is a digit word; *d its digit, *rep 2/3 for double/treble. */
static size_t digit_word_at(const char *s, int *d, int *rep)
{
    static const struct {
        const char *w;
        int d, rep;
    } words[] = {
        {"zero", 0, 0},  {"oh", 0, 0},     {"o", 0, 0},     {"nought", 0, 0}, {"one", 1, 0},
        {"two", 2, 0},   {"three", 3, 0},  {"four", 4, 0},  {"five", 5, 0},   {"six", 6, 0},
        {"seven", 7, 0}, {"eight", 8, 0},  {"nine", 9, 0},  {"double", -1, 2}, {"treble", -1, 3},
        {"triple", -1, 3},
    };
    size_t n = 0;
    while (isalpha((unsigned char)s[n]))
        n++;
    if (!n || n > 6 || is_word((unsigned char)s[n]))
        return 0;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strlen(words[i].w) == n && !strncasecmp(s, words[i].w, n)) {
            *d = words[i].d, *rep = words[i].rep;
            return n;
        }
    return 0;
}

/*
 * A run of 9+ spoken digits at s, possibly mixed with digit groups ("oh
 * 7700 nine double oh ..."): its length, digits in r. At least one word, so
 * plain numbers are left to phone_run.
 */
static bool spoken_run(const char *s, struct prun *r)
{
    const char *p = s;
    int pending = 0, words = 0, tokens = 0;
    size_t end = 0;

    memset(r, 0, sizeof *r);
    while (r->nd < 20) {
        int d, rep;
        size_t n = digit_word_at(p, &d, &rep);
        bool group = false;
        if (!n && isdigit((unsigned char)*p) && !pending) {
            group = true;
            n = digit_group(p);
            if (n > 15 || r->nd + (int)n > 20 || is_word((unsigned char)p[n]))
                break;
            memcpy(r->d + r->nd, p, n);
            r->nd += (int)n;
            end = (size_t)(p + n - s);
            tokens++;
            p += n;
        } else if (!n) {
            break;
        } else if (rep) {
            if (pending)
                break;
            pending = rep;
        } else {
            for (int k = 0; k < (pending ? pending : 1) && r->nd < 20; k++)
                r->d[r->nd++] = (char)('0' + d);
            pending = 0;
            end = (size_t)(p + n - s);
        }
        if (!group) {
            words++, tokens++;
            p += n;
        }
        size_t k = 0;
        while (k < 2 && (p[k] == ' ' || p[k] == ',' || p[k] == '-'))
            k++;
        if (!k)
            break;
        p += k;
    }
    r->d[r->nd] = '\0';
    if (r->nd < 9 || words < 1 || tokens < 3)
        return false;
    r->len = end;
    return true;
}

/*
 * If an email address starts at s (s at the local part's first char), its
 * length. *scanned is how far the local part reached: no address can start
 * before that point either, which keeps the scan linear ("a.a.a.a...").
 */
static size_t email_run(const char *s, size_t *at, size_t *scanned)
{
    size_t i = 0;
    while (is_email_local((unsigned char)s[i]))
        i++;
    *scanned = i;
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
    const char *s = in, *no_email_before = in;
    struct prun r;

    if (!outsz)
        return 0;
    if (!in) {
        out[0] = '\0';
        return 0;
    }
    while (*s) {
        bool boundary = (s == in) || !is_word((unsigned char)s[-1]);
        /* digits after "x-" continue a hyphenated token (a UUID's last group, RMC-1001) */
        bool num_boundary = boundary && !(s - in >= 2 && s[-1] == '-' &&
                                          isalnum((unsigned char)s[-2]));
        if (boundary && s >= no_email_before && is_email_local((unsigned char)*s) && *s != '.' &&
            *s != '+') {
            size_t at = 0, scanned = 0, len = email_run(s, &at, &scanned);
            if (!len)
                no_email_before = s + scanned;
            if (len) {
                size_t first = 1; /* the whole first character, never half of one */
                while (first < at && ((unsigned char)s[first] & 0xC0) == 0x80)
                    first++;
                for (size_t k = 0; k < first; k++)
                    o = put(out, o, outsz, s[k]);
                o = puts_(out, o, outsz, "***");
                for (size_t k = at; k < len; k++)
                    o = put(out, o, outsz, s[k]);
                s += len;
                continue;
            }
        }
        if (num_boundary && (*s == '+' || *s == '(' || *s == '%' || isdigit((unsigned char)*s))) {
            if (phone_run(s, &r) || (isdigit((unsigned char)*s) && spoken_run(s, &r))) {
                o = mask_digits(&r, out, o, outsz);
                s += r.len;
                continue;
            }
            /*
             * Skip the whole number (with decimal or clock parts: 0.000123456,
             * 10:07) so its tail is not re-scanned as a phone.
             */
            if (isdigit((unsigned char)*s)) {
                while (isdigit((unsigned char)*s) ||
                       ((*s == '.' || *s == ',' || *s == ':') && isdigit((unsigned char)s[1])))
                    o = put(out, o, outsz, *s++);
                continue;
            }
        }
        if (boundary && isalpha((unsigned char)*s) && spoken_run(s, &r)) {
            o = mask_digits(&r, out, o, outsz);
            s += r.len;
            continue;
        }
        /* step over a whole word so its inner letters are not taken as a boundary */
        if (is_word((unsigned char)*s) && !isdigit((unsigned char)*s)) {
            while (is_word((unsigned char)*s) && !isdigit((unsigned char)*s))
                o = put(out, o, outsz, *s++);
            continue;
        }
        o = put(out, o, outsz, *s++);
    }
    out[o] = '\0';
    return o;
}

void log_mask_phone(const char *phone, char *out, size_t outsz)
{
    struct prun r;

    if (!outsz)
        return;
    if (!phone || !*phone) {
        out[0] = '\0';
        return;
    }
    if (phone_run(phone, &r) && phone[r.len] == '\0') {
        size_t o = mask_digits(&r, out, 0, outsz);
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

/* Length of a valid UTF-8 sequence at s (as jansson accepts it), 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80 ? 4
                                                                                           : 0;
    }
    return 0;
}

/*
 * Make msg safe for one line: invalid UTF-8 bytes become '?', and in text
 * mode CR/LF/TAB become "\r" "\n" "\t" and other control bytes '?', so a
 * message can never forge a second log line. JSON mode leaves control
 * characters to jansson's escaping.
 */
static void clean_line(const char *in, char *out, size_t outsz, bool json)
{
    size_t o = 0;
    const unsigned char *s = (const unsigned char *)in;
    while (*s && o + 5 < outsz) {
        size_t n = utf8_len(s);
        if (!n) {
            out[o++] = '?';
            s++;
        } else if (!json && (*s == '\n' || *s == '\r' || *s == '\t')) {
            out[o++] = '\\';
            out[o++] = *s == '\n' ? 'n' : *s == '\r' ? 'r' : 't';
            s++;
        } else if (!json && (*s < 0x20 || *s == 0x7f)) {
            out[o++] = '?';
            s++;
        } else {
            memcpy(out + o, s, n);
            o += n, s += n;
        }
    }
    out[o] = '\0';
}

void log_write(enum log_level level, const char *module, const char *fmt, ...)
{
    char raw[LOG_LINE_MAX], masked[LOG_LINE_MAX], clean[LOG_LINE_MAX + LOG_LINE_MAX / 2];
    char line[LOG_LINE_MAX * 2 + 256];
    char ts[40];
    struct timespec now;
    struct tm tm;
    va_list ap;
    int n;
    bool json = atomic_load(&log_json_v);

    if ((int)level < atomic_load(&log_level_v))
        return;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    log_mask_text(raw, masked, sizeof masked);
    clean_line(masked, clean, sizeof clean, json);
    if (!module)
        module = "-";

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    n = (int)strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - (size_t)n, ".%03ldZ", now.tv_nsec / 1000000);

    if (json) {
        /* Escaping can grow the text; shorten the message until the line fits. */
        size_t keep = strlen(clean);
        for (;;) {
            json_t *o = json_pack("{s:s, s:s, s:s, s:s%}", "ts", ts, "level", level_name(level),
                                  "module", module, "msg", clean, keep);
            size_t len = o ? json_dumpb(o, line, sizeof line - 1, JSON_COMPACT) : 0;
            json_decref(o);
            if (o && len && len < sizeof line - 1) {
                line[len] = '\n';
                n = (int)len + 1;
                break;
            }
            if (!o || keep < 16) {   /* cannot happen with cleaned UTF-8; never write half JSON */
                n = snprintf(line, sizeof line,
                             "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"log\",\"msg\":\"(log "
                             "line dropped: could not be encoded)\"}\n",
                             ts, level_name(level));
                break;
            }
            keep /= 2;
            while (keep && ((unsigned char)clean[keep] & 0xc0) == 0x80)
                keep--;   /* not inside a UTF-8 sequence */
        }
    } else {
        n = snprintf(line, sizeof line, "%s %-5s [%s] %s\n", ts, level_name(level), module, clean);
    }
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1, line[n - 1] = '\n';
    write_all(atomic_load(&log_fd_v), line, (size_t)n);
}
