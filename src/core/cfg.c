/*
 * cfg.c - the configuration table, .env parsing, validation.
 *
 * Owns: struct cfg's strings. One static table names every variable with its
 * type, default and bounds, so adding a variable is one row. Lookup order
 * per variable: AWS secret > environment > .env file > default.
 * Runs on the main thread before anything else starts.
 */
#include "core/cfg.h"

#include "core/aws.h"
#include "core/err.h"
#include "core/log.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LOG_MODULE "cfg"

enum vtype { V_STR, V_INT, V_BOOL, V_ENV, V_PROV, V_SSL, V_RATE, V_LIST, V_HOURS, V_DAYS, V_LOGF, V_LOGL };

struct var {
    const char *name;
    enum vtype type;
    size_t off;
    const char *def;   /* default as text, NULL = "" / 0 */
    int min, max;      /* V_INT bounds; V_LIST: max entries via off of count in min */
};

#define O(f) offsetof(struct cfg, f)

static const struct var vars[] = {
    {"APP_ENV", V_ENV, O(app_env), "development", 0, 0},
    {"PORT", V_INT, O(port), "8080", 1, 65535},
    {"PUBLIC_URL", V_STR, O(public_url), NULL, 0, 0},
    {"LOG_FORMAT", V_LOGF, O(log_json), "text", 0, 0},
    {"LOG_LEVEL", V_LOGL, O(log_level), "info", 0, 0},
    {"WORKERS", V_INT, O(workers), "4", 1, 256},
    {"WORK_QUEUE_MAX", V_INT, O(queue_max), "256", 1, 100000},
    {"DRAIN_SECONDS", V_INT, O(drain_seconds), "30", 0, 3600},
    {"ACTIONS_API_TOKEN", V_STR, O(actions_api_token), NULL, 0, 0},
    {"MAX_TOOL_CALLS", V_INT, O(max_tool_calls), "30", 1, 1000},
    {"INSTRUCTIONS_FILE", V_STR, O(instructions_file), NULL, 0, 0},

    {"DB_PATH", V_STR, O(db_path), "data/voice-ws.db", 0, 0},
    {"DB_HOST", V_STR, O(db_host), NULL, 0, 0},
    {"DB_PORT", V_INT, O(db_port), "3306", 1, 65535},
    {"DB_USER", V_STR, O(db_user), NULL, 0, 0},
    {"DB_PASSWORD", V_STR, O(db_password), NULL, 0, 0},
    {"DB_NAME", V_STR, O(db_name), "voiceagent", 0, 0},
    {"DB_POOL_SIZE", V_INT, O(db_pool_size), "8", 1, 512},
    {"DB_POOL_WAIT_MS", V_INT, O(db_pool_wait_ms), "2000", 1, 60000},
    {"DB_CONNECT_TIMEOUT", V_INT, O(db_connect_timeout_s), "3", 1, 120},
    {"DB_QUERY_TIMEOUT", V_INT, O(db_query_timeout_s), "5", 1, 600},
    {"DB_SSL_MODE", V_SSL, O(db_ssl_mode), "disabled", 0, 0},
    {"DB_SSL_CA", V_STR, O(db_ssl_ca), NULL, 0, 0},

    {"TWILIO_ACCOUNT_SID", V_STR, O(twilio_account_sid), NULL, 0, 0},
    {"TWILIO_AUTH_TOKEN", V_STR, O(twilio_auth_token), NULL, 0, 0},
    {"TWILIO_FROM_NUMBER", V_STR, O(twilio_from_number), NULL, 0, 0},
    {"TWILIO_API_BASE", V_STR, O(twilio_api_base), "https://api.twilio.com", 0, 0},
    {"ENABLE_REAL_SMS", V_BOOL, O(enable_real_sms), "false", 0, 0},
    {"SMS_TEST_NUMBERS", V_LIST, O(sms_test_numbers), NULL, O(n_sms_test_numbers),
     CFG_LIST_MAX - 1},   /* one slot stays NULL: the list is NULL-terminated */
    {"SMS_RATE_LIMIT", V_RATE, O(sms_rate), "3/600", 0, 0},
    {"SMS_GLOBAL_RATE_LIMIT", V_RATE, O(sms_global_rate), "100/60", 0, 0},
    {"SMS_TIMEOUT", V_INT, O(sms_timeout_s), "10", 1, 120},

    {"SMTP_URL", V_STR, O(smtp_url), NULL, 0, 0},
    {"SMTP_USER", V_STR, O(smtp_user), NULL, 0, 0},
    {"SMTP_PASSWORD", V_STR, O(smtp_password), NULL, 0, 0},
    {"SMTP_FROM", V_STR, O(smtp_from), NULL, 0, 0},

    {"MAIN_APP_URL", V_STR, O(main_app_url), "https://portal.example.co.uk", 0, 0},
    {"REVIEW_URL", V_STR, O(review_url), NULL, 0, 0},
    {"COMPANY_NAME", V_STR, O(company_name), "Resolve My Claim", 0, 0},
    {"LINK_SECRET", V_STR, O(link_secret), NULL, 0, 0},
    {"LINK_TTL_SECONDS", V_INT, O(link_ttl_s), "86400", 60, 30 * 86400},
    {"STREAM_TOKEN_TTL_SECONDS", V_INT, O(stream_token_ttl_s), "120", 5, 3600},

    {"BUSINESS_HOURS", V_HOURS, O(bh_open_min), "09:00-18:00", 0, 0},
    {"BUSINESS_DAYS", V_DAYS, O(bh_days_mask), "Mon-Fri", 0, 0},
    {"BANK_HOLIDAYS", V_LIST, O(bank_holidays), NULL, O(n_bank_holidays), 63},

    {"VOICE_PROVIDER", V_PROV, O(voice_provider), "auto", 0, 0},
    {"OPENAI_API_KEY", V_STR, O(openai_api_key), NULL, 0, 0},
    {"OPENAI_MODEL", V_STR, O(openai_model), "gpt-realtime-2", 0, 0},
    {"OPENAI_VOICE", V_STR, O(openai_voice), "marin", 0, 0},
    {"OPENAI_REALTIME_URL", V_STR, O(openai_realtime_url), "wss://api.openai.com/v1/realtime", 0, 0},
    {"GEMINI_API_KEY", V_STR, O(gemini_api_key), NULL, 0, 0},
    {"GEMINI_MODEL", V_STR, O(gemini_model), "gemini-3.8-live", 0, 0},
    {"GEMINI_VOICE", V_STR, O(gemini_voice), "Kore", 0, 0},
    {"GEMINI_API_VERSION", V_STR, O(gemini_api_version), "v1beta", 0, 0},
    {"GEMINI_LIVE_URL", V_STR, O(gemini_live_url), NULL, 0, 0},
    {"GEMINI_AFFECTIVE_DIALOG", V_BOOL, O(gemini_affective_dialog), "false", 0, 0},
    {"GEMINI_INPUT_RATE", V_INT, O(gemini_input_rate), "16000", 8000, 16000},
    {"GEMINI_KEY_IN", V_STR, O(gemini_key_in), "query", 0, 0},
    {"PROVIDER_CONNECT_TIMEOUT_MS", V_INT, O(provider_connect_timeout_ms), "5000", 100, 60000},

    {"AWS_SECRET_ID", V_STR, O(aws_secret_id), NULL, 0, 0},
    {"AWS_REGION", V_STR, O(aws_region), NULL, 0, 0},
    {"AWS_ACCESS_KEY_ID", V_STR, O(aws_access_key_id), NULL, 0, 0},
    {"AWS_SECRET_ACCESS_KEY", V_STR, O(aws_secret_access_key), NULL, 0, 0},
    {"AWS_SESSION_TOKEN", V_STR, O(aws_session_token), NULL, 0, 0},
    {"AWS_ENDPOINT_URL", V_STR, O(aws_endpoint_url), NULL, 0, 0},
};

#define NVARS ((int)(sizeof vars / sizeof vars[0]))

/* ---- sources ---- */

struct src {
    const char *(*get)(const char *name, void *arg);
    void *arg;
    json_t *dotenv;    /* object name -> string, from ./.env */
    json_t *secrets;   /* object name -> string, from AWS */
};

static const char *src_get(const struct src *s, const char *name)
{
    const char *v;
    json_t *j;

    if (s->secrets && (j = json_object_get(s->secrets, name)) && json_is_string(j))
        return json_string_value(j);
    if ((v = s->get(name, s->arg)))
        return v;
    if (s->dotenv && (j = json_object_get(s->dotenv, name)) && json_is_string(j))
        return json_string_value(j);
    return NULL;
}

static char *trim(char *s)
{
    char *end;
    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

/*
 * Parse ./.env: KEY=VALUE lines, optional `export `, '#' comments, quotes
 * stripped. A line longer than the buffer is skipped whole (with a warning
 * naming its number, never its text), so its tail is not read as a line.
 */
static json_t *dotenv_read(const char *path)
{
    FILE *f = fopen(path, "r");
    json_t *o;
    char line[8192];
    int lineno = 0;

    if (!f)
        return NULL;
    o = json_object();
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n' && !feof(f)) {
            int ch;
            while ((ch = fgetc(f)) != EOF && ch != '\n')
                ;
            log_warn("%s line %d is longer than %zu bytes: ignored", path, lineno,
                     sizeof line - 2);
            continue;
        }
        char *k = trim(line), *eq, *v;
        if (!*k || *k == '#')
            continue;
        if (strncmp(k, "export ", 7) == 0)
            k = trim(k + 7);
        if (!(eq = strchr(k, '=')))
            continue;
        *eq = '\0';
        k = trim(k);
        v = trim(eq + 1);
        size_t n = strlen(v);
        if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
            v[n - 1] = '\0';
            v++;
        } else {
            char *hash = strstr(v, " #");
            if (hash)
                *trim(hash) = '\0', v = trim(v);
        }
        json_t *js = json_string(v);
        if (js)
            json_object_set_new(o, k, js);
        else
            log_warn("%s line %d: value of %s is not UTF-8: ignored", path, lineno, k);
    }
    fclose(f);
    return o;
}

/* ---- value parsers ---- */

static int bad(struct err *e, const char *name, const char *val, const char *want)
{
    if (!val)
        val = "";
    bool secretish = strstr(name, "TOKEN") || strstr(name, "PASSWORD") || strstr(name, "KEY") ||
                     strstr(name, "SECRET") || (strstr(val, "://") && strchr(val, '@'));
    /* A URL's query string may carry a key (Gemini's ?key=, token=, sig=): never repeated. */
    int shown = (int)strlen(val);
    const char *q = strstr(val, "://") ? strpbrk(val, "?#") : NULL;
    if (q)
        shown = (int)(q - val);
    return err_set(e, ERR_CONFIG, NULL, "%s: invalid value '%.*s%s' (expected %s)", name,
                   secretish ? 8 : shown, secretish ? "<hidden>" : val,
                   !secretish && q ? "?<hidden>" : "", want);
}

static int parse_int(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s)
        return -1;
    while (isspace((unsigned char)*end))
        end++;
    if (*end)
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off", ""};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, yes[i]) == 0)
            return *out = true, 0;
    for (int i = 0; i < 5; i++)
        if (strcasecmp(s, no[i]) == 0)
            return *out = false, 0;
    return -1;
}

static int parse_hhmm(const char *s, int *min)
{
    int h, m, n = 0;
    if (sscanf(s, "%d:%d%n", &h, &m, &n) != 2 || h < 0 || h > 24 || m < 0 || m > 59 ||
        (h == 24 && m))
        return -1;
    *min = h * 60 + m;
    return n;
}

/* "Mon", "Monday", "Tues", "Thurs" ... (leading/trailing blanks and a '-' end allowed). */
static int day_index(const char *s)
{
    static const char *const d[] = {"sunday",   "monday", "tuesday", "wednesday",
                                    "thursday", "friday", "saturday"};
    static const char *const alt[] = {"tues", "weds", "thur", "thurs"};
    static const int alt_d[] = {2, 3, 4, 4};
    char w[16];
    size_t n = 0;

    while (isspace((unsigned char)*s))
        s++;
    while (isalpha((unsigned char)s[n]) && n < sizeof w - 1)
        w[n] = (char)tolower((unsigned char)s[n]), n++;
    w[n] = '\0';
    for (const char *t = s + n; *t && *t != '-'; t++)
        if (!isspace((unsigned char)*t))
            return -1;
    for (int i = 0; i < 7; i++)
        if ((n == 3 && !strncmp(w, d[i], 3)) || !strcmp(w, d[i]))
            return i;
    for (int i = 0; i < 4; i++)
        if (!strcmp(w, alt[i]))
            return alt_d[i];
    return -1;
}

/* "Mon-Fri", "Mon,Wed,Fri", "Mon-Sat" -> bit mask (bit 0 = Sunday). */
static int parse_days(const char *s, int *mask)
{
    char buf[128], *save = NULL;
    if (strlen(s) >= sizeof buf)
        return -1;
    snprintf(buf, sizeof buf, "%s", s);
    *mask = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *t = trim(tok), *dash = strchr(t, '-');
        int a = day_index(t), b = dash ? day_index(trim(dash + 1)) : a;
        if (a < 0 || b < 0)
            return -1;
        for (int i = a;; i = (i + 1) % 7) {
            *mask |= 1 << i;
            if (i == b)
                break;
        }
    }
    return *mask ? 0 : -1;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        abort();
    return d;
}

static int set_list(struct cfg *c, const struct var *v, const char *val, struct err *e)
{
    char **arr = (char **)((char *)c + v->off);
    int *n = (int *)((char *)c + v->min);
    char buf[2048], *save = NULL;

    if (strlen(val) >= sizeof buf)
        return bad(e, v->name, "<too long>", "a shorter comma-separated list");
    snprintf(buf, sizeof buf, "%s", val);
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *t = trim(tok);
        if (!*t)
            continue;
        if (*n >= v->max) {
            char want[64];
            snprintf(want, sizeof want, "at most %d comma-separated entries", v->max);
            return bad(e, v->name, "<too many entries>", want);
        }
        arr[(*n)++] = xstrdup(t);
    }
    return 0;
}

static int set_var(struct cfg *c, const struct var *v, const char *val, struct err *e)
{
    void *p = (char *)c + v->off;
    long l;
    bool b;

    switch (v->type) {
    case V_STR:
        *(char **)p = xstrdup(val);
        return 0;
    case V_INT:
        if (parse_int(val, &l) || l < v->min || l > v->max) {
            char want[64];
            snprintf(want, sizeof want, "a whole number from %d to %d", v->min, v->max);
            return bad(e, v->name, val, want);
        }
        *(int *)p = (int)l;
        return 0;
    case V_BOOL:
        if (parse_bool(val, &b))
            return bad(e, v->name, val, "true or false");
        *(bool *)p = b;
        return 0;
    case V_ENV:
        if (!strcasecmp(val, "development") || !strcasecmp(val, "dev") || !strcasecmp(val, "test"))
            *(enum cfg_env *)p = CFG_ENV_DEVELOPMENT;
        else if (!strcasecmp(val, "production") || !strcasecmp(val, "prod"))
            *(enum cfg_env *)p = CFG_ENV_PRODUCTION;
        else
            return bad(e, v->name, val, "development or production");
        return 0;
    case V_PROV:
        if (!strcasecmp(val, "hume"))
            return err_set(e, ERR_CONFIG, NULL,
                           "%s=hume: Hume retired its EVI API on 2026-11-13, so it can no longer "
                           "be used; set %s=gemini (Google Gemini Live) instead",
                           v->name, v->name);
        if (!strcasecmp(val, "openai"))
            *(enum cfg_provider *)p = CFG_PROV_OPENAI;
        else if (!strcasecmp(val, "gemini"))
            *(enum cfg_provider *)p = CFG_PROV_GEMINI;
        else if (!strcasecmp(val, "auto") || !*val)
            *(enum cfg_provider *)p = CFG_PROV_AUTO;
        else
            return bad(e, v->name, val, "openai, gemini or auto");
        return 0;
    case V_SSL:
        if (!strcasecmp(val, "disabled") || !strcasecmp(val, "disable") || !*val)
            *(enum cfg_ssl *)p = CFG_SSL_DISABLED;
        else if (!strcasecmp(val, "required") || !strcasecmp(val, "require"))
            *(enum cfg_ssl *)p = CFG_SSL_REQUIRED;
        else if (!strcasecmp(val, "verify") || !strcasecmp(val, "verify_identity"))
            *(enum cfg_ssl *)p = CFG_SSL_VERIFY;
        else
            return bad(e, v->name, val, "disabled, required or verify");
        return 0;
    case V_RATE: {
        struct cfg_rate *r = p;
        int cnt, win, n = 0;
        if (!strcasecmp(val, "off") || !strcmp(val, "0")) {
            r->count = 0, r->window_s = 0;
            return 0;
        }
        if (sscanf(val, "%d/%d%n", &cnt, &win, &n) != 2 || val[n] || cnt < 1 || win < 1 ||
            win > 7 * 86400)
            return bad(e, v->name, val, "COUNT/SECONDS such as 3/600, or off");
        r->count = cnt, r->window_s = win;
        return 0;
    }
    case V_LIST:
        return set_list(c, v, val, e);
    case V_HOURS: {
        int a, z = 0, n = parse_hhmm(val, &a), n2 = -1;
        if (n >= 0 && val[n] == '-')
            n2 = parse_hhmm(val + n + 1, &z);
        if (n < 0 || n2 < 0 || val[n + 1 + n2] || z <= a)
            return bad(e, v->name, val, "HH:MM-HH:MM such as 09:00-18:00");
        c->bh_open_min = a, c->bh_close_min = z;
        return 0;
    }
    case V_DAYS:
        if (parse_days(val, (int *)p))
            return bad(e, v->name, val, "days such as Mon-Fri or Mon,Wed,Fri");
        return 0;
    case V_LOGF:
        if (!strcasecmp(val, "text"))
            *(bool *)p = false;
        else if (!strcasecmp(val, "json"))
            *(bool *)p = true;
        else
            return bad(e, v->name, val, "text or json");
        return 0;
    case V_LOGL: {
        int lv = log_level_parse(val);
        if (lv < 0)
            return bad(e, v->name, val, "debug, info, warn or error");
        *(int *)p = lv;
        return 0;
    }
    }
    return err_set(e, ERR_INTERNAL, NULL, "cfg: unknown type for %s", v->name);
}

/* ---- cross-field validation ---- */

static bool is_e164(const char *s)
{
    size_t n = strlen(s);
    if (n < 8 || n > 16 || s[0] != '+' || s[1] == '0')
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* http(s)://, at most 200 bytes (a link with its token must fit the texts and the action's
 * buffers whole: a cut link is a wrong link), no spaces or control characters. */
static bool is_http_url(const char *s)
{
    if (strncmp(s, "https://", 8) && strncmp(s, "http://", 7))
        return false;
    if (strlen(s) > 200)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

static int validate(struct cfg *c, const struct src *s, struct err *e)
{
    const char *rv = src_get(s, "REQUIRE_VERIFICATION");
    bool b;

    c->require_verification = (c->app_env == CFG_ENV_PRODUCTION);
    if (rv && *rv) {
        if (parse_bool(rv, &b))
            return bad(e, "REQUIRE_VERIFICATION", rv, "true or false");
        c->require_verification = b;
    }
    for (int i = 0; i < c->n_sms_test_numbers; i++)
        if (!is_e164(c->sms_test_numbers[i]))
            return bad(e, "SMS_TEST_NUMBERS", c->sms_test_numbers[i],
                       "comma-separated E.164 numbers such as +447700900123");
    for (int i = 0; i < c->n_bank_holidays; i++) {
        static const int md[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int y, m, d, n = 0;
        if (sscanf(c->bank_holidays[i], "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 ||
            c->bank_holidays[i][n] || y < 1970 || m < 1 || m > 12 || d < 1 || d > md[m - 1] ||
            (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)))
            return bad(e, "BANK_HOLIDAYS", c->bank_holidays[i], "YYYY-MM-DD dates");
        char canon[40];   /* "2026-1-5" -> "2026-01-05": when.c compares this text */
        snprintf(canon, sizeof canon, "%04d-%02d-%02d", y, m, d);
        free(c->bank_holidays[i]);
        c->bank_holidays[i] = xstrdup(canon);
    }
    if (*c->twilio_from_number && !is_e164(c->twilio_from_number) &&
        strlen(c->twilio_from_number) > 11)
        return bad(e, "TWILIO_FROM_NUMBER", c->twilio_from_number,
                   "an E.164 number or an alphanumeric sender ID of up to 11 characters");
    if (*c->twilio_account_sid &&
        (strncmp(c->twilio_account_sid, "AC", 2) || strlen(c->twilio_account_sid) != 34))
        return bad(e, "TWILIO_ACCOUNT_SID", c->twilio_account_sid, "AC followed by 32 hex digits");
    if (!is_http_url(c->twilio_api_base))
        return bad(e, "TWILIO_API_BASE", c->twilio_api_base, "an http(s):// URL");
    if (*c->main_app_url && !is_http_url(c->main_app_url))
        return bad(e, "MAIN_APP_URL", c->main_app_url,
                   "an http(s):// URL of at most 200 characters, without spaces");
    if (*c->review_url && !is_http_url(c->review_url))
        return bad(e, "REVIEW_URL", c->review_url,
                   "an http(s):// URL of at most 200 characters, without spaces");
    if (*c->public_url && strncmp(c->public_url, "https://", 8) && strncmp(c->public_url, "http://", 7))
        return bad(e, "PUBLIC_URL", c->public_url, "an https:// URL");
    if (*c->public_url) {   /* no trailing slash: paths are appended */
        size_t n = strlen(c->public_url);
        while (n > 0 && c->public_url[n - 1] == '/')
            c->public_url[--n] = '\0';
    }
    if (strncmp(c->openai_realtime_url, "wss://", 6) && strncmp(c->openai_realtime_url, "ws://", 5))
        return bad(e, "OPENAI_REALTIME_URL", c->openai_realtime_url, "a wss:// URL");
    if (*c->gemini_live_url && strncmp(c->gemini_live_url, "wss://", 6) &&
        strncmp(c->gemini_live_url, "ws://", 5))
        return bad(e, "GEMINI_LIVE_URL", c->gemini_live_url, "a wss:// URL");
    if (c->gemini_input_rate != 8000 && c->gemini_input_rate != 16000)
        return bad(e, "GEMINI_INPUT_RATE", src_get(s, "GEMINI_INPUT_RATE"), "8000 or 16000");
    if (strcmp(c->gemini_key_in, "query") && strcmp(c->gemini_key_in, "header"))
        return bad(e, "GEMINI_KEY_IN", c->gemini_key_in, "query or header");
    if (*c->smtp_url && strncmp(c->smtp_url, "smtp://", 7) && strncmp(c->smtp_url, "smtps://", 8))
        return bad(e, "SMTP_URL", c->smtp_url, "an smtp:// or smtps:// URL");
    if (*c->smtp_url && !strchr(c->smtp_from, '@'))
        return err_set(e, ERR_CONFIG, NULL,
                       "SMTP_FROM must be a sender address such as claims@example.co.uk when "
                       "SMTP_URL is set");
    if (c->enable_real_sms && (!*c->twilio_account_sid || !*c->twilio_auth_token ||
                               !*c->twilio_from_number))
        return err_set(e, ERR_CONFIG, NULL,
                       "ENABLE_REAL_SMS=true needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and "
                       "TWILIO_FROM_NUMBER");
    if (c->app_env == CFG_ENV_PRODUCTION) {
        static const char *const need[] = {"TWILIO_AUTH_TOKEN", "LINK_SECRET"};
        const char *vals[] = {c->twilio_auth_token, c->link_secret};
        for (int i = 0; i < 2; i++)
            if (!*vals[i])
                return err_set(e, ERR_CONFIG, NULL,
                               "%s is required when APP_ENV=production (refusing an unsafe "
                               "configuration)",
                               need[i]);
        if (strlen(c->link_secret) < 32)
            return err_set(e, ERR_CONFIG, NULL,
                           "LINK_SECRET must be at least 32 characters when APP_ENV=production");
        if (*c->public_url && strncmp(c->public_url, "https://", 8))
            return bad(e, "PUBLIC_URL", c->public_url, "an https:// URL in production");
    }
    return 0;
}

/* ---- loading ---- */

static const char *env_get(const char *name, void *arg)
{
    (void)arg;
    return getenv(name);
}

static int fetch_secrets(struct src *s, struct err *e)
{
    const char *id = src_get(s, "AWS_SECRET_ID");
    const char *region = src_get(s, "AWS_REGION");
    struct aws_creds cr;

    if (!id || !*id)
        return 0;
    char arn_region[40] = "";
    if (!region || !*region)
        region = src_get(s, "AWS_DEFAULT_REGION");
    if ((!region || !*region) && !strncmp(id, "arn:", 4)) {
        /* arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME carries its region */
        const char *p = id;
        for (int field = 0; field < 3 && p; field++)
            p = strchr(p, ':'), p = p ? p + 1 : NULL;
        const char *end = p ? strchr(p, ':') : NULL;
        if (end && end > p && (size_t)(end - p) < sizeof arn_region) {
            memcpy(arn_region, p, (size_t)(end - p));
            region = arn_region;
        }
    }
    cr.secret_id = id;
    cr.region = region ? region : "";
    cr.access_key_id = src_get(s, "AWS_ACCESS_KEY_ID");
    cr.secret_key = src_get(s, "AWS_SECRET_ACCESS_KEY");
    cr.session_token = src_get(s, "AWS_SESSION_TOKEN");
    cr.endpoint_url = src_get(s, "AWS_ENDPOINT_URL");
    if (!*cr.region)
        return err_set(e, ERR_CONFIG, NULL,
                       "AWS_SECRET_ID is set but AWS_REGION is not (and the id is not an ARN)");
    if (!cr.access_key_id || !*cr.access_key_id || !cr.secret_key || !*cr.secret_key)
        return err_set(e, ERR_CONFIG, NULL,
                       "AWS_SECRET_ID is set but AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not");
    if (!cr.session_token)
        cr.session_token = "";
    if (!cr.endpoint_url)
        cr.endpoint_url = "";
    int rc = aws_secret_fetch(&cr, &s->secrets, e);
    if (!rc)
        log_info("loaded %zu values from AWS secret %s", json_object_size(s->secrets), id);
    return rc;
}

/* dotenv: path of a .env file to read under the lookup, or NULL. */
static int load(struct cfg *c, const char *(*get)(const char *name, void *arg), void *arg,
                const char *dotenv, struct err *e)
{
    struct src s = {get, arg, dotenv ? dotenv_read(dotenv) : NULL, NULL};
    int rc;

    memset(c, 0, sizeof *c);
    rc = fetch_secrets(&s, e);
    for (int i = 0; !rc && i < NVARS; i++) {
        const char *val = src_get(&s, vars[i].name);
        if (!val || (!*val && vars[i].def))
            val = vars[i].def ? vars[i].def : "";
        rc = set_var(c, &vars[i], val, e);
    }
    if (!rc && !*c->gemini_live_url) {
        char url[512];
        snprintf(url, sizeof url,
                 "wss://generativelanguage.googleapis.com/ws/"
                 "google.ai.generativelanguage.%s.GenerativeService.BidiGenerateContent",
                 c->gemini_api_version);
        free(c->gemini_live_url);
        c->gemini_live_url = xstrdup(url);
    }
    if (!rc)
        rc = validate(c, &s, e);
    json_decref(s.dotenv);
    json_decref(s.secrets);
    if (rc)
        cfg_free(c);
    return rc;
}

/*
 * The explicit lookup replaces both the environment and ./.env: tests get
 * exactly the values they list, whatever directory they run in.
 */
int cfg_load_from(struct cfg *c, const char *(*get)(const char *name, void *arg), void *arg,
                  struct err *e)
{
    return load(c, get, arg, NULL, e);
}

int cfg_load(struct cfg *c, struct err *e)
{
    return load(c, env_get, NULL, ".env", e);
}

void cfg_free(struct cfg *c)
{
    for (int i = 0; i < NVARS; i++) {
        void *p = (char *)c + vars[i].off;
        if (vars[i].type == V_STR) {
            free(*(char **)p);
            *(char **)p = NULL;
        } else if (vars[i].type == V_LIST) {
            char **arr = p;
            int *n = (int *)((char *)c + vars[i].min);
            for (int k = 0; k < *n; k++)
                free(arr[k]), arr[k] = NULL;
            *n = 0;
        }
    }
}

const char *cfg_provider_name(enum cfg_provider p)
{
    return p == CFG_PROV_OPENAI ? "openai" : p == CFG_PROV_GEMINI ? "gemini" : "auto";
}

bool cfg_is_test_number(const struct cfg *c, const char *e164)
{
    for (int i = 0; i < c->n_sms_test_numbers; i++)
        if (!strcmp(c->sms_test_numbers[i], e164))
            return true;
    return false;
}
