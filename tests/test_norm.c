/*
 * test_norm.c - phone and claim reference normalisation, table-driven.
 *
 * Every row is one thing a caller might say or type; NULL expected means the
 * input must be refused with the module's error code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/norm.h"

#include <stdio.h>
#include <string.h>

struct row {
    const char *in;
    const char *want; /* NULL = refused */
};

static const struct row phone_rows[] = {
    /* typed UK mobile forms */
    {"07700 900001", "+447700900001"},
    {"07700900001", "+447700900001"},
    {"+44 (0)7700 900001", "+447700900001"},
    {"+44(0)7700900001", "+447700900001"},
    {"447700900001", "+447700900001"},
    {"0044 7700 900001", "+447700900001"},
    {"00447700900001", "+447700900001"},
    {"7700900001", "+447700900001"},
    {"+44 7700-900-001", "+447700900001"},
    {"(07700) 900001", "+447700900001"},
    {"+447700900001", "+447700900001"},
    {"+44 7700 900 001", "+447700900001"},
    {"07700-900-001", "+447700900001"},
    {"07700.900.001", "+447700900001"},
    {" 07700 900001 ", "+447700900001"},
    {"077 0090 0001", "+447700900001"},
    {"+44 07700 900001", "+447700900001"},
    /* stray trunk zero after 44: dropped (twilio.md §5 rule 5), not refused */
    {"+4407700900001", "+447700900001"},
    {"4407700900001", "+447700900001"},
    {"004407700900001", "+447700900001"},
    /* spoken */
    {"oh seven seven double oh nine double oh double oh one", "+447700900001"},
    {"zero seven seven zero zero nine zero zero zero zero one", "+447700900001"},
    {"oh seven seven double zero nine treble oh one oh", "+447700900010"},
    {"oh seven seven double oh nine triple oh oh two", "+447700900002"},
    {"Oh Seven Seven Double Oh, Nine Double Oh, Double Oh One", "+447700900001"},
    {"plus four four seven seven double oh nine double oh double oh one", "+447700900001"},
    {"seven seven double oh nine double oh double oh one", "+447700900001"},
    {"oh 7700 nine double oh double oh one", "+447700900001"},
    {"double-oh four four seven seven double oh nine double oh double oh one", "+447700900001"},
    {"oh seven seven double 0 900 001", "+447700900001"},
    {"nought seven seven double nought nine double nought double nought one", "+447700900001"},
    /* landlines */
    {"020 7946 0123", "+442079460123"},
    {"(020) 7946 0123", "+442079460123"},
    {"+44 (0)20 7946 0123", "+442079460123"},
    {"+44 20 7946 0123", "+442079460123"},
    {"01632 960123", "+441632960123"},
    {"oh two oh seven nine four six oh one two three", "+442079460123"},
    {"016977 2345", "+44169772345"}, /* one of the few 9-digit national numbers */
    {"0800 123 456", "+44800123456"},
    /* international: kept as E.164 */
    {"+1 415 555 2671", "+14155552671"},
    {"+1 (415) 555-2671", "+14155552671"},
    {"001 415 555 2671", "+14155552671"},
    {"+33 1 23 45 67 89", "+33123456789"},
    {"+353 87 123 4567", "+353871234567"},
    /* refused */
    {"", NULL},
    {"   ", NULL},
    {"anonymous", NULL},
    {"Restricted", NULL},
    {"withheld", NULL},
    {"unknown", NULL},
    {"12345", NULL},
    {"999", NULL},
    {"0770090000", NULL},   /* 10 digits with a 0: one short */
    {"077009000012", NULL}, /* 12 digits with a 0: one too many */
    {"07700 9000o1x", NULL},
    {"07700 900abc", NULL},
    {"O7700 900001", NULL}, /* letter O glued to digits: a typo, not "oh" */
    {"call me on 07700 900001", NULL},
    {"07700 900001 ext 5", NULL},
    {"+44 7700 900001 9999999", NULL},
    {"+1234567890123456", NULL}, /* 16 digits: too long for E.164 */
    {"0770090000100000000000000000", NULL},
    {"+44", NULL},
    {"+", NULL},
    {"++447700900001", NULL},
    {"07700+900001", NULL},
    {"+44 4700 900001", NULL}, /* 04 is not allocated */
    {"+44 00 7700 900001", NULL},
    {"+0 7700 900001", NULL},
    {"oh seven seven double", NULL},
    {"double double seven", NULL},
    {"seven hundred", NULL},
    {"07700;900001", NULL},
    {"07700\x01"
     "900001",
     NULL},
    {"4155552671", NULL}, /* a US number without +1 is not assumed UK */
    {"2079460123", NULL}, /* only 7 is accepted without its trunk zero */
    {"44770090000", NULL},
    {"+44 770 090 000", NULL}, /* a mobile needs 10 national digits */
};

static void test_phone_rows(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof phone_rows / sizeof phone_rows[0]; i++) {
        const struct row *r = &phone_rows[i];
        char out[17] = "junk";
        int rc = norm_phone(r->in, out, sizeof out);
        if (r->want && (rc != 0 || strcmp(out, r->want))) {
            fprintf(stderr, "norm_phone(\"%s\") = %d \"%s\", want \"%s\"\n", r->in, rc, out,
                    r->want);
            failures++;
        } else if (!r->want && rc != ERR_INVALID_PHONE) {
            fprintf(stderr, "norm_phone(\"%s\") = %d \"%s\", want ERR_INVALID_PHONE\n", r->in, rc,
                    out);
            failures++;
        } else if (!r->want && out[0]) {
            fprintf(stderr, "norm_phone(\"%s\") refused but left \"%s\" in out\n", r->in, out);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_phone_edges(void **state)
{
    (void)state;
    char out[17], small[16];
    char big[400];

    assert_int_equal(norm_phone(NULL, out, sizeof out), ERR_INVALID_PHONE);
    /* out is documented as >= 17 bytes; smaller is refused rather than truncated */
    assert_int_equal(norm_phone("07700 900001", small, sizeof small), ERR_INVALID_PHONE);
    assert_int_equal(norm_phone("07700 900001", NULL, 17), ERR_INVALID_PHONE);
    /* very long inputs are refused without reading past a bound */
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "07700900001", 11);
    assert_int_equal(norm_phone(big, out, sizeof out), ERR_INVALID_PHONE);
    memset(big, '7', sizeof big - 1);
    assert_int_equal(norm_phone(big, out, sizeof out), ERR_INVALID_PHONE);
    /* the longest E.164 fits in 17 bytes exactly */
    assert_int_equal(norm_phone("+123456789012345", out, sizeof out), 0);
    assert_string_equal(out, "+123456789012345");
}

struct mrow {
    const char *e164;
    int mobile;
};

static const struct mrow mobile_rows[] = {
    {"+447700900001", 1},  {"+447123456789", 1}, {"+447512345678", 1}, {"+447912345678", 1},
    {"+447812345678", 1},  {"+447412345678", 1}, {"+447624123456", 1}, /* Isle of Man */
    {"+447012345678", 0},                                              /* 070 personal numbers */
    {"+447612345678", 0},                                              /* 076 pagers */
    {"+442079460123", 0},  {"+441632960123", 0}, {"+14155552671", 0},  {"+44770090000", 0},
    {"+4477009000011", 0}, {"07700900001", 0},   {"+44770090000a", 0}, {"", 0},
};

static void test_uk_mobile(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof mobile_rows / sizeof mobile_rows[0]; i++) {
        if (norm_is_uk_mobile(mobile_rows[i].e164) != mobile_rows[i].mobile)
            fail_msg("norm_is_uk_mobile(%s) != %d", mobile_rows[i].e164, mobile_rows[i].mobile);
    }
    assert_false(norm_is_uk_mobile(NULL));
}

static const struct row claim_rows[] = {
    {"rmc 1001", "RMC-1001"},
    {"RMC1001", "RMC-1001"},
    {"R M C dash 1001", "RMC-1001"},
    {"rmc-1001", "RMC-1001"},
    {"r.m.c. 1001", "RMC-1001"},
    {"RMC one zero zero one", "RMC-1001"},
    {"RMC-1001", "RMC-1001"},
    {"  RMC-1001  ", "RMC-1001"},
    {"RMC - 1001", "RMC-1001"},
    {"R.M.C.-1001", "RMC-1001"},
    {"rmc_1001", "RMC-1001"},
    {"R M C hyphen one oh oh one", "RMC-1001"},
    {"RMC dash one double oh one", "RMC-1001"},
    {"r m c 1 0 0 1", "RMC-1001"},
    {"RMC two oh oh one", "RMC-2001"},
    {"RMC-1002", "RMC-1002"},
    {"RMC 10 01", "RMC-1001"},
    {"RMC-12345", "RMC-12345"},
    {"RMC-123456", "RMC-123456"},
    {"RMC-0001", "RMC-0001"},
    {"Rmc 1001.", "RMC-1001"},
    {"RMC\t1001\n", "RMC-1001"},
    /* refused */
    {"", NULL},
    {"   ", NULL},
    {"ABC-1001", NULL},
    {"RMC-12", NULL},
    {"RMC-123", NULL},
    {"RMC-1234567", NULL},
    {"RMC-1001; DROP TABLE", NULL},
    {"RMC-1001'--", NULL},
    {"RMC-1001 OR 1=1", NULL},
    {"1001", NULL}, /* digits alone are not a reference (see norm.c) */
    {"one zero zero one", NULL},
    {"RMC", NULL},
    {"RMC-", NULL},
    {"RM-1001", NULL},
    {"RMCX-1001", NULL},
    {"RMC-10O1", NULL},      /* letter O glued to digits is no word */
    {"RMC-1001-2002", NULL}, /* two references: 8 digits */
    {"RMC double", NULL},
    {"RMC one zero zero one please", NULL},
    {"XRMC-1001", NULL},
};

static void test_claim_rows(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof claim_rows / sizeof claim_rows[0]; i++) {
        const struct row *r = &claim_rows[i];
        char out[16] = "junk";
        int rc = norm_claim_ref(r->in, out, sizeof out);
        if (r->want && (rc != 0 || strcmp(out, r->want))) {
            fprintf(stderr, "norm_claim_ref(\"%s\") = %d \"%s\", want \"%s\"\n", r->in, rc, out,
                    r->want);
            failures++;
        } else if (!r->want && rc != ERR_INVALID_CLAIM_REF) {
            fprintf(stderr, "norm_claim_ref(\"%s\") = %d \"%s\", want refusal\n", r->in, rc, out);
            failures++;
        } else if (!r->want && out[0]) {
            fprintf(stderr, "norm_claim_ref(\"%s\") refused but left \"%s\"\n", r->in, out);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_claim_edges(void **state)
{
    (void)state;
    char out[16], small[8], big[300];
    assert_int_equal(norm_claim_ref(NULL, out, sizeof out), ERR_INVALID_CLAIM_REF);
    assert_int_equal(norm_claim_ref("RMC-1001", small, sizeof small), ERR_INVALID_CLAIM_REF);
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "RMC-1001", 8);
    assert_int_equal(norm_claim_ref(big, out, sizeof out), ERR_INVALID_CLAIM_REF);
    /* the normalised form normalises to itself */
    assert_int_equal(norm_claim_ref("RMC-1001", out, sizeof out), 0);
    char again[16];
    assert_int_equal(norm_claim_ref(out, again, sizeof again), 0);
    assert_string_equal(again, out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phone_rows),  cmocka_unit_test(test_phone_edges),
        cmocka_unit_test(test_uk_mobile),   cmocka_unit_test(test_claim_rows),
        cmocka_unit_test(test_claim_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
