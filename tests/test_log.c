/*
 * test_log.c - the logger: masking rows (what must be masked, what must
 * not), text and JSON line formats read back from a real file descriptor,
 * one line per call whatever the message holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/log.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_MODULE "test_log"

struct mrow {
    const char *in, *want;
};

static const struct mrow mask_rows[] = {
    /* phones in every form, inside sentences */
    {"Caller +447700900001 connected", "Caller +44*******001 connected"},
    {"from 07700 900001.", "from *******001."},
    {"call +44 (0)7700 900001 now", "call +44*******001 now"},
    {"number 447700900001 found", "number *******001 found"},
    {"dial 0044 7700 900001", "dial *******001"},
    {"dial 0044 (0)7700 900001", "dial *******001"},
    {"bare 7700900001 here", "bare *******001 here"},
    {"+44 7700-900-001", "+44*******001"},
    {"(07700) 900001", "*******001"},
    {"07700.900.001", "*******001"},
    {"London 020 7946 0123.", "London *******123."},
    {"+44 20 7946 0123", "+44*******123"},
    {"US caller +1 415 555 2671", "US caller +1*******671"},
    {"+14155552671", "+1*******671"},
    {"+353871234567", "+35*******567"},
    {"tel:+447700900001", "tel:+44*******001"},
    {"(+44) 7700 900001", "+44*******001"},
    {"From=%2B447700900001&To=%2B442079460123&Body=hi",
     "From=%2B44*******001&To=%2B44*******123&Body=hi"},
    {"two numbers 07700900001 07700900002", "two numbers *******001 *******002"},
    {"07700 900001 07700 900002", "*******001 *******002"},
    {"+447700900001,+447700900002", "+44*******001,+44*******002"},
    /* separators a model or a phone keyboard produces: tab, no-break and narrow spaces,
     * Unicode dashes (review: these left the whole number in clear) */
    {"07700\t900001", "*******001"},
    {"07700\r\n900001", "*******001"},
    {"07700\xc2\xa0" "900001", "*******001"},
    {"+44\xe2\x80\xaf" "7700\xe2\x80\xaf" "900001", "+44*******001"},
    {"07700\xe2\x80\x93" "900001", "*******001"},
    {"+44\xe2\x80\x89" "7700\xe2\x80\x91" "900\xe2\x80\x91" "001", "+44*******001"},
    {"07700\xe3\x80\x80" "900001", "*******001"},
    {"my number is oh seven seven double oh nine double oh double oh one thanks",
     "my number is *******001 thanks"},
    {"Zero seven seven zero zero, nine zero zero, zero zero one", "*******001"},
    {"it's oh 7700 nine double oh double oh one", "it's *******001"},
    {"07700 nine double oh double oh one.", "*******001."},
    /* emails */
    {"Email sarah@example.com and james.patel@example.co.uk",
     "Email s***@example.com and j***@example.co.uk"},
    {"<sarah@example.com>", "<s***@example.com>"},
    /* accented (RFC 6531) addresses, as a model transcribes them (review: passed in clear) */
    {"ren\xc3\xa9" "e@example.com", "r***@example.com"},
    {"\xc3\xa9ric@example.com", "\xc3\xa9***@example.com"},
    {"to chlo\xc3\xab@m\xc3\xbcller.de now", "to c***@m\xc3\xbcller.de now"},
    {"r\xc3\xa9sum\xc3\xa9 sent", "r\xc3\xa9sum\xc3\xa9 sent"},
    {"mailto:sarah@example.com", "mailto:s***@example.com"},
    /* JSON text */
    {"{\"phone_number\":\"07700900001\",\"email\":\"sarah@example.com\"}",
     "{\"phone_number\":\"*******001\",\"email\":\"s***@example.com\"}"},
    {"{\"from\":\"+447700900001\",\"to\":\"+447700900099\"}",
     "{\"from\":\"+44*******001\",\"to\":\"+44*******099\"}"},
    {"args={\"phone_number\":\"07700 900001\",\"claim_reference\":\"RMC-1001\"}",
     "args={\"phone_number\":\"*******001\",\"claim_reference\":\"RMC-1001\"}"},
    /* things that must NOT be masked */
    {"2026-11-24T10:00:00.123Z started", "2026-11-24T10:00:00.123Z started"},
    {"callback_time 2026-11-25 15:00:00 UTC", "callback_time 2026-11-25 15:00:00 UTC"},
    {"at 2026-01-05 09:30:00", "at 2026-01-05 09:30:00"},
    {"call CA11111111111111111111111111111111 ended",
     "call CA11111111111111111111111111111111 ended"},
    {"MessageSid SM0123456789abcdef0123456789abcdef",
     "MessageSid SM0123456789abcdef0123456789abcdef"},
    {"streamSid MZ18ad3ab5a668481ce02b83e7395059f0",
     "streamSid MZ18ad3ab5a668481ce02b83e7395059f0"},
    {"AccountSid AC00000000000000000000000000000000",
     "AccountSid AC00000000000000000000000000000000"},
    {"\xe2\x9c\x85 [VOICE-ACTION] Completed check_claim_details (12 ms)",
     "\xe2\x9c\x85 [VOICE-ACTION] Completed check_claim_details (12 ms)"},
    {"execution_time_ms=1234", "execution_time_ms=1234"},
    {"claims RMC-1001 and RMC-2001, RMC1002", "claims RMC-1001 and RMC-2001, RMC1002"},
    {"RMC one zero zero one", "RMC one zero zero one"},
    {"expires 1764000000", "expires 1764000000"},
    {"ts_ms 1764000000123", "ts_ms 1764000000123"},
    {"took 0.000123456789 s", "took 0.000123456789 s"},
    {"port 8080, pid 12345, 127.0.0.1:8080", "port 8080, pid 12345, 127.0.0.1:8080"},
    {"request 550e8400-e29b-41d4-a716-446655440000",
     "request 550e8400-e29b-41d4-a716-446655440000"},
    {"sequenceNumber 123456 chunk 7 ts 2380", "sequenceNumber 123456 chunk 7 ts 2380"},
    {"sha 1234567890abcdef1234567890abcdef", "sha 1234567890abcdef1234567890abcdef"},
    {"id 12345678901234567890", "id 12345678901234567890"},
    {"version 4.1.6, cmocka 1.1.5", "version 4.1.6, cmocka 1.1.5"},
    {"44 apples and 7 pears", "44 apples and 7 pears"},
    {"oh no, one or two", "oh no, one or two"},
    {"user@localhost", "user@localhost"},
    {"", ""},
};

static void test_mask_rows(void **state)
{
    (void)state;
    int failures = 0;
    char out[512];
    for (size_t i = 0; i < sizeof mask_rows / sizeof mask_rows[0]; i++) {
        size_t n = log_mask_text(mask_rows[i].in, out, sizeof out);
        if (strcmp(out, mask_rows[i].want) || n != strlen(out)) {
            fprintf(stderr, "mask(\"%s\")\n   = \"%s\"\n want \"%s\"\n", mask_rows[i].in, out,
                    mask_rows[i].want);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_mask_bounds(void **state)
{
    (void)state;
    char out[8], big[6000], bigout[6000];
    /* always NUL-terminated, never past outsz */
    assert_int_equal(log_mask_text("+447700900001 and more", out, sizeof out), 7);
    assert_string_equal(out, "+44****");
    assert_int_equal(log_mask_text("abc", out, 0), 0);
    assert_int_equal(log_mask_text(NULL, out, sizeof out), 0);
    assert_string_equal(out, "");
    /* a long text of phone numbers: every one masked, nothing of the middle survives */
    size_t o = 0;
    while (o + 20 < sizeof big) {
        memcpy(big + o, "07700 900123, ", 14);
        o += 14;
    }
    big[o] = '\0';
    log_mask_text(big, bigout, sizeof bigout);
    assert_null(strstr(bigout, "7700"));
    assert_null(strstr(bigout, "900"));
    assert_non_null(strstr(bigout, "*******123, *******123"));
    /* hostile shapes stay linear: a 4 KB line of "a.a.a..." masks in well under 5 ms */
    static char hostile[4096], hout[8192];
    for (size_t i = 0; i + 2 < sizeof hostile; i += 2)
        memcpy(hostile + i, "a.", 2);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int k = 0; k < 10; k++)
        log_mask_text(hostile, hout, sizeof hout);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms =
        ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) / 10;
    if (ms > 5.0)
        fail_msg("masking a hostile 4 KB line took %.2f ms", ms);
    /* hostile bytes: no crash, no over-read */
    for (int c = 1; c < 256; c++) {
        char s[8] = {'+', '4', (char)c, '0', '7', (char)c, '%', 0};
        log_mask_text(s, out, sizeof out);
        assert_true(strlen(out) < sizeof out);
    }
}

static const struct mrow phone_rows[] = {
    {"+447700900001", "+44*******001"},
    {"07700900001", "*******001"},
    {"+14155552671", "+1*******671"},
    {"+442079460123", "+44*******123"},
    {"anonymous", "anonymous"},
    {"withheld", "withheld"},
    {"", ""},
    {"12345", "*****"},
    {"+44770", "+*****"},
    {"client:alice", "client:alice"},
};

static void test_mask_phone(void **state)
{
    (void)state;
    char out[32];
    for (size_t i = 0; i < sizeof phone_rows / sizeof phone_rows[0]; i++) {
        log_mask_phone(phone_rows[i].in, out, sizeof out);
        if (strcmp(out, phone_rows[i].want))
            fail_msg("log_mask_phone(%s) = %s, want %s", phone_rows[i].in, out, phone_rows[i].want);
    }
    log_mask_phone(NULL, out, sizeof out);
    assert_string_equal(out, "");
}

/* ---- writing ---- */

static char *capture_path;
static int capture_fd = -1;

static void capture_start(void)
{
    char tmpl[] = "/tmp/vws-test-log-XXXXXX";
    capture_fd = mkstemp(tmpl);
    assert_true(capture_fd >= 0);
    capture_path = strdup(tmpl);
    log_set_fd(capture_fd);
}

/* Stop capturing; returns the file's text (caller frees). */
static char *capture_end(void)
{
    log_set_fd(2);
    off_t n = lseek(capture_fd, 0, SEEK_END);
    char *buf = calloc(1, (size_t)n + 1);
    assert_int_equal(pread(capture_fd, buf, (size_t)n, 0), n);
    close(capture_fd);
    unlink(capture_path);
    free(capture_path);
    capture_fd = -1;
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_text_lines(void **state)
{
    (void)state;
    log_setup(LOG_INFO, false);
    capture_start();
    log_info("caller %s email %s claim %s", "+447700900001", "sarah@example.com", "RMC-1001");
    log_debug("not shown at info");
    log_warn("forged\n2026-11-24T10:00:00.000Z error [cfg] fake line\rand\ttab");
    log_error("bad utf-8 \xff\xfe here and control \x01 byte");
    char *txt = capture_end();

    assert_int_equal(count_lines(txt), 3);
    assert_non_null(strstr(txt, " info  [test_log] caller +44*******001 email s***@example.com "
                                "claim RMC-1001\n"));
    assert_null(strstr(txt, "7700900001"));
    assert_null(strstr(txt, "sarah@"));
    assert_null(strstr(txt, "not shown"));
    assert_non_null(strstr(txt, " warn  [test_log] forged\\n2026-11-24T10:00:00.000Z error [cfg] "
                                "fake line\\rand\\ttab\n"));
    assert_non_null(strstr(txt, "bad utf-8 ?? here and control ? byte\n"));
    /* each line starts with an ISO timestamp */
    const char *line = txt;
    while (*line) {
        int y, mo, d, h, mi, sec, ms;
        assert_int_equal(
            sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &y, &mo, &d, &h, &mi, &sec, &ms), 7);
        line = strchr(line, '\n') + 1;
    }
    free(txt);

    /* levels */
    log_setup(LOG_WARN, false);
    capture_start();
    log_info("hidden");
    log_warn("shown");
    txt = capture_end();
    assert_null(strstr(txt, "hidden"));
    assert_non_null(strstr(txt, "shown"));
    free(txt);
    log_setup(LOG_OFF, false);
    capture_start();
    log_error("nothing at all");
    txt = capture_end();
    assert_string_equal(txt, "");
    free(txt);
    log_setup(LOG_INFO, false);
}

static json_t *parse_line(const char *line, size_t len)
{
    json_error_t je;
    json_t *j = json_loadb(line, len, 0, &je);
    if (!j)
        fail_msg("not JSON: %.*s (%s)", (int)len, line, je.text);
    return j;
}

static void test_json_lines(void **state)
{
    (void)state;
    char big[5000];
    memset(big, '\x01', sizeof big - 1); /* escapes to \u0001: six times longer */
    big[sizeof big - 1] = '\0';

    log_setup(LOG_DEBUG, true);
    capture_start();
    log_info("caller %s asked for \"RMC-1001\" at 2026-11-24T10:00:00Z", "07700 900001");
    log_debug("email sarah@example.com\nsecond line");
    log_warn("bad utf-8 \xc3\x28 and \xed\xa0\x80 surrogate, \xf0\x9f\x93\xb1 ok");
    log_error("%s", big);
    log_info("\xf0\x9f\x94\xa7 [VOICE-ACTION] Executing schedule_callback");
    char *txt = capture_end();
    log_setup(LOG_INFO, false);

    assert_int_equal(count_lines(txt), 5);
    const char *line = txt;
    int k = 0;
    while (*line) {
        const char *nl = strchr(line, '\n');
        json_t *j = parse_line(line, (size_t)(nl - line));
        const char *ts = json_string_value(json_object_get(j, "ts"));
        const char *lv = json_string_value(json_object_get(j, "level"));
        const char *mod = json_string_value(json_object_get(j, "module"));
        const char *msg = json_string_value(json_object_get(j, "msg"));
        assert_non_null(ts);
        assert_int_equal(strlen(ts), 24);
        assert_int_equal(ts[23], 'Z');
        assert_string_equal(mod, "test_log");
        assert_non_null(msg);
        switch (k) {
        case 0:
            assert_string_equal(lv, "info");
            assert_string_equal(msg, "caller *******001 asked for \"RMC-1001\" at "
                                     "2026-11-24T10:00:00Z");
            break;
        case 1:
            assert_string_equal(lv, "debug");
            assert_string_equal(msg, "email s***@example.com\nsecond line");
            break;
        case 2:
            assert_string_equal(lv, "warn");
            assert_string_equal(msg, "bad utf-8 ?( and ??? surrogate, \xf0\x9f\x93\xb1 ok");
            break;
        case 3:
            assert_string_equal(lv, "error");
            assert_true(strlen(msg) > 100); /* shortened to fit, still one valid line */
            assert_true(msg[0] == '\x01');
            break;
        case 4:
            assert_string_equal(msg, "\xf0\x9f\x94\xa7 [VOICE-ACTION] Executing schedule_callback");
            break;
        }
        json_decref(j);
        line = nl + 1;
        k++;
    }
    assert_null(strstr(txt, "900001"));
    assert_null(strstr(txt, "sarah@"));
    free(txt);
}

static void test_level_parse(void **state)
{
    (void)state;
    assert_int_equal(log_level_parse("debug"), LOG_DEBUG);
    assert_int_equal(log_level_parse("INFO"), LOG_INFO);
    assert_int_equal(log_level_parse("warn"), LOG_WARN);
    assert_int_equal(log_level_parse("warning"), LOG_WARN);
    assert_int_equal(log_level_parse("error"), LOG_ERROR);
    assert_int_equal(log_level_parse("off"), LOG_OFF);
    assert_int_equal(log_level_parse("loud"), -1);
    assert_int_equal(log_level_parse(""), -1);
    assert_int_equal(log_level_parse(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_rows),  cmocka_unit_test(test_mask_bounds),
        cmocka_unit_test(test_mask_phone), cmocka_unit_test(test_text_lines),
        cmocka_unit_test(test_json_lines), cmocka_unit_test(test_level_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
