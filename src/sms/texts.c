/*
 * texts.c - message wording (see texts.h).
 *
 * Each builder lists its wordings from fullest to shortest and keeps the
 * first that fits one SMS segment; if none does (a very long URL), the
 * shortest is used and the caller sees the real segment count. Pure; any
 * thread.
 */
#include "sms/texts.h"

#include <stdio.h>
#include <string.h>

#include "sms/sms.h"

#define NAME_MAX_CHARS 24

/* First word of a first name, bounded; "" when none. */
static void first_word(const char *name, char *out, size_t outsz)
{
    size_t o = 0;
    const char *p = name ? name : "";
    while (*p == ' ' || *p == '\t')
        p++;
    while (*p && *p != ' ' && *p != '\t' && *p != ',' && o + 1 < outsz && o < NAME_MAX_CHARS)
        out[o++] = *p++;
    /* Never cut a UTF-8 sequence in half. */
    while (o > 0 && ((unsigned char)out[o - 1] & 0xC0) == 0x80 && *p &&
           ((unsigned char)*p & 0xC0) == 0x80)
        o--;
    while (o > 0 && ((unsigned char)out[o - 1] & 0xC0) == 0xC0 && *p &&
           ((unsigned char)*p & 0xC0) == 0x80)
        o--;
    out[o] = '\0';
}

static void greeting(char *g, size_t gsz, const char *first_name)
{
    char fn[64];
    first_word(first_name, fn, sizeof fn);
    if (fn[0])
        snprintf(g, gsz, "Hi %s, ", fn);
    else
        snprintf(g, gsz, "Hi, ");
}

static const char *company_or_us(const char *company)
{
    return company && *company ? company : "we";
}

/* Keep the first candidate that fits one segment; else the last. */
static int pick(char *out, size_t outsz, char cand[][SMS_TEXT_MAX], int n)
{
    int segs = 0;
    for (int i = 0; i < n; i++) {
        if (!cand[i][0])
            continue;
        snprintf(out, outsz, "%s", cand[i]);
        segs = sms_segments(out, NULL);
        if (segs <= 1)
            break;
    }
    return segs;
}

int sms_text_callback(char *out, size_t outsz, const char *company, const char *first_name,
                      const char *when_text)
{
    char g[80], c[4][SMS_TEXT_MAX];
    const char *co = company_or_us(company);
    const char *when = when_text && *when_text ? when_text : "the time we agreed";
    greeting(g, sizeof g, first_name);
    snprintf(c[0], sizeof c[0], "%s%s will call you back on %s. Thank you.", g, co, when);
    snprintf(c[1], sizeof c[1], "%s%s will call you back on %s.", g, co, when);
    snprintf(c[2], sizeof c[2], "%swe'll call you back on %s.", g, when);
    snprintf(c[3], sizeof c[3], "We'll call you back on %s.", when);
    return pick(out, outsz, c, 4);
}

static const char *link_noun(const char *link_type)
{
    if (link_type && !strcmp(link_type, "documents"))
        return "document upload";
    if (link_type && !strcmp(link_type, "review"))
        return "review";
    return "portal";
}

int sms_text_link(char *out, size_t outsz, const char *company, const char *first_name,
                  const char *link_type, const char *url, int ttl_hours)
{
    char g[80], valid[40] = "", c[5][SMS_TEXT_MAX];
    const char *co = company_or_us(company), *noun = link_noun(link_type);
    const char *u = url ? url : "";
    bool review = link_type && !strcmp(link_type, "review");
    greeting(g, sizeof g, first_name);
    if (ttl_hours > 0 && !review)
        snprintf(valid, sizeof valid, " (valid for %d hour%s)", ttl_hours,
                 ttl_hours == 1 ? "" : "s");
    if (review) {
        snprintf(c[0], sizeof c[0], "%sthank you for choosing %s. We'd love your review: %s", g, co,
                 u);
        snprintf(c[1], sizeof c[1], "%splease review %s: %s", g, co, u);
        snprintf(c[2], sizeof c[2], "Please review us: %s", u);
        c[3][0] = c[4][0] = '\0';
        return pick(out, outsz, c, 3);
    }
    snprintf(c[0], sizeof c[0], "%shere is your secure %s %s link%s: %s Please don't share it.", g,
             co, noun, valid, u);
    snprintf(c[1], sizeof c[1], "%shere is your secure %s %s link%s: %s", g, co, noun, valid, u);
    snprintf(c[2], sizeof c[2], "%syour secure %s link%s: %s", g, noun, valid, u);
    snprintf(c[3], sizeof c[3], "%syour secure %s link: %s", g, noun, u);
    snprintf(c[4], sizeof c[4], "Your %s link: %s", noun, u);
    return pick(out, outsz, c, 5);
}

void sms_text_link_email(char *subject, size_t subjsz, char *body, size_t bodysz,
                         const char *company, const char *first_name, const char *link_type,
                         const char *url, int ttl_hours)
{
    char fn[64], valid[64] = "";
    const char *co = company && *company ? company : "Our team";
    const char *noun = link_noun(link_type);
    bool review = link_type && !strcmp(link_type, "review");
    first_word(first_name, fn, sizeof fn);
    if (ttl_hours > 0 && !review)
        snprintf(valid, sizeof valid, "It works once and expires in %d hour%s.\n", ttl_hours,
                 ttl_hours == 1 ? "" : "s");
    if (review) {
        snprintf(subject, subjsz, "How did we do? %s", co);
        snprintf(body, bodysz,
                 "Hi%s%s,\n\nThank you for choosing %s. We'd be grateful if you could leave us a "
                 "review:\n\n%s\n\nKind regards,\n%s\n",
                 fn[0] ? " " : "", fn, co, url ? url : "", co);
        return;
    }
    snprintf(subject, subjsz, "Your secure %s link from %s", noun, co);
    snprintf(body, bodysz,
             "Hi%s%s,\n\nHere is your secure %s link, as requested on your call:\n\n%s\n\n%s"
             "Please don't share it. If you didn't ask for this, you can ignore this email.\n\n"
             "Kind regards,\n%s\n",
             fn[0] ? " " : "", fn, noun, url ? url : "", valid, co);
}
