/*
 * norm.c - phone numbers and claim references as callers say or type them.
 *
 * Owns: two small scanners that turn text into a digit string (typed digits
 * with separators, or spoken words: "oh", "zero", "double", "treble"), and
 * the UK E.164 rules from ../shared/protocols/twilio.md §5 applied to it.
 * Pure functions over caller-provided buffers: no allocation, no globals,
 * any thread. Input is untrusted (it comes from the model): every length is
 * bounded and anything unexpected is a refusal, never a guess.
 */
#include "core/norm.h"

#include "core/err.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define NORM_IN_MAX 160    /* longer input is not a phone number or a reference */
#define NORM_DIGITS_MAX 20 /* scanned digits; E.164 allows 15 */

/* ---- spoken digits ---- */

/* "oh" -> 0 ... "nine" -> 9; -1 when w is not a digit word. */
static int digit_word(const char *w)
{
    static const struct {
        const char *w;
        int d;
    } words[] = {
        {"zero", 0}, {"oh", 0},    {"o", 0},     {"nought", 0}, {"nil", 0},
        {"one", 1},  {"two", 2},   {"three", 3}, {"four", 4},   {"five", 5},
        {"six", 6},  {"seven", 7}, {"eight", 8}, {"nine", 9},
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!strcmp(w, words[i].w))
            return words[i].d;
    return -1;
}

/* "double" -> 2, "treble"/"triple" -> 3, else 0. */
static int repeat_word(const char *w)
{
    if (!strcmp(w, "double"))
        return 2;
    if (!strcmp(w, "treble") || !strcmp(w, "triple"))
        return 3;
    return 0;
}

/* Words that only separate groups ("dash"); they carry no digit. */
static bool filler_word(const char *w)
{
    return !strcmp(w, "dash") || !strcmp(w, "hyphen") || !strcmp(w, "space");
}

struct digits {
    char d[NORM_DIGITS_MAX + 1];
    int n;
    int repeat; /* pending "double"/"treble" for the next digit */
    bool overflow;
};

static bool digits_add(struct digits *ds, char c)
{
    int times = ds->repeat ? ds->repeat : 1;
    ds->repeat = 0;
    for (int i = 0; i < times; i++) {
        if (ds->n >= NORM_DIGITS_MAX) {
            ds->overflow = true;
            return false;
        }
        ds->d[ds->n++] = c;
    }
    ds->d[ds->n] = '\0';
    return true;
}

/*
 * Read one lower-cased word of letters at *p into w (wsz), advancing *p.
 * word_floor is the start of the input (for looking one byte back).
 * Returns false when the word does not fit (it is then no word we know)
 * or touches a digit.
 */
static bool read_word(const char *word_floor, const char **p, char *w, size_t wsz)
{
    size_t n = 0;
    bool fits = true;
    const char *start = *p;
    while (isalpha((unsigned char)**p)) {
        if (n + 1 < wsz)
            w[n++] = (char)tolower((unsigned char)**p);
        else
            fits = false;
        (*p)++;
    }
    w[n] = '\0';
    /* A word glued to digits ("9000o1", "10O1") is a typo we refuse, not a digit. */
    return fits && !isdigit((unsigned char)**p) &&
           !(start > word_floor && isdigit((unsigned char)start[-1]));
}

/*
 * Feed the word w (a digit word, "double"/"treble" or a filler) into ds.
 * Returns false for any other word.
 */
static bool feed_word(struct digits *ds, const char *w)
{
    int d, r;
    if ((d = digit_word(w)) >= 0)
        return digits_add(ds, (char)('0' + d));
    if ((r = repeat_word(w))) {
        if (ds->repeat)
            return false; /* "double double" */
        ds->repeat = r;
        return true;
    }
    return filler_word(w) && !ds->repeat;
}

/* ---- phones ---- */

static bool phone_sep(int c)
{
    return c == ' ' || c == '\t' || c == '-' || c == '.' || c == '(' || c == ')' || c == ',' ||
           c == '/' || c == '\n' || c == '\r';
}

/*
 * Scan in into an optional '+' and a digit string. Refuses letters other
 * than digit words, a '+' anywhere but first, and control characters.
 */
static bool phone_scan(const char *in, bool *plus, struct digits *ds)
{
    const char *p = in;
    char w[16];

    *plus = false;
    memset(ds, 0, sizeof *ds);
    while (*p) {
        unsigned char c = (unsigned char)*p;
        if (phone_sep(c)) {
            p++;
        } else if (c == '+') {
            if (*plus || ds->n || ds->repeat)
                return false;
            *plus = true;
            p++;
        } else if (isdigit(c)) {
            if (!digits_add(ds, (char)c))
                return false;
            p++;
        } else if (isalpha(c)) {
            if (!read_word(in, &p, w, sizeof w))
                return false;
            if (!strcmp(w, "plus")) {
                if (*plus || ds->n || ds->repeat)
                    return false;
                *plus = true;
            } else if (!feed_word(ds, w)) {
                return false;
            }
        } else {
            return false;
        }
    }
    return !ds->repeat && !ds->overflow && ds->n > 0;
}

/*
 * A UK national significant number (after +44, no trunk 0): 10 digits, or 9
 * for a few geographic areas (01xxx) and old 0800 numbers. Mobiles (07) are
 * always 10. 0, 4 and 6 are not allocated as leading digits.
 */
static bool uk_nsn_ok(const char *nsn)
{
    size_t n = strlen(nsn);
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)nsn[i]))
            return false;
    if (n == 10)
        return strchr("1235789", nsn[0]) != NULL;
    return n == 9 && (nsn[0] == '1' || nsn[0] == '8');
}

static int put_uk(const char *nsn, char *out, size_t outsz)
{
    if (!uk_nsn_ok(nsn))
        return ERR_INVALID_PHONE;
    snprintf(out, outsz, "+44%s", nsn);
    return 0;
}

int norm_phone(const char *in, char *out, size_t outsz)
{
    struct digits ds;
    bool plus;
    const char *d;
    size_t n;

    if (!out || outsz < 17)
        return ERR_INVALID_PHONE;
    out[0] = '\0';
    if (!in || strnlen(in, NORM_IN_MAX + 1) > NORM_IN_MAX || !phone_scan(in, &plus, &ds))
        return ERR_INVALID_PHONE;
    d = ds.d;
    n = (size_t)ds.n;

    if (!plus && n > 2 && d[0] == '0' && d[1] == '0') { /* 0044..., 001...: international prefix */
        plus = true;
        d += 2, n -= 2;
    }
    if (plus) {
        if (n >= 2 && d[0] == '4' && d[1] == '4') {
            d += 2;
            if (*d == '0') /* "+44 (0)20...", "+4407...": the stray trunk zero is dropped */
                d++;
            return put_uk(d, out, outsz);
        }
        /* Another country: keep it as E.164 (7 to 15 digits, no leading 0). */
        if (n < 7 || n > 15 || d[0] == '0')
            return ERR_INVALID_PHONE;
        snprintf(out, outsz, "+%s", d);
        return 0;
    }
    if (n == 12 && d[0] == '4' && d[1] == '4') /* 447700900001 */
        return put_uk(d + 2, out, outsz);
    if (n == 13 && !strncmp(d, "440", 3)) /* 4407700900001 */
        return put_uk(d + 3, out, outsz);
    if ((n == 11 || n == 10) && d[0] == '0') /* 07700 900001 (10: 9-digit NSN areas) */
        return put_uk(d + 1, out, outsz);
    if (n == 10 && d[0] == '7') /* 7700900001: trunk 0 dropped */
        return put_uk(d, out, outsz);
    return ERR_INVALID_PHONE;
}

int norm_is_uk_mobile(const char *e164)
{
    if (!e164 || strlen(e164) != 13 || strncmp(e164, "+447", 4))
        return 0;
    for (int i = 4; i < 13; i++)
        if (!isdigit((unsigned char)e164[i]))
            return 0;
    /* 071-075, 077-079; 070 (personal) and 076 (pagers) are not mobiles, 07624 (Isle of Man) is. */
    if (e164[4] != '0' && e164[4] != '6')
        return 1;
    return !strncmp(e164, "+447624", 7);
}

/* ---- claim references ---- */

/*
 * Only "RMC" + 4 to 6 digits is accepted. Digits alone ("1001") are NOT a
 * claim reference: a bare number is just as likely a house number, an amount,
 * a date or part of a phone number the model mis-heard, and the reference is
 * one of the two factors that verifies a caller, so we never guess the
 * prefix. The caller is asked to read it out again (ERR_INVALID_CLAIM_REF
 * says "R M C dash and four digits").
 */
#define CLAIM_DIGITS_MIN 4
#define CLAIM_DIGITS_MAX 6

static bool claim_sep(int c)
{
    return isspace(c) || c == '-' || c == '.' || c == '_' || c == '/' || c == ':';
}

int norm_claim_ref(const char *in, char *out, size_t outsz)
{
    const char *p = in;
    char prefix[4] = {0};
    int np = 0;
    struct digits ds;
    char w[16];

    if (!out || outsz < 16)
        return ERR_INVALID_CLAIM_REF;
    out[0] = '\0';
    if (!in || strnlen(in, NORM_IN_MAX + 1) > NORM_IN_MAX)
        return ERR_INVALID_CLAIM_REF;

    /* The three prefix letters, typed together ("RMC") or spelled ("R M C", "r.m.c."). */
    while (*p && np < 3) {
        unsigned char c = (unsigned char)*p;
        if (claim_sep(c)) {
            p++;
        } else if (isalpha(c)) {
            prefix[np++] = (char)tolower(c);
            p++;
        } else {
            return ERR_INVALID_CLAIM_REF;
        }
    }
    if (np != 3 || strcmp(prefix, "rmc"))
        return ERR_INVALID_CLAIM_REF;
    /* "RMCone": the prefix must not run into a word. */
    if (isalpha((unsigned char)*p))
        return ERR_INVALID_CLAIM_REF;

    memset(&ds, 0, sizeof ds);
    while (*p) {
        unsigned char c = (unsigned char)*p;
        if (claim_sep(c)) {
            p++;
        } else if (isdigit(c)) {
            if (!digits_add(&ds, (char)c))
                return ERR_INVALID_CLAIM_REF;
            p++;
        } else if (isalpha(c)) {
            if (!read_word(in, &p, w, sizeof w) || !feed_word(&ds, w))
                return ERR_INVALID_CLAIM_REF;
        } else {
            return ERR_INVALID_CLAIM_REF; /* ';', quotes, anything else */
        }
    }
    if (ds.repeat || ds.overflow || ds.n < CLAIM_DIGITS_MIN || ds.n > CLAIM_DIGITS_MAX)
        return ERR_INVALID_CLAIM_REF;
    snprintf(out, outsz, "RMC-%s", ds.d);
    return 0;
}
