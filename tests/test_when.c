/*
 * test_when.c - Europe/London times: phrases, GMT/BST, bank holidays,
 * business hours, formatting.
 *
 * Expected instants are written as UTC wall clock and converted with glibc's
 * timegm (TZ-independent), so the test does not share arithmetic with
 * when.c. Reference days: Tuesday 24 November 2026 (GMT), the spring change
 * on Sunday 29 March 2026 and the autumn change on Sunday 25 October 2026.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/when.h"
#include "vwstest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* "YYYY-MM-DD HH:MM[:SS]" UTC -> Unix seconds. */
static long long U(const char *s)
{
    struct tm tm = {0};
    int y, mo, d, h, mi, sec = 0;
    if (sscanf(s, "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &sec) < 5)
        abort();
    tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d;
    tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = sec;
    return (long long)timegm(&tm);
}

/* ---- phrases ---- */

#define TUE "2026-11-24 10:00" /* Tuesday, GMT */

struct prow {
    const char *now; /* UTC */
    const char *text;
    const char *want;  /* UTC, NULL = ERR_BAD_TIME */
    int explicit_time; /* -1 = don't care */
};

static const struct prow phrase_rows[] = {
    /* ISO 8601 */
    {TUE, "2026-11-25T15:00:00Z", "2026-11-25 15:00", 1},
    {TUE, "2026-11-25T15:00:00.250Z", "2026-11-25 15:00", 1},
    {TUE, "2026-11-25T15:00:00+01:00", "2026-11-25 14:00", 1},
    {TUE, "2026-11-25T15:00:00-0500", "2026-11-25 20:00", 1},
    {TUE, "2026-11-25T15:00+05", "2026-11-25 10:00", 1},
    {TUE, "2026-11-25T15:00:00", "2026-11-25 15:00", 1}, /* naive = London, GMT */
    {TUE, "2026-07-01T15:00:00", "2026-07-01 14:00", 1}, /* naive = London, BST */
    {TUE, "2026-07-01 15:00", "2026-07-01 14:00", 1},
    {TUE, "2026-11-25", "2026-11-25 10:00", 0}, /* date only: default time */
    {TUE, "2026-07-01", "2026-07-01 09:00", 0},
    {TUE, "  2026-11-25T15:00:00Z  ", "2026-11-25 15:00", 1},
    /* days and clock times */
    {TUE, "tomorrow at 3pm", "2026-11-25 15:00", 1},
    {TUE, "Tomorrow at 3 PM", "2026-11-25 15:00", 1},
    {TUE, "tomorrow at 3 p.m.", "2026-11-25 15:00", 1},
    {TUE, "tomorrow 3", "2026-11-25 15:00", 1},
    {TUE, "tomorrow", "2026-11-25 10:00", 0},
    {TUE, "today at 4:30pm", "2026-11-24 16:30", 1},
    {TUE, "today at 4.30pm", "2026-11-24 16:30", 1},
    {TUE, "today", "2026-11-24 10:15", 0},
    {TUE, "3pm", "2026-11-24 15:00", 1},
    {TUE, "9am", "2026-11-25 09:00", 1}, /* passed today: tomorrow */
    {TUE, "15:30", "2026-11-24 15:30", 1},
    {TUE, "15:30 hours", "2026-11-24 15:30", 1},
    {TUE, "noon", "2026-11-24 12:00", 1},
    {TUE, "midday", "2026-11-24 12:00", 1},
    {TUE, "tomorrow at mid-day", "2026-11-25 12:00", 1},
    {TUE, "12", "2026-11-24 12:00", 1},
    {TUE, "half past four", "2026-11-24 16:30", 1},
    {TUE, "quarter past 9", "2026-11-25 09:15", 1},
    {TUE, "half four tomorrow", "2026-11-25 16:30", 1}, /* British: half past four */
    {TUE, "at half 9", "2026-11-25 09:30", 1},
    {TUE, "3:30 tomorrow afternoon", "2026-11-25 15:30", 1},
    {TUE, "quarter to five on Friday", "2026-11-27 16:45", 1},
    {TUE, "a quarter to eight tomorrow", "2026-11-25 07:45", 1},
    {TUE, "twenty past three", "2026-11-24 15:20", 1},
    {TUE, "ten to four", "2026-11-24 15:50", 1},
    {TUE, "twenty five minutes past two", "2026-11-24 14:25", 1},
    {TUE, "three thirty", "2026-11-24 15:30", 1},
    {TUE, "four fifteen pm", "2026-11-24 16:15", 1},
    {TUE, "ten oh five", "2026-11-24 10:05", 1},
    {TUE, "3 o'clock", "2026-11-24 15:00", 1},
    {TUE, "five o clock tomorrow", "2026-11-25 17:00", 1},
    {TUE, "at three", "2026-11-24 15:00", 1},
    /* hours without am/pm: 1-7 pm, 8-11 am, 12 noon; 24-hour forms as written */
    {TUE, "tomorrow at 1", "2026-11-25 13:00", 1},
    {TUE, "tomorrow at 7", "2026-11-25 19:00", 1},
    {TUE, "tomorrow at 8", "2026-11-25 08:00", 1},
    {TUE, "tomorrow at 11", "2026-11-25 11:00", 1},
    {TUE, "tomorrow at 12", "2026-11-25 12:00", 1},
    {TUE, "tomorrow at 7:30", "2026-11-25 19:30", 1},
    {TUE, "tomorrow at 07:30", "2026-11-25 07:30", 1},
    {TUE, "tomorrow at 19:00", "2026-11-25 19:00", 1},
    {TUE, "tomorrow at 12am", "2026-11-25 00:00", 1},
    {TUE, "tomorrow at 12pm", "2026-11-25 12:00", 1},
    {TUE, "tomorrow at 7 in the morning", "2026-11-25 07:00", 1},
    {TUE, "tomorrow at 10 in the morning", "2026-11-25 10:00", 1},
    {TUE, "at 3 in the afternoon tomorrow", "2026-11-25 15:00", 1},
    {TUE, "tomorrow evening at 6", "2026-11-25 18:00", 1},
    {TUE, "tomorrow morning at 8", "2026-11-25 08:00", 1},
    /* relative */
    {TUE, "in two hours", "2026-11-24 12:00", 1},
    {TUE, "in 2 hours", "2026-11-24 12:00", 1},
    {TUE, "in 30 minutes", "2026-11-24 10:30", 1},
    {TUE, "in thirty minutes", "2026-11-24 10:30", 1},
    {TUE, "in forty-five minutes", "2026-11-24 10:45", 1},
    {TUE, "in an hour", "2026-11-24 11:00", 1},
    {TUE, "in a couple of hours", "2026-11-24 12:00", 1},
    {TUE, "in half an hour", "2026-11-24 10:30", 1},
    {TUE, "in an hour and a half", "2026-11-24 11:30", 1},
    {TUE, "in 90 minutes", "2026-11-24 11:30", 1},
    {TUE, "in 20 minutes' time", "2026-11-24 10:20", 1},
    {TUE, "two hours from now", "2026-11-24 12:00", 1},
    {TUE, "in sixty minutes", "2026-11-24 11:00", 1},
    {TUE, "in two days", "2026-11-26 10:00", 0},
    {TUE, "in two days at 3pm", "2026-11-26 15:00", 1},
    {TUE, "in a week", "2026-12-01 10:00", 0},
    /* parts of the day */
    {TUE, "Monday morning", "2026-11-30 10:00", 0},
    {TUE, "Monday afternoon", "2026-11-30 14:00", 0},
    {TUE, "Wednesday evening", "2026-11-25 17:00", 0},
    {TUE, "this afternoon", "2026-11-24 14:00", 0},
    {TUE, "this evening", "2026-11-24 17:00", 0},
    {TUE, "tonight", "2026-11-24 17:00", 0},
    {TUE, "end of day", "2026-11-24 17:00", 0},
    {TUE, "by the end of the day", "2026-11-24 17:00", 0},
    {TUE, "tomorrow at lunchtime", "2026-11-25 13:00", 0},
    {TUE, "first thing tomorrow", "2026-11-25 09:00", 0},
    {TUE, "morning", "2026-11-25 10:00", 0}, /* 10:00 passed today */
    {TUE, "afternoon", "2026-11-24 14:00", 0},
    {"2026-11-24 15:00", "this afternoon", "2026-11-24 15:15", 0}, /* afternoon not over */
    {"2026-11-24 16:50", "this afternoon", "2026-11-24 14:00", 0}, /* over: the caller refuses */
    /* day names (today is Tuesday) */
    {TUE, "Friday", "2026-11-27 10:00", 0},
    {TUE, "on Friday at 2", "2026-11-27 14:00", 1},
    {TUE, "fri 2pm", "2026-11-27 14:00", 1},
    {TUE, "next Tuesday at 10", "2026-12-01 10:00", 1},
    {TUE, "next Wednesday", "2026-11-25 10:00", 0}, /* first Wednesday after today */
    {TUE, "this Thursday at 11", "2026-11-26 11:00", 1},
    {TUE, "this coming Monday", "2026-11-30 10:00", 0},
    {TUE, "Tuesday", "2026-12-01 10:00", 0},             /* today's name: next week */
    {TUE, "Tuesday at 4pm", "2026-11-24 16:00", 1},      /* ... unless later today */
    {TUE, "Tuesday at 9am", "2026-12-01 09:00", 1},      /* 9am today has gone */
    {TUE, "next Tuesday at 4pm", "2026-12-01 16:00", 1}, /* "next" never means today */
    {TUE, "Tuesday afternoon", "2026-11-24 14:00", 0},
    /* dates */
    {TUE, "on the 3rd of December at 11am", "2026-12-03 11:00", 1},
    {TUE, "3 December at 11", "2026-12-03 11:00", 1},
    {TUE, "December 3rd at 11", "2026-12-03 11:00", 1},
    {TUE, "Dec 3 at 11:30am", "2026-12-03 11:30", 1},
    {TUE, "the third of December", "2026-12-03 10:00", 0},
    {TUE, "the twenty-first of December at 3", "2026-12-21 15:00", 1},
    {TUE, "Thursday the 3rd of December at 2pm", "2026-12-03 14:00", 1},
    {TUE, "3rd December 2027 at 9", "2027-12-03 09:00", 1},
    {TUE, "the 3rd", "2026-12-03 10:00", 0},
    {TUE, "the 30th at 4pm", "2026-11-30 16:00", 1},
    {TUE, "25/12", "2026-12-25 10:00", 0},
    {TUE, "02/01/2027 at 10am", "2027-01-02 10:00", 1},
    {TUE, "23 November", "2027-11-23 10:00", 0},        /* passed: next year */
    {TUE, "24 November at 9am", "2026-11-24 09:00", 1}, /* today, past: the caller refuses */
    {TUE, "1 July at 3pm", "2027-07-01 14:00", 1},      /* BST */
    /* asap */
    {TUE, "asap", "2026-11-24 10:15", 0},
    {TUE, "ASAP", "2026-11-24 10:15", 0},
    {TUE, "as soon as possible", "2026-11-24 10:15", 0},
    {TUE, "now", "2026-11-24 10:15", 0},
    {TUE, "right now please", "2026-11-24 10:15", 0},
    {TUE, "straight away", "2026-11-24 10:15", 0},
    /* across the clock changes */
    {"2026-03-28 12:00", "tomorrow at 9am", "2026-03-29 08:00", 1}, /* Sat -> Sun, BST */
    {"2026-10-24 12:00", "tomorrow at 9am", "2026-10-25 09:00", 1}, /* Sat -> Sun, GMT */
    {"2026-03-28 23:30", "in two hours", "2026-03-29 01:30", 1},    /* instants, not wall clock */
    {"2026-03-28 23:30", "tomorrow at 10", "2026-03-29 09:00", 1},
    {"2026-03-29 00:30", "tomorrow at 10", "2026-03-30 09:00", 1},
    {"2026-07-01 23:30", "tomorrow at 3pm", "2026-07-03 14:00", 1}, /* 00:30 BST on the 2nd */
    {"2026-07-01 23:30", "today at 3pm", "2026-07-02 14:00", 1},
    {"2026-03-28 12:00", "tomorrow at 01:30", "2026-03-29 01:30", 1}, /* gap: 02:30 BST */
    {"2026-03-28 12:00", "tomorrow at 02:30", "2026-03-29 01:30", 1},
    {"2026-03-28 12:00", "tomorrow at 00:30", "2026-03-29 00:30", 1},
    {"2026-10-24 12:00", "tomorrow at 01:30", "2026-10-25 00:30", 1}, /* repeated hour: BST */
    {"2026-10-24 12:00", "tomorrow at 02:30", "2026-10-25 02:30", 1},
    /* refused */
    {TUE, "", NULL, 0},
    {TUE, "   ", NULL, 0},
    {TUE, "banana", NULL, 0},
    {TUE, "whenever", NULL, 0},
    {TUE, "yesterday", NULL, 0},
    {TUE, "tomorrow at 25", NULL, 0},
    {TUE, "tomorrow at 24:00", NULL, 0},
    {TUE, "15pm", NULL, 0},
    {TUE, "0am", NULL, 0},
    {TUE, "13:75", NULL, 0},
    {TUE, "half to four", NULL, 0},
    {TUE, "quarter past", NULL, 0},
    {TUE, "in two", NULL, 0},
    {TUE, "two hours", NULL, 0},
    {TUE, "in 2 hours tomorrow", NULL, 0},
    {TUE, "asap tomorrow", NULL, 0},
    {TUE, "tomorrow tomorrow", NULL, 0},
    {TUE, "Monday Tuesday", NULL, 0},
    {TUE, "3pm 4pm", NULL, 0},
    {TUE, "31 November", NULL, 0},
    {TUE, "the 32nd", NULL, 0},
    {TUE, "Friday the 3rd of December", NULL, 0}, /* the 3rd is a Thursday */
    {TUE, "next", NULL, 0},
    {TUE, "tomorrow at 3pm; DROP TABLE", NULL, 0},
    {TUE, "2026-13-01", NULL, 0},
    {TUE, "2026-02-30", NULL, 0},
    {TUE, "2026-11-25T25:00:00Z", NULL, 0},
    {TUE, "2026-11-25T15:00:00X", NULL, 0},
    {TUE, "2026-11-25 at 3pm", NULL, 0},
    {TUE, "in 5000 hours", NULL, 0},
    {TUE,
     "tomorrow at 3pm tomorrow at 3pm tomorrow at 3pm tomorrow at 3pm tomorrow at 3pm "
     "tomorrow at 3pm tomorrow at 3pm tomorrow at 3pm tomorrow at 3pm tomorrow at 3pm "
     "tomorrow at 3pm",
     NULL, 0},
};

static void test_phrases(void **state)
{
    (void)state;
    int failures = 0;
    char got[32], want[32];
    for (size_t i = 0; i < sizeof phrase_rows / sizeof phrase_rows[0]; i++) {
        const struct prow *r = &phrase_rows[i];
        long long out = -1;
        bool expl = !r->explicit_time;
        int rc = when_parse(r->text, U(r->now), &out, &expl);
        when_format_utc(out, got, sizeof got);
        if (!r->want) {
            if (rc != ERR_BAD_TIME) {
                fprintf(stderr, "when_parse(\"%s\") = %d %s, want ERR_BAD_TIME\n", r->text, rc,
                        got);
                failures++;
            }
            continue;
        }
        when_format_utc(U(r->want), want, sizeof want);
        if (rc != 0 || strcmp(got, want)) {
            fprintf(stderr, "when_parse(\"%s\") at %s = %d %s, want %s\n", r->text, r->now, rc,
                    rc ? "-" : got, want);
            failures++;
        } else if (r->explicit_time >= 0 && expl != (r->explicit_time == 1)) {
            fprintf(stderr, "when_parse(\"%s\") explicit_time = %d, want %d\n", r->text, expl,
                    r->explicit_time);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_parse_edges(void **state)
{
    (void)state;
    long long out = 0;
    bool expl = true;
    assert_int_equal(when_parse(NULL, U(TUE), &out, &expl), ERR_BAD_TIME);
    /* explicit_time may be NULL */
    assert_int_equal(when_parse("tomorrow at 3pm", U(TUE), &out, NULL), 0);
    assert_true(out == U("2026-11-25 15:00"));
    /* asap is exactly now + 15 minutes, to the second */
    assert_int_equal(when_parse("asap", U("2026-11-24 10:00:07"), &out, &expl), 0);
    assert_true(out == U("2026-11-24 10:15:07"));
    assert_false(expl);
    /* seconds survive in ISO */
    assert_int_equal(when_parse("2026-11-25T15:00:42Z", U(TUE), &out, &expl), 0);
    assert_true(out == U("2026-11-25 15:00:42"));
    /* every single byte value on its own is refused or parsed, never a crash */
    for (int c = 1; c < 256; c++) {
        char s[4] = {(char)c, 'x', (char)c, 0};
        int rc = when_parse(s, U(TUE), &out, &expl);
        assert_true(rc == 0 || rc == ERR_BAD_TIME);
    }
}

/* ---- GMT / BST ---- */

static void test_uk_offset(void **state)
{
    (void)state;
    assert_int_equal(when_uk_offset(U("2026-03-29 00:59:59")), 0);
    assert_int_equal(when_uk_offset(U("2026-03-29 01:00:00")), 3600);
    assert_int_equal(when_uk_offset(U("2026-10-25 00:59:59")), 3600);
    assert_int_equal(when_uk_offset(U("2026-10-25 01:00:00")), 0);
    assert_int_equal(when_uk_offset(U("2025-03-30 01:00:00")), 3600);
    assert_int_equal(when_uk_offset(U("2025-03-30 00:59:59")), 0);
    assert_int_equal(when_uk_offset(U("2025-10-26 00:59:59")), 3600);
    assert_int_equal(when_uk_offset(U("2025-10-26 01:00:00")), 0);
    assert_int_equal(when_uk_offset(U("2027-03-28 01:00:00")), 3600);
    assert_int_equal(when_uk_offset(U("2027-10-31 00:59:59")), 3600);
    assert_int_equal(when_uk_offset(U("2027-10-31 01:00:00")), 0);
    assert_int_equal(when_uk_offset(U("2026-07-01 12:00")), 3600);
    assert_int_equal(when_uk_offset(U("2026-12-31 23:59")), 0);
    assert_int_equal(when_uk_offset(U("2026-01-01 00:00")), 0);

    assert_true(when_uk_to_utc(2026, 11, 24, 10, 0) == U("2026-11-24 10:00"));
    assert_true(when_uk_to_utc(2026, 7, 1, 10, 0) == U("2026-07-01 09:00"));
    /* spring gap: 01:00-01:59 local does not exist on 29 March 2026; moved forward */
    assert_true(when_uk_to_utc(2026, 3, 29, 0, 59) == U("2026-03-29 00:59"));
    assert_true(when_uk_to_utc(2026, 3, 29, 1, 0) == U("2026-03-29 01:00"));
    assert_true(when_uk_to_utc(2026, 3, 29, 1, 30) == U("2026-03-29 01:30"));
    assert_true(when_uk_to_utc(2026, 3, 29, 2, 0) == U("2026-03-29 01:00"));
    assert_true(when_uk_to_utc(2026, 3, 29, 2, 30) == U("2026-03-29 01:30"));
    /* autumn: 01:00-01:59 local happens twice on 25 October 2026; the first (BST) */
    assert_true(when_uk_to_utc(2026, 10, 25, 0, 30) == U("2026-10-24 23:30"));
    assert_true(when_uk_to_utc(2026, 10, 25, 1, 30) == U("2026-10-25 00:30"));
    assert_true(when_uk_to_utc(2026, 10, 25, 2, 0) == U("2026-10-25 02:00"));
    /* round trip for every hour over a year, away from the changes */
    for (long long t = U("2026-01-01 00:00"); t < U("2027-01-01 00:00"); t += 3600) {
        int off = when_uk_offset(t);
        time_t lt = (time_t)(t + off);
        struct tm tm;
        gmtime_r(&lt, &tm);
        long long back =
            when_uk_to_utc(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min);
        if (back != t && !(t >= U("2026-10-25 01:00") && t < U("2026-10-25 02:00")))
            fail_msg("round trip failed at %lld", t);
    }
}

/* ---- bank holidays ---- */

struct bh {
    int y, m, d;
};

/* gov.uk, England and Wales */
static const struct bh holidays_2025_2027[] = {
    {2025, 1, 1},   {2025, 4, 18},  {2025, 4, 21},  {2025, 5, 5},   {2025, 5, 26},  {2025, 8, 25},
    {2025, 12, 25}, {2025, 12, 26}, {2026, 1, 1},   {2026, 4, 3},   {2026, 4, 6},   {2026, 5, 4},
    {2026, 5, 25},  {2026, 8, 31},  {2026, 12, 25}, {2026, 12, 28}, {2027, 1, 1},   {2027, 3, 26},
    {2027, 3, 29},  {2027, 5, 3},   {2027, 5, 31},  {2027, 8, 30},  {2027, 12, 27}, {2027, 12, 28},
};

static bool listed(const struct bh *list, size_t n, int y, int m, int d)
{
    for (size_t i = 0; i < n; i++)
        if (list[i].y == y && list[i].m == m && list[i].d == d)
            return true;
    return false;
}

static void test_bank_holidays(void **state)
{
    (void)state;
    size_t n = sizeof holidays_2025_2027 / sizeof holidays_2025_2027[0];
    /* every day of the three years: holiday exactly when gov.uk lists it */
    for (long long t = U("2025-01-01 12:00"); t < U("2028-01-01 00:00"); t += 86400) {
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        int y = tm.tm_year + 1900, m = tm.tm_mon + 1, d = tm.tm_mday;
        if (when_is_bank_holiday(y, m, d, NULL) != listed(holidays_2025_2027, n, y, m, d))
            fail_msg("%04d-%02d-%02d: bank holiday %d", y, m, d,
                     when_is_bank_holiday(y, m, d, NULL));
    }
    /* substitute days in other years */
    assert_true(when_is_bank_holiday(2022, 1, 3, NULL)); /* 1 Jan on Saturday */
    assert_false(when_is_bank_holiday(2022, 1, 1, NULL));
    assert_true(when_is_bank_holiday(2023, 1, 2, NULL));   /* 1 Jan on Sunday */
    assert_true(when_is_bank_holiday(2020, 12, 28, NULL)); /* Christmas Friday: Boxing Monday */
    assert_false(when_is_bank_holiday(2020, 12, 26, NULL));
    assert_true(when_is_bank_holiday(2021, 12, 27, NULL)); /* Christmas Saturday */
    assert_true(when_is_bank_holiday(2021, 12, 28, NULL));
    assert_true(when_is_bank_holiday(2022, 12, 26, NULL)); /* Christmas Sunday */
    assert_true(when_is_bank_holiday(2022, 12, 27, NULL));
    assert_false(when_is_bank_holiday(2022, 12, 25, NULL)); /* a Sunday, not the holiday itself */
    /* Easter: Good Friday and Easter Monday in other years */
    assert_true(when_is_bank_holiday(2024, 3, 29, NULL) && when_is_bank_holiday(2024, 4, 1, NULL));
    assert_true(when_is_bank_holiday(2019, 4, 19, NULL) && when_is_bank_holiday(2019, 4, 22, NULL));
    assert_true(when_is_bank_holiday(2038, 4, 23, NULL) && when_is_bank_holiday(2038, 4, 26, NULL));
    /* proclaimed one-offs */
    assert_true(when_is_bank_holiday(2023, 5, 8, NULL));
    assert_true(when_is_bank_holiday(2022, 6, 2, NULL) && when_is_bank_holiday(2022, 6, 3, NULL));
    assert_false(when_is_bank_holiday(2022, 5, 30, NULL));
    assert_true(when_is_bank_holiday(2020, 5, 8, NULL));
    assert_false(when_is_bank_holiday(2020, 5, 4, NULL));
    /* extra holidays from BANK_HOLIDAYS */
    static const char *const extra[] = {"2026-12-24", "2026-12-31", NULL};
    struct when_hours h = {540, 1080, 0x3e, extra};
    assert_true(when_is_bank_holiday(2026, 12, 24, &h));
    assert_true(when_is_bank_holiday(2026, 12, 31, &h));
    assert_false(when_is_bank_holiday(2026, 12, 24, NULL));
    assert_false(when_is_bank_holiday(2026, 12, 23, &h));
    /* nonsense dates */
    assert_false(when_is_bank_holiday(2026, 13, 1, NULL));
    assert_false(when_is_bank_holiday(2026, 2, 30, NULL));
}

/* ---- business hours ---- */

struct srow {
    const char *t;    /* UTC */
    const char *want; /* next slot, UTC */
};

static void check_slots(const struct when_hours *h, const struct srow *rows, size_t n)
{
    char got[32], want[32];
    for (size_t i = 0; i < n; i++) {
        long long t = U(rows[i].t), s = when_next_slot(t, h);
        when_format_utc(s, got, sizeof got);
        when_format_utc(U(rows[i].want), want, sizeof want);
        if (strcmp(got, want))
            fail_msg("next slot after %s = %s, want %s", rows[i].t, got, want);
        assert_true(when_in_hours(s, h));
        assert_int_equal(when_in_hours(t, h), s == t);
    }
}

static void test_next_slot(void **state)
{
    (void)state;
    struct when_hours h = {540, 1080, 0x3e, NULL}; /* Mon-Fri 09:00-18:00 */
    static const struct srow rows[] = {
        {"2026-11-24 10:00", "2026-11-24 10:00"}, /* Tue, open */
        {"2026-11-24 09:00", "2026-11-24 09:00"}, /* opening minute is in */
        {"2026-11-24 17:59", "2026-11-24 17:59"},
        {"2026-11-24 18:00", "2026-11-25 09:00"}, /* closing time is out */
        {"2026-11-25 07:00", "2026-11-25 09:00"}, /* early: same day */
        {"2026-11-27 19:00", "2026-11-30 09:00"}, /* Fri evening: Monday */
        {"2026-11-28 12:00", "2026-11-30 09:00"}, /* Saturday */
        {"2026-12-24 17:30", "2026-12-24 17:30"},
        {"2026-12-24 18:30", "2026-12-29 09:00"}, /* 25 Fri, weekend, 28 Boxing substitute */
        {"2026-04-02 17:00", "2026-04-07 08:00"}, /* 18:00 BST Thu: Easter; Tue 09:00 BST */
        {"2026-03-27 18:30", "2026-03-30 08:00"}, /* across spring change: 09:00 BST */
        {"2026-10-23 17:30", "2026-10-26 09:00"}, /* 18:30 BST Fri: Mon 09:00 GMT */
        {"2026-07-01 07:59", "2026-07-01 08:00"}, /* 08:59 BST: opens at 09:00 BST */
        {"2026-07-01 08:00", "2026-07-01 08:00"},
        {"2026-07-01 16:59", "2026-07-01 16:59"}, /* 17:59 BST */
        {"2026-07-01 17:00", "2026-07-02 08:00"}, /* 18:00 BST: closed */
        {"2026-12-31 20:00", "2027-01-04 09:00"}, /* Fri 1 Jan holiday, weekend: Monday */
    };
    check_slots(&h, rows, sizeof rows / sizeof rows[0]);

    /* Mon, Wed, Fri only, with an extra holiday */
    static const char *const extra[] = {"2026-11-25", NULL};
    struct when_hours h2 = {600, 960, (1 << 1) | (1 << 3) | (1 << 5), extra};
    static const struct srow rows2[] = {
        {"2026-11-24 11:00", "2026-11-27 10:00"}, /* Tue closed, Wed holiday: Fri */
        {"2026-11-27 15:59", "2026-11-27 15:59"},
        {"2026-11-27 16:00", "2026-11-30 10:00"},
    };
    check_slots(&h2, rows2, sizeof rows2 / sizeof rows2[0]);
}

static void test_hours_from_cfg(void **state)
{
    (void)state;
    struct cfg c;
    struct when_hours h;
    static const char *const kv[] = {"BUSINESS_HOURS=08:30-17:00", "BUSINESS_DAYS=Mon-Sat",
                                     "BANK_HOLIDAYS=2026-11-28,2026-12-24", NULL};
    vt_cfg(&c, kv);
    when_hours_from_cfg(&c, &h);
    assert_int_equal(h.open_min, 510);
    assert_int_equal(h.close_min, 1020);
    assert_int_equal(h.days_mask, 0x7e);
    assert_true(when_is_bank_holiday(2026, 11, 28, &h));
    assert_true(when_is_bank_holiday(2026, 12, 24, &h));
    assert_false(when_is_bank_holiday(2026, 11, 27, &h));
    /* Fri 17:00 closed, Sat 28 is an extra holiday, Sunday closed: Monday 08:30 */
    assert_true(when_next_slot(U("2026-11-27 17:00"), &h) == U("2026-11-30 08:30"));
    assert_true(when_next_slot(U("2026-11-21 12:00"), &h) ==
                U("2026-11-21 12:00")); /* a Saturday */
    cfg_free(&c);

    /* defaults: Mon-Fri 09:00-18:00, no extra holidays */
    static const char *const none[] = {NULL};
    vt_cfg(&c, none);
    when_hours_from_cfg(&c, &h);
    assert_int_equal(h.open_min, 540);
    assert_int_equal(h.close_min, 1080);
    assert_int_equal(h.days_mask, 0x3e);
    assert_true(h.extra_holidays == NULL || h.extra_holidays[0] == NULL);
    cfg_free(&c);
}

/* ---- formatting ---- */

static void test_format(void **state)
{
    (void)state;
    static const struct {
        const char *t, *want;
    } rows[] = {
        {"2026-11-25 15:00", "Wednesday 25 November at 3pm"},
        {"2026-11-25 15:30", "Wednesday 25 November at 3:30pm"},
        {"2026-11-25 09:05", "Wednesday 25 November at 9:05am"},
        {"2026-11-25 12:00", "Wednesday 25 November at midday"},
        {"2026-11-25 12:45", "Wednesday 25 November at 12:45pm"},
        {"2026-11-25 00:00", "Wednesday 25 November at midnight"},
        {"2026-11-25 00:30", "Wednesday 25 November at 12:30am"},
        {"2026-07-01 14:30", "Wednesday 1 July at 3:30pm"}, /* BST */
        {"2026-07-01 23:30", "Thursday 2 July at 12:30am"}, /* next local day */
        {"2026-03-29 08:00", "Sunday 29 March at 9am"},
        {"2026-10-25 09:00", "Sunday 25 October at 9am"},
    };
    char out[64];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        when_format_spoken(U(rows[i].t), out, sizeof out);
        assert_string_equal(out, rows[i].want);
    }
    /* truncation is safe */
    char small[8];
    when_format_spoken(U("2026-11-25 15:00"), small, sizeof small);
    assert_string_equal(small, "Wednesd");
    when_format_utc(U("2026-11-25 15:04:05"), out, sizeof out);
    assert_string_equal(out, "2026-11-25 15:04:05");
    when_format_utc(0, out, sizeof out);
    assert_string_equal(out, "1970-01-01 00:00:00");
    /* parse then speak: what the agent reads back */
    long long t;
    assert_int_equal(when_parse("tomorrow at 3pm", U(TUE), &t, NULL), 0);
    when_format_spoken(t, out, sizeof out);
    assert_string_equal(out, "Wednesday 25 November at 3pm");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phrases),   cmocka_unit_test(test_parse_edges),
        cmocka_unit_test(test_uk_offset), cmocka_unit_test(test_bank_holidays),
        cmocka_unit_test(test_next_slot), cmocka_unit_test(test_hours_from_cfg),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
