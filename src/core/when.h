/*
 * when.h - times for callbacks, in Europe/London.
 *
 * Parses ISO 8601 and the phrases callers use ("tomorrow at 3pm", "in two
 * hours", "Monday morning", "half past four on Friday", "next Tuesday at
 * 10") relative to now, converts between UK local time and UTC (GMT/BST
 * changes on the last Sundays of March and October at 01:00 UTC), computes
 * England and Wales bank holidays (Easter included, substitute days), and
 * finds the next business-hours slot. Pure functions, any thread.
 */
#ifndef VWS_WHEN_H
#define VWS_WHEN_H

#include <stdbool.h>
#include <stddef.h>

struct cfg;

struct when_hours {
    int open_min, close_min;      /* minutes after local midnight, e.g. 540, 1080 */
    int days_mask;                /* bit 0 = Sunday ... bit 6 = Saturday */
    const char *const *extra_holidays; /* "YYYY-MM-DD", NULL-terminated, may be NULL */
};

/* From BUSINESS_HOURS / BUSINESS_DAYS / BANK_HOLIDAYS. */
void when_hours_from_cfg(const struct cfg *c, struct when_hours *h);

/*
 * Parse text relative to now (Unix seconds). On success *out is Unix
 * seconds (UTC) and *explicit_time tells whether a clock time was given
 * ("tomorrow" alone gets a default time). Returns 0 or ERR_BAD_TIME.
 * Past times are NOT rejected here (the caller decides).
 */
int when_parse(const char *text, long long now, long long *out, bool *explicit_time);

/* UK local offset from UTC in seconds at instant t (0 or 3600). */
int when_uk_offset(long long t);
/* Local wall clock (y,m,d,H,M) in Europe/London to UTC Unix seconds (gaps resolved forward). */
long long when_uk_to_utc(int y, int mon, int d, int h, int min);

bool when_is_bank_holiday(int y, int mon, int d, const struct when_hours *h);
/* True when t is within business hours on a business day. */
bool when_in_hours(long long t, const struct when_hours *h);
/* t itself if in hours, else the next opening time after t. */
long long when_next_slot(long long t, const struct when_hours *h);

/* "Tuesday 25 November at 3:00pm" (UK local) for speech. */
void when_format_spoken(long long t, char *out, size_t outsz);
/* "YYYY-MM-DD HH:MM:SS" UTC. out >= 20. */
void when_format_utc(long long t, char *out, size_t outsz);

#endif
