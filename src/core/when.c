/*
 * when.c - callback times in Europe/London, by rule.
 *
 * Owns: civil-date arithmetic (days since 1970-01-01, proleptic Gregorian),
 * the GMT/BST rule (BST from the last Sunday of March 01:00 UTC to the last
 * Sunday of October 01:00 UTC), England and Wales bank holidays, business
 * hours, and a small phrase parser for what callers say.
 * Never reads the TZ environment, tzdata or the clock: "now" is an argument,
 * so results are the same on every machine and in every test.
 * Pure functions over caller buffers; any thread.
 *
 * Phrase parsing is deliberately strict: the text is cut into tokens, a few
 * filler words ("at", "on", "the", "of", ...) are dropped, and every other
 * token must be consumed by one of the matchers below (a day, a date, a
 * clock time, a part of the day, a relative offset, "asap"). Anything left
 * over makes the whole phrase ERR_BAD_TIME rather than a guess.
 *
 * Decisions (tested in tests/test_when.c):
 * - An hour without am/pm: 1-7 mean pm, 8-11 am, 12 noon; 13-23, 0 and
 *   hours written with a leading zero ("07:30") are 24-hour clock.
 *   "in the morning/afternoon/evening" or a part of the day overrides that.
 * - A clock time with no day ("3pm") is today if still ahead, else tomorrow.
 * - A day name means the next such day. Said on that same weekday it means
 *   today only when a time is given that is still ahead today ("Monday at
 *   4pm" on Monday morning); otherwise a week today. "next Tuesday" is the
 *   first Tuesday after today (never today), so on a Monday it is tomorrow.
 * - A day with no time gets 10:00 local ("tomorrow", "3 December");
 *   morning 10:00, afternoon 14:00, evening 17:00, end of day 17:00,
 *   lunchtime 13:00, first thing 09:00; explicit_time is false for these.
 *   "today" alone, "asap", "now": now + 15 minutes, explicit_time false.
 * - A date without a year that has already passed this year is next year.
 * - Local times in the spring-forward gap move forward by the gap (01:30 on
 *   the change day is 02:30 BST); the repeated autumn hour is taken as BST
 *   (the first of the two).
 */
#include "core/when.h"

#include "core/cfg.h"
#include "core/err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DAY_S 86400LL
#define WHEN_TEXT_MAX 200
#define WHEN_TOK_MAX 32
#define WHEN_TOK_LEN 24
#define ASAP_S (15 * 60)
#define DEFAULT_DAY_MIN (10 * 60)

/* ---- civil dates (Howard Hinnant's days_from_civil / civil_from_days) ---- */

static long long floordiv(long long a, long long b)
{
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/* Days since 1970-01-01. d may run past the month's end (it just carries). */
static long long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long long era = floordiv(y, 400);
    long long yoe = y - era * 400;
    long long doy = (153LL * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(long long z, int *y, int *m, int *d)
{
    z += 719468;
    long long era = floordiv(z, 146097);
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* 0 = Sunday ... 6 = Saturday (1970-01-01 was a Thursday). */
static int weekday_of(long long days)
{
    return (int)(((days % 7) + 11) % 7);
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int y, int m)
{
    static const int md[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : md[m - 1];
}

static bool date_valid(int y, int m, int d)
{
    return y >= 1970 && y <= 2200 && m >= 1 && m <= 12 && d >= 1 && d <= month_days(y, m);
}

/* Day number of the last given weekday (0 = Sunday) of month m. */
static long long last_wday(int y, int m, int wday)
{
    long long last = days_from_civil(y, m, month_days(y, m));
    return last - ((weekday_of(last) - wday + 7) % 7);
}

static long long first_wday(int y, int m, int wday)
{
    long long first = days_from_civil(y, m, 1);
    return first + ((wday - weekday_of(first) + 7) % 7);
}

/* ---- GMT / BST ---- */

int when_uk_offset(long long t)
{
    int y, m, d;
    civil_from_days(floordiv(t, DAY_S), &y, &m, &d);
    long long start = last_wday(y, 3, 0) * DAY_S + 3600; /* 01:00 UTC */
    long long end = last_wday(y, 10, 0) * DAY_S + 3600;
    return t >= start && t < end ? 3600 : 0;
}

long long when_uk_to_utc(int y, int mon, int d, int h, int min)
{
    long long local = days_from_civil(y, mon, d) * DAY_S + (long long)h * 3600 + min * 60LL;
    if (when_uk_offset(local - 3600) == 3600)
        return local - 3600; /* BST (also the first of the repeated autumn hour) */
    /* GMT, or the spring gap: read with the GMT offset, i.e. moved forward an hour. */
    return local;
}

/* Local day number and minute of day at instant t. */
static void local_of(long long t, long long *days, int *minute)
{
    long long l = t + when_uk_offset(t);
    *days = floordiv(l, DAY_S);
    *minute = (int)((l - *days * DAY_S) / 60);
}

static long long local_instant(long long days, int minute_of_day)
{
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    return when_uk_to_utc(y, m, d, minute_of_day / 60, minute_of_day % 60);
}

/* ---- bank holidays (England and Wales) ---- */

/* Easter Sunday, anonymous Gregorian algorithm (Meeus/Jones/Butcher). */
static long long easter_sunday(int y)
{
    int a = y % 19, b = y / 100, c = y % 100, d = b / 4, e = b % 4;
    int f = (b + 8) / 25, g = (b - f + 1) / 3;
    int h = (19 * a + b - d - g + 15) % 30;
    int i = c / 4, k = c % 4;
    int l = (32 + 2 * e + 2 * i - h - k) % 7;
    int m = (a + 11 * h + 22 * l) / 451;
    int month = (h + l - 7 * m + 114) / 31;
    int day = ((h + l - 7 * m + 114) % 31) + 1;
    return days_from_civil(y, month, day);
}

/*
 * One-off changes proclaimed in past years (moved Mondays and extra days).
 * Future ones are announced a year or so ahead: add them with BANK_HOLIDAYS.
 */
static const struct {
    int y, m, d;
    bool add; /* true: an extra holiday; false: a computed one that did not happen */
} bh_oneoff[] = {
    {2020, 5, 4, false},  {2020, 5, 8, true}, /* VE Day: early May moved to Friday */
    {2022, 5, 30, false}, {2022, 6, 2, true}, /* Platinum Jubilee: spring moved ... */
    {2022, 6, 3, true},                       /* ... and an extra day */
    {2022, 9, 19, true},                      /* State funeral of Queen Elizabeth II */
    {2023, 5, 8, true},                       /* Coronation of King Charles III */
};

static bool bh_computed(int y, long long day)
{
    long long ny = days_from_civil(y, 1, 1), xmas = days_from_civil(y, 12, 25);
    long long easter = easter_sunday(y);
    int wny = weekday_of(ny), wx = weekday_of(xmas);

    /* New Year's Day, or the Monday after when it falls at a weekend. */
    if (day == ny + (wny == 6 ? 2 : wny == 0 ? 1 : 0))
        return true;
    if (day == easter - 2 || day == easter + 1) /* Good Friday, Easter Monday */
        return true;
    if (day == first_wday(y, 5, 1) || day == last_wday(y, 5, 1) || day == last_wday(y, 8, 1))
        return true; /* early May, spring, summer */
    /*
     * Christmas and Boxing Day: a day at a weekend moves to the next weekday
     * not already a holiday. Sat 25 -> Mon 27 + Tue 28; Sun 25 -> Mon 26 (Boxing)
     * + Tue 27; Fri 25 -> Sat 26 moves to Mon 28.
     */
    long long c = xmas, b = xmas + 1;
    if (wx == 6)
        c = xmas + 2, b = xmas + 3;
    else if (wx == 0)
        c = xmas + 2, b = xmas + 1;
    else if (wx == 5)
        b = xmas + 3;
    return day == c || day == b;
}

bool when_is_bank_holiday(int y, int mon, int d, const struct when_hours *h)
{
    long long day;
    if (!date_valid(y, mon, d))
        return false;
    day = days_from_civil(y, mon, d);
    if (h && h->extra_holidays) {
        char buf[32]; /* date_valid() bounds the fields; the size only quiets -O3 */
        snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, mon, d);
        for (const char *const *p = h->extra_holidays; *p; p++)
            if (!strcmp(*p, buf))
                return true;
    }
    for (size_t i = 0; i < sizeof bh_oneoff / sizeof bh_oneoff[0]; i++)
        if (bh_oneoff[i].y == y && bh_oneoff[i].m == mon && bh_oneoff[i].d == d)
            return bh_oneoff[i].add;
    return bh_computed(y, day);
}

/* ---- business hours ---- */

void when_hours_from_cfg(const struct cfg *c, struct when_hours *h)
{
    h->open_min = c->bh_open_min;
    h->close_min = c->bh_close_min;
    h->days_mask = c->bh_days_mask;
    /* cfg keeps the array NULL-terminated (at most 63 of 64 slots used). */
    h->extra_holidays = (const char *const *)c->bank_holidays;
}

static bool business_day(long long days, const struct when_hours *h)
{
    int y, m, d;
    if (!(h->days_mask & (1 << weekday_of(days))))
        return false;
    civil_from_days(days, &y, &m, &d);
    return !when_is_bank_holiday(y, m, d, h);
}

bool when_in_hours(long long t, const struct when_hours *h)
{
    long long days;
    int minute;
    local_of(t, &days, &minute);
    return business_day(days, h) && minute >= h->open_min && minute < h->close_min;
}

long long when_next_slot(long long t, const struct when_hours *h)
{
    long long days;
    int minute;

    if (when_in_hours(t, h))
        return t;
    local_of(t, &days, &minute);
    if (minute < h->open_min && business_day(days, h)) {
        long long open = local_instant(days, h->open_min);
        if (open > t)
            return open;
    }
    /* Two years is more than any run of closed days a valid configuration allows. */
    for (int i = 1; i <= 800; i++)
        if (business_day(days + i, h))
            return local_instant(days + i, h->open_min);
    return t;
}

/* ---- formatting ---- */

static const char *const wday_names[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                         "Thursday", "Friday", "Saturday"};
static const char *const month_names[] = {"January",   "February", "March",    "April",
                                          "May",       "June",     "July",     "August",
                                          "September", "October",  "November", "December"};

void when_format_spoken(long long t, char *out, size_t outsz)
{
    long long days;
    int minute, y, m, d, hh, mm;
    char clock[24];

    if (!out || !outsz)
        return;
    local_of(t, &days, &minute);
    civil_from_days(days, &y, &m, &d);
    hh = minute / 60, mm = minute % 60;
    if (hh == 12 && mm == 0)
        snprintf(clock, sizeof clock, "midday");
    else if (hh == 0 && mm == 0)
        snprintf(clock, sizeof clock, "midnight");
    else if (mm == 0)
        snprintf(clock, sizeof clock, "%d%s", hh % 12 ? hh % 12 : 12, hh < 12 ? "am" : "pm");
    else
        snprintf(clock, sizeof clock, "%d:%02d%s", hh % 12 ? hh % 12 : 12, mm,
                 hh < 12 ? "am" : "pm");
    snprintf(out, outsz, "%s %d %s at %s", wday_names[weekday_of(days)], d, month_names[m - 1],
             clock);
}

void when_format_utc(long long t, char *out, size_t outsz)
{
    long long days = floordiv(t, DAY_S);
    long long s = t - days * DAY_S;
    int y, m, d;
    if (!out || !outsz)
        return;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, outsz, "%04d-%02d-%02d %02d:%02d:%02d", y, m, d, (int)(s / 3600),
             (int)(s / 60 % 60), (int)(s % 60));
}

/* ---- ISO 8601 ---- */

/* Read exactly n digits at *p. */
static bool digits_n(const char **p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        *v = *v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return true;
}

/*
 * "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.fff]]" with "Z", "+HH:MM", "+HHMM",
 * "+HH" (or '-') or nothing (London local time). Returns 1 when parsed, 0
 * when text is not ISO-shaped (try phrases), -1 when ISO-shaped but wrong.
 */
static int parse_iso(const char *s, long long *out, bool *explicit_time)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 0;
    bool have_off = false;

    if (!digits_n(&p, 4, &y) || *p != '-')
        return 0;
    p++;
    if (!digits_n(&p, 2, &mo) || *p++ != '-' || !digits_n(&p, 2, &d))
        return -1;
    if (!date_valid(y, mo, d))
        return -1;
    if (!*p) {
        *out = when_uk_to_utc(y, mo, d, DEFAULT_DAY_MIN / 60, DEFAULT_DAY_MIN % 60);
        *explicit_time = false;
        return 1;
    }
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    p++;
    if (!digits_n(&p, 2, &h) || *p++ != ':' || !digits_n(&p, 2, &mi))
        return -1;
    if (*p == ':') {
        p++;
        if (!digits_n(&p, 2, &sec))
            return -1;
        if (*p == '.' || *p == ',') {
            p++;
            if (!isdigit((unsigned char)*p))
                return -1;
            while (isdigit((unsigned char)*p))
                p++; /* fractions of a second are dropped */
        }
    }
    if (*p == 'Z' || *p == 'z') {
        have_off = true;
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '-' ? -1 : 1;
        if (!digits_n(&p, 2, &oh))
            return -1;
        if (*p == ':')
            p++;
        if (isdigit((unsigned char)*p) && !digits_n(&p, 2, &om))
            return -1;
        have_off = true;
    }
    if (*p || h > 23 || mi > 59 || sec > 60 || oh > 18 || om > 59)
        return -1;
    if (sec == 60)
        sec = 59; /* a leap second is the last second of its minute */
    if (have_off)
        *out = days_from_civil(y, mo, d) * DAY_S + h * 3600LL + mi * 60LL + sec -
               sign * (oh * 3600LL + om * 60LL);
    else
        *out = when_uk_to_utc(y, mo, d, h, mi) + sec;
    *explicit_time = true;
    return 1;
}

/* ---- phrases: tokens ---- */

struct ps {
    char t[WHEN_TOK_MAX][WHEN_TOK_LEN];
    int n;
};

static bool is(const struct ps *p, int i, const char *w)
{
    return i >= 0 && i < p->n && !strcmp(p->t[i], w);
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

static const char *const fillers[] = {
    "at",      "on", "the", "of",     "around", "about", "approximately",
    "roughly", "by", "for", "please", "say",    "maybe", NULL};

static bool is_filler(const char *w)
{
    for (const char *const *f = fillers; *f; f++)
        if (!strcmp(w, *f))
            return true;
    return false;
}

static bool push(struct ps *p, const char *w, size_t n)
{
    if (!n)
        return true;
    if (p->n >= WHEN_TOK_MAX || n >= WHEN_TOK_LEN)
        return false;
    memcpy(p->t[p->n], w, n);
    p->t[p->n][n] = '\0';
    if (is_filler(p->t[p->n]))
        return true;
    p->n++;
    return true;
}

/*
 * Lower-case, turn "a.m."/"p.m." into am/pm, keep "4.30" and "4:30" and
 * "25/11", split "3pm" into "3" "pm" and "twenty-five" into two words.
 * Returns false for characters no time phrase contains.
 */
static bool tokenize(const char *text, struct ps *p)
{
    char buf[WHEN_TEXT_MAX + 1];
    size_t n = 0;

    p->n = 0;
    for (const char *s = text; *s; s++) {
        unsigned char c = (unsigned char)tolower((unsigned char)*s);
        if (n >= WHEN_TEXT_MAX)
            return false;
        if ((c == 'a' || c == 'p') && s[1] == '.' && tolower((unsigned char)s[2]) == 'm') {
            buf[n++] = (char)c, buf[n++] = 'm';
            s += 2;
            if (s[1] == '.')
                s++;
            buf[n++] = ' ';
            continue;
        }
        if (c == '.' && n && isdigit((unsigned char)buf[n - 1]) && isdigit((unsigned char)s[1]))
            buf[n++] = ':'; /* 4.30 */
        else if (isalnum(c) || c == ':' || c == '/' || c == '\'')
            buf[n++] = (char)c;
        else if (isspace(c) || c == ',' || c == '.' || c == '-' || c == '!' || c == '?' ||
                 c == '(' || c == ')')
            buf[n++] = ' ';
        else
            return false;
    }
    buf[n] = '\0';

    for (char *s = buf; *s;) {
        while (*s == ' ')
            s++;
        if (!*s)
            break;
        char *e = s;
        while (*e && *e != ' ')
            e++;
        size_t len = (size_t)(e - s);
        /* split a trailing am/pm off a clock ("3pm", "4:30pm") */
        if (len > 2 && isdigit((unsigned char)s[0]) &&
            (!strncmp(e - 2, "am", 2) || !strncmp(e - 2, "pm", 2)) &&
            isdigit((unsigned char)e[-3])) {
            if (!push(p, s, len - 2) || !push(p, e - 2, 2))
                return false;
        } else {
            /* "minutes'" (as in "minutes' time") */
            if (len > 1 && s[len - 1] == '\'')
                len--;
            if (!push(p, s, len))
                return false;
        }
        s = e;
    }
    return true;
}

/* ---- phrases: small matchers (return tokens used, 0 = no match) ---- */

static int word_num(const char *w)
{
    static const char *const small[] = {"zero",    "one",     "two",       "three",    "four",
                                        "five",    "six",     "seven",     "eight",    "nine",
                                        "ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                                        "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
    static const char *const tens[] = {"twenty", "thirty", "forty", "fifty", "sixty"};
    for (int i = 0; i < 20; i++)
        if (!strcmp(w, small[i]))
            return i;
    for (int i = 0; i < 5; i++)
        if (!strcmp(w, tens[i]))
            return 20 + 10 * i;
    return -1;
}

/* A number: digits (up to 4) or words up to sixty ("forty five"). */
static int num_at(const struct ps *p, int i, int *v)
{
    if (i >= p->n)
        return 0;
    if (all_digits(p->t[i]) && strlen(p->t[i]) <= 4) {
        *v = atoi(p->t[i]);
        return 1;
    }
    int a = word_num(p->t[i]);
    if (a < 0)
        return 0;
    if (a >= 20 && a % 10 == 0 && a < 60 && i + 1 < p->n) {
        int b = word_num(p->t[i + 1]);
        if (b >= 1 && b <= 9) {
            *v = a + b;
            return 2;
        }
    }
    *v = a;
    return 1;
}

/* Only word numbers (so "3 December" is not read as an hour "3" then ...). */
static int wordnum_at(const struct ps *p, int i, int *v)
{
    if (i >= p->n || all_digits(p->t[i]))
        return 0;
    return num_at(p, i, v);
}

static int ord_word(const char *w)
{
    static const char *const o[] = {"first",       "second",     "third",      "fourth",
                                    "fifth",       "sixth",      "seventh",    "eighth",
                                    "ninth",       "tenth",      "eleventh",   "twelfth",
                                    "thirteenth",  "fourteenth", "fifteenth",  "sixteenth",
                                    "seventeenth", "eighteenth", "nineteenth", "twentieth"};
    for (int i = 0; i < 20; i++)
        if (!strcmp(w, o[i]))
            return i + 1;
    if (!strcmp(w, "thirtieth"))
        return 30;
    return -1;
}

/* An ordinal day: "3rd", "21st", "third", "twenty first", "thirty-first". */
static int ord_at(const struct ps *p, int i, int *v)
{
    const char *w;
    size_t n;
    if (i >= p->n)
        return 0;
    w = p->t[i];
    n = strlen(w);
    if (n >= 3 && n <= 4 && isdigit((unsigned char)w[0]) &&
        (!strcmp(w + n - 2, "st") || !strcmp(w + n - 2, "nd") || !strcmp(w + n - 2, "rd") ||
         !strcmp(w + n - 2, "th"))) {
        char num[3] = {0};
        memcpy(num, w, n - 2);
        if (!all_digits(num))
            return 0;
        *v = atoi(num);
        return 1;
    }
    if ((!strcmp(w, "twenty") || !strcmp(w, "thirty")) && i + 1 < p->n) {
        int b = ord_word(p->t[i + 1]);
        if (b >= 1 && b <= 9) {
            *v = (w[1] == 'w' ? 20 : 30) + b;
            return 2;
        }
    }
    int o = ord_word(w);
    if (o < 0)
        return 0;
    *v = o;
    return 1;
}

static int month_of(const char *w)
{
    static const char *const m[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                    "jul", "aug", "sep", "oct", "nov", "dec"};
    size_t n = strlen(w);
    for (int i = 0; i < 12; i++) {
        if (strncmp(w, m[i], 3))
            continue;
        const char *full = month_names[i];
        /* "dec", "sept", or any prefix of the full name */
        if (n == 3 || !strcmp(w, "sept") || (n <= strlen(full) && !strncasecmp(w, full, n)))
            return i + 1;
    }
    return 0;
}

static int wday_of_word(const char *w)
{
    static const char *const abbr[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    static const char *const more[] = {"tues", "weds", "thur", "thurs"};
    static const int more_d[] = {2, 3, 4, 4};
    for (int i = 0; i < 7; i++)
        if (!strcmp(w, abbr[i]) || !strcasecmp(w, wday_names[i]))
            return i;
    for (int i = 0; i < 4; i++)
        if (!strcmp(w, more[i]))
            return more_d[i];
    return -1;
}

/* ---- phrases: the parse ---- */

enum part { P_NONE, P_MORNING, P_AFTERNOON, P_EVENING, P_EOD, P_LUNCH, P_FIRST };

static const struct {
    int minute; /* default time */
    int end;    /* when the period is over (for "this afternoon" said mid-afternoon) */
} part_times[] = {
    [P_NONE] = {0, 0},          [P_MORNING] = {600, 720}, [P_AFTERNOON] = {840, 1020},
    [P_EVENING] = {1020, 1260}, [P_EOD] = {1020, 1020},   [P_LUNCH] = {780, 840},
    [P_FIRST] = {540, 600},
};

enum dayk { D_NONE, D_OFFSET, D_WDAY, D_DATE, D_ORD };
enum wmode { W_PLAIN, W_NEXT, W_THIS };

struct res {
    enum dayk day;
    int off;             /* D_OFFSET: days from today */
    bool off_today_word; /* "today"/"this ..." said explicitly */
    int wday;
    enum wmode wmode;
    bool check_wday; /* a day name said with a date: must match it */
    int y, m, d;     /* D_DATE (y 0 = infer), D_ORD (d only) */

    bool clock;
    int h, min; /* as said */
    int to_min; /* "quarter to": minutes subtracted after the hour is resolved */
    int ampm;   /* -1 unknown, 0 am, 1 pm */
    bool h24;   /* written as a 24-hour clock */
    bool noon;

    enum part part;
    bool asap;
    bool rel;
    long long rel_s;
};

static bool part_word(const char *w, enum part *pt)
{
    if (!strcmp(w, "morning"))
        *pt = P_MORNING;
    else if (!strcmp(w, "afternoon"))
        *pt = P_AFTERNOON;
    else if (!strcmp(w, "evening") || !strcmp(w, "night"))
        *pt = P_EVENING;
    else if (!strcmp(w, "lunchtime"))
        *pt = P_LUNCH;
    else
        return false;
    return true;
}

static int m_asap(const struct ps *p, int i, struct res *r)
{
    int k = 0;
    if (is(p, i, "asap") || is(p, i, "now") || is(p, i, "immediately") || is(p, i, "straightaway"))
        k = 1;
    else if ((is(p, i, "right") || is(p, i, "straight")) &&
             (is(p, i + 1, "away") || is(p, i + 1, "now")))
        k = 2;
    else if (is(p, i, "as") && is(p, i + 1, "soon") && is(p, i + 2, "as") &&
             is(p, i + 3, "possible"))
        k = 4;
    else if (is(p, i, "soon") && is(p, i + 1, "as") && is(p, i + 2, "possible"))
        k = 3;
    if (k)
        r->asap = true;
    return k;
}

static int unit_secs(const char *w)
{
    if (!strcmp(w, "minute") || !strcmp(w, "minutes") || !strcmp(w, "min") || !strcmp(w, "mins"))
        return 60;
    if (!strcmp(w, "hour") || !strcmp(w, "hours") || !strcmp(w, "hr") || !strcmp(w, "hrs"))
        return 3600;
    if (!strcmp(w, "day") || !strcmp(w, "days"))
        return 86400;
    if (!strcmp(w, "week") || !strcmp(w, "weeks"))
        return 7 * 86400;
    return 0;
}

/* "in two hours", "in 30 minutes", "in an hour and a half", "in half an hour", "2 hours from now".
 */
static int m_rel(const struct ps *p, int i, struct res *r)
{
    int j = i, q = 0, k, unit;
    bool in = is(p, j, "in");
    long long secs;

    if (in)
        j++;
    if (is(p, j, "half") && (is(p, j + 1, "an") || is(p, j + 1, "a")) && is(p, j + 2, "hour")) {
        secs = 1800;
        j += 3;
    } else {
        if (is(p, j, "a") || is(p, j, "an")) {
            j++;
            q = 1;
            if (is(p, j, "couple"))
                q = 2, j++;
        } else if ((k = num_at(p, j, &q))) {
            j += k;
        } else {
            return 0;
        }
        if (j >= p->n || !(unit = unit_secs(p->t[j])))
            return 0;
        j++;
        if (q < 0 || q > 1000 || (long long)q * unit > 90 * DAY_S)
            return -1;
        secs = (long long)q * unit;
        if (unit == 3600 && is(p, j, "and") && is(p, j + 1, "a") && is(p, j + 2, "half")) {
            secs += 1800;
            j += 3;
        }
    }
    if (is(p, j, "from") && is(p, j + 1, "now"))
        j += 2;
    else if (is(p, j, "time"))
        j++;
    else if (!in)
        return 0; /* "2 hours" alone is no time */
    r->rel = true;
    r->rel_s = secs;
    return j - i;
}

static int set_day(struct res *r, enum dayk k)
{
    if (r->day != D_NONE)
        return -1; /* two days in one phrase */
    r->day = k;
    return 0;
}

/*
 * A date may come with its day name ("Friday the 3rd of December"): the
 * name is then checked against the date instead of choosing the day.
 */
static int set_date(struct res *r, enum dayk k)
{
    if (r->day == D_WDAY && r->wmode == W_PLAIN && !r->check_wday) {
        r->check_wday = true;
        r->day = k;
        return 0;
    }
    return set_day(r, k);
}

static int m_day(const struct ps *p, int i, struct res *r)
{
    int w;
    enum part pt;

    if (is(p, i, "today") || is(p, i, "tonight")) {
        if (set_day(r, D_OFFSET))
            return -1;
        r->off = 0;
        r->off_today_word = true;
        if (is(p, i, "tonight")) {
            if (r->part)
                return -1;
            r->part = P_EVENING;
        }
        return 1;
    }
    if (is(p, i, "tomorrow") || is(p, i, "tomorow") || is(p, i, "tmrw")) {
        if (set_day(r, D_OFFSET))
            return -1;
        r->off = 1;
        return 1;
    }
    if (is(p, i, "day") && is(p, i + 1, "after") && is(p, i + 2, "tomorrow")) {
        if (set_day(r, D_OFFSET))
            return -1;
        r->off = 2;
        return 3;
    }
    if (is(p, i, "this") && i + 1 < p->n && part_word(p->t[i + 1], &pt)) {
        if (set_day(r, D_OFFSET) || r->part)
            return -1;
        r->off = 0;
        r->off_today_word = true;
        r->part = pt;
        return 2;
    }
    int j = i;
    enum wmode mode = W_PLAIN;
    if (is(p, j, "next"))
        mode = W_NEXT, j++;
    else if (is(p, j, "this"))
        mode = W_THIS, j++;
    if (mode != W_PLAIN && is(p, j, "coming"))
        j++;
    if (j < p->n && (w = wday_of_word(p->t[j])) >= 0) {
        if ((r->day == D_DATE || r->day == D_ORD) && mode == W_PLAIN && !r->check_wday) {
            r->check_wday = true;
            r->wday = w;
            return j + 1 - i;
        }
        if (set_day(r, D_WDAY))
            return -1;
        r->wday = w;
        r->wmode = mode;
        return j + 1 - i;
    }
    return 0;
}

static int year_at(const struct ps *p, int i, int *y)
{
    if (i < p->n && all_digits(p->t[i]) && strlen(p->t[i]) == 4) {
        *y = atoi(p->t[i]);
        return 1;
    }
    return 0;
}

/* "3rd of December [2026]", "3 December", "December 3rd", "25/11[/2026]", "the 3rd". */
static int m_date(const struct ps *p, int i, struct res *r)
{
    int d = 0, m = 0, y = 0, k, j = i;

    if (i >= p->n)
        return 0;
    if (strchr(p->t[i], '/')) {
        int n = 0;
        const char *s = p->t[i];
        if (sscanf(s, "%2d/%2d/%4d%n", &d, &m, &y, &n) == 3 && !s[n]) {
            if (y < 100)
                y += 2000;
        } else if (sscanf(s, "%2d/%2d%n", &d, &m, &n) == 2 && !s[n]) {
            y = 0;
        } else {
            return -1;
        }
        j++;
    } else if ((k = ord_at(p, j, &d)) || (all_digits(p->t[j]) && strlen(p->t[j]) <= 2)) {
        bool ord = k > 0;
        if (!ord)
            d = atoi(p->t[j]), k = 1;
        if (j + k < p->n && (m = month_of(p->t[j + k]))) {
            j += k + 1;
            j += year_at(p, j, &y);
        } else if (ord) {
            if (d < 1 || d > 31 || set_date(r, D_ORD))
                return -1;
            r->d = d;
            return k;
        } else {
            return 0; /* a bare number: maybe a clock time */
        }
    } else if ((m = month_of(p->t[j]))) {
        j++;
        if ((k = ord_at(p, j, &d)))
            j += k;
        else if (j < p->n && all_digits(p->t[j]) && strlen(p->t[j]) <= 2)
            d = atoi(p->t[j]), j++;
        else
            return -1;
        j += year_at(p, j, &y);
    } else {
        return 0;
    }
    if (m < 1 || m > 12 || d < 1 || d > 31 || (y && !date_valid(y, m, d)) ||
        (!y && d > month_days(2000, m)))
        return -1;
    if (set_date(r, D_DATE))
        return -1;
    r->y = y, r->m = m, r->d = d;
    return j - i;
}

static int m_part(const struct ps *p, int i, struct res *r)
{
    enum part pt = P_NONE;
    int k = 0;

    if (i < p->n && part_word(p->t[i], &pt))
        k = 1;
    else if (is(p, i, "in") && i + 1 < p->n && part_word(p->t[i + 1], &pt))
        k = 2; /* "in the morning" ("the" is a filler) */
    else if (is(p, i, "lunch") && is(p, i + 1, "time"))
        pt = P_LUNCH, k = 2;
    else if (is(p, i, "end") && (is(p, i + 1, "day") || is(p, i + 1, "business")))
        pt = P_EOD, k = 2; /* "end of (the) day", "end of business" */
    else if (is(p, i, "close") && is(p, i + 1, "business"))
        pt = P_EOD, k = 2;
    else if (is(p, i, "first") && is(p, i + 1, "thing"))
        pt = P_FIRST, k = 2;
    if (!k)
        return 0;
    if (r->part && r->part != pt)
        return -1;
    r->part = pt;
    return k;
}

/* Clock digits "3", "15", "07", "4:30", "15:30". */
static bool clock_token(const char *w, int *h, int *m, bool *h24)
{
    int n = 0, hh, mm;
    size_t len = strlen(w);
    if (all_digits(w) && len <= 2) {
        *h = atoi(w), *m = 0;
        *h24 = (len == 2 && w[0] == '0') || *h == 0 || *h > 12;
        return *h <= 23;
    }
    if (sscanf(w, "%2d:%2d%n", &hh, &mm, &n) == 2 && !w[n] && isdigit((unsigned char)w[0]) &&
        w[n - 3] == ':' && hh <= 23 && mm <= 59) {
        *h = hh, *m = mm;
        *h24 = w[0] == '0' || hh == 0 || hh > 12;
        return true;
    }
    return false;
}

static int m_clock(const struct ps *p, int i, struct res *r)
{
    int j = i, k, h = -1, m = 0, to = 0, v;
    bool h24 = false;

    if (r->clock)
        return -1; /* two times */
    if (is(p, j, "noon") || is(p, j, "midday") || (is(p, j, "mid") && is(p, j + 1, "day"))) {
        r->clock = true, r->noon = true, r->h = 12, r->min = 0, r->ampm = 1;
        return is(p, j, "mid") ? 2 : 1;
    }
    /* minute expressions: "half past four", "quarter to five", "twenty past three" */
    int mins = -1, kk = 0;
    if (is(p, j, "half"))
        mins = 30, kk = 1;
    else if (is(p, j, "quarter"))
        mins = 15, kk = 1;
    else if (is(p, j, "a") && is(p, j + 1, "quarter"))
        mins = 15, kk = 2;
    else if ((k = num_at(p, j, &v)) && v >= 1 && v <= 59)
        mins = v, kk = k;
    if (mins > 0) {
        int jj = j + kk;
        if (is(p, jj, "minutes") || is(p, jj, "minute") || is(p, jj, "mins"))
            jj++;
        if (is(p, jj, "past") || is(p, jj, "to")) {
            bool past = is(p, jj, "past");
            if (!past && mins == 30)
                return -1; /* "half to" is not English */
            jj++;
            if (!(k = num_at(p, jj, &h)) || h < 1 || h > 12)
                return -1;
            j = jj + k;
            if (past)
                m = mins;
            else
                to = mins;
            goto suffix;
        }
    }
    /* British "half four": half past four */
    if (is(p, i, "half") && (k = num_at(p, i + 1, &h)) && h >= 1 && h <= 12) {
        j = i + 1 + k, m = 30;
        goto suffix;
    }
    /* plain clock: "3", "15:30", "three", "three thirty", "ten oh five" */
    if (j < p->n && clock_token(p->t[j], &h, &m, &h24)) {
        j++;
    } else if ((k = wordnum_at(p, j, &h)) && h >= 0 && h <= 23) {
        j += k;
        h24 = h == 0 || h > 12;
        if ((is(p, j, "oh") || is(p, j, "o")) && (k = wordnum_at(p, j + 1, &v)) && v >= 1 &&
            v <= 9) {
            m = v, j += 1 + k;
        } else if ((k = wordnum_at(p, j, &v)) && v >= 10 && v <= 59) {
            m = v, j += k;
        }
    } else {
        return 0;
    }
suffix:
    r->ampm = -1;
    if (is(p, j, "am") || is(p, j, "pm")) {
        r->ampm = is(p, j, "pm");
        j++;
        if (h < 1 || h > 12)
            return -1; /* "15pm", "0am" */
    } else if (is(p, j, "o'clock") || is(p, j, "oclock")) {
        j++;
    } else if (is(p, j, "o") && is(p, j + 1, "clock")) {
        j += 2;
    } else if ((is(p, j, "hours") || is(p, j, "hrs")) && h24) {
        j++; /* "15:00 hours" */
    }
    r->clock = true;
    r->h = h, r->min = m, r->to_min = to, r->h24 = h24;
    return j - i;
}

/* Resolve the hour as said into 0..23 given am/pm, the part of the day and our default rule. */
static int resolve_hour(const struct res *r)
{
    int h = r->h;
    if (r->noon)
        return 12;
    if (r->ampm == 0)
        return h == 12 ? 0 : h;
    if (r->ampm == 1)
        return h == 12 ? 12 : h + 12;
    if (r->h24)
        return h;
    switch (r->part) {
    case P_AFTERNOON:
    case P_EVENING:
    case P_EOD:
        return h < 12 ? h + 12 : h;
    case P_MORNING:
    case P_FIRST:
        return h; /* "twelve in the morning" is taken as noon, never as midnight */
    default:
        break;
    }
    if (h >= 1 && h <= 7)
        return h + 12;
    return h; /* 8-11 am, 12 noon */
}

int when_parse(const char *text, long long now, long long *out, bool *explicit_time)
{
    struct ps p;
    struct res r;
    char trimmed[WHEN_TEXT_MAX + 1];
    bool expl = false;
    int rc;

    if (!text || !out || strnlen(text, WHEN_TEXT_MAX + 1) > WHEN_TEXT_MAX)
        return ERR_BAD_TIME;
    while (isspace((unsigned char)*text))
        text++;
    snprintf(trimmed, sizeof trimmed, "%s", text);
    for (size_t n = strlen(trimmed); n && isspace((unsigned char)trimmed[n - 1]);)
        trimmed[--n] = '\0';

    rc = parse_iso(trimmed, out, &expl);
    if (rc < 0)
        return ERR_BAD_TIME;
    if (rc > 0) {
        if (explicit_time)
            *explicit_time = expl;
        return 0;
    }

    if (!tokenize(trimmed, &p) || p.n == 0)
        return ERR_BAD_TIME;
    memset(&r, 0, sizeof r);
    r.ampm = -1;
    for (int i = 0; i < p.n;) {
        int k;
        if ((k = m_asap(&p, i, &r)) || (k = m_rel(&p, i, &r)) || (k = m_day(&p, i, &r)) ||
            (k = m_part(&p, i, &r)) || (k = m_date(&p, i, &r)) || (k = m_clock(&p, i, &r))) {
            if (k < 0)
                return ERR_BAD_TIME;
            i += k;
            continue;
        }
        return ERR_BAD_TIME; /* a word we do not understand */
    }

    long long today;
    int now_min;
    local_of(now, &today, &now_min);

    if (r.asap) {
        if (r.rel || r.day || r.clock || r.part)
            return ERR_BAD_TIME;
        *out = now + ASAP_S;
        if (explicit_time)
            *explicit_time = false;
        return 0;
    }
    if (r.rel && r.rel_s < DAY_S) { /* minutes and hours: an instant from now */
        if (r.day || r.clock || r.part)
            return ERR_BAD_TIME;
        *out = now + r.rel_s;
        if (explicit_time)
            *explicit_time = true;
        return 0;
    }
    if (r.rel) { /* "in two days": a day */
        if (r.day)
            return ERR_BAD_TIME;
        r.day = D_OFFSET;
        r.off = (int)(r.rel_s / DAY_S);
    }

    /* the time of day, in minutes after local midnight */
    int minute = -1;
    if (r.clock) {
        int h = resolve_hour(&r);
        minute = h * 60 + r.min - r.to_min;
        if (minute < 0 || h > 23)
            return ERR_BAD_TIME;
        expl = true;
    } else if (r.part) {
        minute = part_times[r.part].minute;
    }

    /* the day */
    long long day = today;
    switch (r.day) {
    case D_NONE:
        if (minute < 0)
            return ERR_BAD_TIME;
        /* a time alone: today if still ahead, else tomorrow */
        if (local_instant(today, minute) <= now)
            day = today + 1;
        break;
    case D_OFFSET:
        day = today + r.off;
        break;
    case D_WDAY: {
        int delta = (r.wday - weekday_of(today) + 7) % 7;
        if (delta == 0) {
            bool later_today =
                minute >= 0 && r.wmode != W_NEXT && local_instant(today, minute) > now;
            delta = later_today ? 0 : 7;
        }
        day = today + delta;
        break;
    }
    case D_DATE: {
        int ty, tm, td;
        civil_from_days(today, &ty, &tm, &td);
        int y = r.y ? r.y : ty;
        if (!date_valid(y, r.m, r.d)) {
            if (r.y)
                return ERR_BAD_TIME;
            y++; /* 29 February in a year without one: the next year that has it */
            while (!date_valid(y, r.m, r.d) && y < ty + 8)
                y++;
            if (!date_valid(y, r.m, r.d))
                return ERR_BAD_TIME;
        }
        day = days_from_civil(y, r.m, r.d);
        if (!r.y && day < today) {
            if (!date_valid(y + 1, r.m, r.d))
                return ERR_BAD_TIME;
            day = days_from_civil(y + 1, r.m, r.d);
        }
        break;
    }
    case D_ORD: {
        int ty, tm, td;
        civil_from_days(today, &ty, &tm, &td);
        int y = ty, m = tm;
        if (r.d < td) {
            if (++m > 12)
                m = 1, y++;
        }
        /* "the 31st" in a 30-day month: the next month that has one */
        for (int tries = 0; !date_valid(y, m, r.d) && tries < 3; tries++)
            if (++m > 12)
                m = 1, y++;
        if (!date_valid(y, m, r.d))
            return ERR_BAD_TIME;
        day = days_from_civil(y, m, r.d);
        break;
    }
    }

    if (r.check_wday && weekday_of(day) != r.wday)
        return ERR_BAD_TIME; /* "Friday 3 December" when the 3rd is a Thursday: ask again */
    if (minute < 0) {
        if (r.day == D_OFFSET && r.off == 0) { /* "today" alone: as soon as possible */
            *out = now + ASAP_S;
            if (explicit_time)
                *explicit_time = false;
            return 0;
        }
        minute = DEFAULT_DAY_MIN;
    }
    *out = local_instant(day, minute);
    /* "this afternoon" said at 3pm: the default 2pm has gone, but the afternoon has not */
    if (!r.clock && r.part && day == today && *out <= now &&
        now_min + ASAP_S / 60 < part_times[r.part].end)
        *out = now + ASAP_S;
    if (explicit_time)
        *explicit_time = expl;
    return 0;
}
