/*
 * action.h - the voice actions: registry, session identity, execution.
 *
 * One static table (registry.c) declares every action: name, description for
 * the voice model, JSON Schema of its parameters, flags and handler. The CLI,
 * the HTTP action endpoint, the OpenAI session and the Gemini session all
 * read it. act_execute() is the only entry point: it validates arguments
 * against the schema, enforces identity, runs the handler with a borrowed
 * database connection, measures execution_time_ms (monotonic), logs the
 * markers and writes exactly one voice_action_logs row.
 *
 * Threads: act_execute runs on a worker (or the CLI's main thread). A
 * struct act_session is shared by the jobs of one call; it locks itself.
 */
#ifndef VWS_ACTION_H
#define VWS_ACTION_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

#include "core/err.h"

struct cfg;
struct db;
struct db_pool;
struct sms;

enum act_flag {
    ACT_READS_DB = 1 << 0,
    ACT_WRITES_DB = 1 << 1,
    ACT_SENDS = 1 << 2,          /* sends SMS/email: side effect, exactly once per call */
    ACT_NEEDS_CALLER = 1 << 3,   /* needs caller_id level (a user on file for this call) */
    ACT_NEEDS_VERIFIED = 1 << 4, /* needs verified when REQUIRE_VERIFICATION=true */
    ACT_SIDE_EFFECT = 1 << 5,    /* inserts rows / sends: repeat-safe via the once cache */
};

enum act_id_level { ACT_ID_NONE = 0, ACT_ID_CALLER = 1, ACT_ID_VERIFIED = 2 };

struct act_once;                 /* exactly-once cache (opaque) */

#define ACT_CALL_SID_MAX 64      /* call_sid columns are VARCHAR(64); longer SIDs are cut */

struct act_session {             /* one per call (serve) or per CLI invocation */
    pthread_mutex_t mu;          /* guards the fields below */
    char caller[24];             /* E.164 from the signed From; "" = withheld/unknown */
    char call_sid[72];           /* Twilio CallSid, or "cli-<pid>" */
    char provider[16];           /* audit provider: cli | http | openai | gemini */
    long long user_id;           /* user found for the caller's own number, 0 = none */
    enum act_id_level level;
    int actions_count;           /* executions so far (audited ones) */
    int max_actions;             /* budget; 0 = unlimited */
    bool identified;             /* caller looked up already (act_session_identify or lazily) */
    struct act_once *once;
};

struct act_env {                 /* what every action may use; shared, read-only */
    const struct cfg *cfg;
    struct db_pool *pool;
    struct sms *sms;
};

/* What a handler gets and fills. */
struct act_call {
    const struct act_env *env;
    struct act_session *session;
    struct db *db;               /* borrowed connection for this execution */
    json_t *args;                /* validated against the schema (borrowed) */
    json_t *data;                /* envelope "data" object, created empty; handler adds */
    char message[480];           /* the sentence(s) for the agent; handler sets */
    struct err err;              /* on failure: code, say (spoken), detail (log) */
    long long user_id;           /* acting user, for the audit row */
    bool no_audit_args;          /* handler may set to avoid logging args (none do yet) */
};

typedef int act_handler_fn(struct act_call *c);   /* 0 ok, <0 ERR_* with c->err set */

struct act_def {
    const char *name;
    unsigned flags;              /* enum act_flag */
    const char *description;     /* written for the voice model */
    const char *schema;          /* JSON Schema (object) of the parameters */
    act_handler_fn *handler;     /* MUST */
    act_handler_fn *precheck;    /* MAY: configuration checks run before the identity checks
                                    (so "not configured" wins over "who are you?") */
};

/* ---- registry ---- */

const struct act_def *act_find(const char *name);
int act_count(void);
const struct act_def *act_at(int i);
/* Startup check: sorted unique names, handlers set, schemas parse. */
int act_registry_check(struct err *e);
/* Tool list, OpenAI function format [{type,name,description,parameters}]. Caller owns. */
json_t *act_tools_openai(void);
/* Gemini functionDeclarations (Google schema subset, upper-case types). Caller owns. */
json_t *act_tools_gemini(void);

/* ---- session ---- */

void act_session_init(struct act_session *s, const char *caller_e164, const char *call_sid,
                      const char *provider, int max_actions);
void act_session_cleanup(struct act_session *s);

/*
 * Look the caller's number up (users.phone) and set user_id / level
 * ACT_ID_CALLER when found. Worker thread. Returns 0 (found or not) or ERR_*.
 * first_name (optional, size fnsz) receives the first name for the greeting.
 */
int act_session_identify(const struct act_env *env, struct act_session *s, char *first_name,
                         int fnsz, struct err *e);

/* ---- execution ---- */

/*
 * Run one action as the session's caller. args may be NULL (= {}), borrowed.
 * Always returns an envelope (caller owns):
 *   {"success":bool,"message":"...","data":{...},"error":{"code":"..."},"execution_time_ms":n}
 * An unknown name gives success:false with error.code "unknown_action" (and
 * no audit row). Worker thread.
 */
json_t *act_execute(const struct act_env *env, struct act_session *s, const char *name,
                    json_t *args);

/*
 * Notes on act_execute:
 * - Arguments are validated against the schema before anything else runs
 *   (required, type, enum, minLength/maxLength). Unknown extra properties are
 *   ignored (dropped before the handler sees them, logged); a null value for
 *   an optional property counts as absent.
 * - ACT_SIDE_EFFECT actions: a repeat with the same canonical arguments for the
 *   same acting user in the same session returns the earlier successful envelope unchanged and writes
 *   nothing new except its own audit row. Failures are not cached (a retry runs).
 * - Budget: after max_actions executions every call fails with
 *   budget_exceeded (still audited).
 */

/* Same, with args as JSON text (from a provider); malformed JSON -> invalid_arguments. */
json_t *act_execute_text(const struct act_env *env, struct act_session *s, const char *name,
                         const char *args_json);

#endif
