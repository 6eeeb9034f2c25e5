/*
 * cfg.h - configuration, read once at start from the environment and a
 * .env file in the working directory (the environment wins), optionally
 * overridden by an AWS Secrets Manager secret (AWS_SECRET_ID).
 *
 * Every variable is parsed and validated in cfg_load(); a wrong value stops
 * the start with a message naming the variable. After cfg_load() the struct
 * is read-only and may be shared by every thread. Strings are owned by the
 * struct (freed by cfg_free) and never NULL: unset means "".
 */
#ifndef VWS_CFG_H
#define VWS_CFG_H

#include <stdbool.h>

struct err;

enum cfg_env { CFG_ENV_DEVELOPMENT = 0, CFG_ENV_PRODUCTION = 1 };
enum cfg_provider { CFG_PROV_OPENAI = 0, CFG_PROV_GEMINI = 1, CFG_PROV_AUTO = 2 };
enum cfg_ssl { CFG_SSL_DISABLED = 0, CFG_SSL_REQUIRED = 1, CFG_SSL_VERIFY = 2 };

#define CFG_LIST_MAX 16

struct cfg_rate {
    int count;       /* messages allowed ... */
    int window_s;    /* ... per this many seconds; count 0 = unlimited */
};

struct cfg {
    /* app */
    enum cfg_env app_env;          /* APP_ENV development|production */
    int port;                      /* PORT, default 8080 */
    char *public_url;              /* PUBLIC_URL https base Twilio reaches us at, no trailing / */
    bool log_json;                 /* LOG_FORMAT text|json */
    int log_level;                 /* LOG_LEVEL debug|info|warn|error (enum log_level) */
    int workers;                   /* WORKERS worker threads, default 4 */
    int queue_max;                 /* WORK_QUEUE_MAX bounded job queue, default 256 */
    int drain_seconds;             /* DRAIN_SECONDS, default 30 */
    char *actions_api_token;       /* ACTIONS_API_TOKEN enables POST /actions/NAME */
    bool require_verification;     /* REQUIRE_VERIFICATION, default: true in production */
    int max_tool_calls;            /* MAX_TOOL_CALLS per call, default 30 */
    char *instructions_file;       /* INSTRUCTIONS_FILE overrides the default agent prompt */

    /* database */
    char *db_path;                 /* DB_PATH SQLite file, default data/voice-ws.db */
    char *db_host;                 /* DB_HOST set => MySQL backend */
    int db_port;                   /* DB_PORT, default 3306 */
    char *db_user, *db_password, *db_name;  /* DB_USER DB_PASSWORD DB_NAME */
    int db_pool_size;              /* DB_POOL_SIZE, default 8 */
    int db_pool_wait_ms;           /* DB_POOL_WAIT_MS bound on waiting for a connection, 2000 */
    int db_connect_timeout_s;      /* DB_CONNECT_TIMEOUT, default 3 */
    int db_query_timeout_s;        /* DB_QUERY_TIMEOUT read/write timeout, default 5 */
    enum cfg_ssl db_ssl_mode;      /* DB_SSL_MODE disabled|required|verify */
    char *db_ssl_ca;               /* DB_SSL_CA path to CA bundle */

    /* twilio + sms */
    char *twilio_account_sid, *twilio_auth_token, *twilio_from_number;
    char *twilio_api_base;         /* TWILIO_API_BASE, default https://api.twilio.com */
    bool enable_real_sms;          /* ENABLE_REAL_SMS, default false */
    char *sms_test_numbers[CFG_LIST_MAX]; /* SMS_TEST_NUMBERS, E.164, NULL-terminated */
    int n_sms_test_numbers;
    struct cfg_rate sms_rate;      /* SMS_RATE_LIMIT per recipient, default 3/600 */
    struct cfg_rate sms_global_rate; /* SMS_GLOBAL_RATE_LIMIT all recipients, default 100/60 */
    int sms_timeout_s;             /* SMS_TIMEOUT total per HTTP attempt, default 10 */

    /* email (SMTP through libcurl) */
    char *smtp_url;                /* SMTP_URL smtp(s)://host:port; unset => email off */
    char *smtp_user, *smtp_password, *smtp_from;

    /* links */
    char *main_app_url;            /* MAIN_APP_URL */
    char *review_url;              /* REVIEW_URL */
    char *company_name;            /* COMPANY_NAME */
    char *link_secret;             /* LINK_SECRET HMAC key for stream tokens */
    int link_ttl_s;                /* LINK_TTL_SECONDS, default 86400 */
    int stream_token_ttl_s;        /* STREAM_TOKEN_TTL_SECONDS, default 120 */

    /* business hours (Europe/London) */
    int bh_open_min, bh_close_min; /* BUSINESS_HOURS "09:00-18:00" minutes after midnight */
    int bh_days_mask;              /* BUSINESS_DAYS "Mon-Fri": bit 0 = Sunday ... bit 6 = Saturday */
    char *bank_holidays[64];       /* BANK_HOLIDAYS extra YYYY-MM-DD, NULL-terminated */
    int n_bank_holidays;

    /* providers */
    enum cfg_provider voice_provider; /* VOICE_PROVIDER / serve --provider */
    char *openai_api_key, *openai_model, *openai_voice, *openai_realtime_url;
    char *gemini_api_key, *gemini_model, *gemini_voice, *gemini_live_url, *gemini_api_version;
    bool gemini_affective_dialog;  /* GEMINI_AFFECTIVE_DIALOG */
    int gemini_input_rate;         /* GEMINI_INPUT_RATE caller audio to Gemini: 16000|8000 Hz */
    char *gemini_key_in;           /* GEMINI_KEY_IN where the key goes: "query" (?key=) | "header" */
    int provider_connect_timeout_ms; /* PROVIDER_CONNECT_TIMEOUT_MS before failover, 5000 */

    /* AWS Secrets Manager */
    char *aws_secret_id, *aws_region, *aws_access_key_id, *aws_secret_access_key;
    char *aws_session_token, *aws_endpoint_url;
};

/*
 * Fill c from .env (in the working directory, if present), the environment
 * (wins over .env) and, when AWS_SECRET_ID is set, the secret (wins over
 * both). Validates everything; on a wrong value returns ERR_CONFIG with
 * e->detail naming the variable. On failure c is left freed (cfg_free done).
 */
int cfg_load(struct cfg *c, struct err *e);

/* Like cfg_load but from an explicit lookup (tests): get(name) returns value or NULL. */
int cfg_load_from(struct cfg *c, const char *(*get)(const char *name, void *arg), void *arg,
                  struct err *e);

void cfg_free(struct cfg *c);

/* "openai" / "gemini" / "auto". */
const char *cfg_provider_name(enum cfg_provider p);

/* True when n (E.164) is in SMS_TEST_NUMBERS. */
bool cfg_is_test_number(const struct cfg *c, const char *e164);

#endif
