/*
 * exec.c - act_execute: the one way an action runs.
 *
 * Order for every execution: find -> "Executing" log -> budget -> schema
 * validation -> precheck (configuration) -> borrow a connection -> identify
 * the caller (once per session) -> identity flags -> exactly-once lookup
 * (keyed by action, acting user and canonical arguments) -> handler ->
 * envelope -> audit row -> "Completed"/"Failed" log.
 * Owns: argument validation against the registry's JSON Schemas (parsed once),
 * the envelope, the voice_action_logs row (exactly one per execution, masked)
 * and the timing (monotonic clock).
 * Must not touch: sockets, provider state. Runs on a worker thread (or the
 * CLI's main thread); the session locks itself.
 */
#include "actions/action.h"
#include "actions/internal.h"

#include "core/cfg.h"
#include "core/util.h"
#include "db/db.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "actions"
#include "core/log.h"

#define AUDIT_ARGS_MAX 2048 /* masked argument text kept in the audit row */
#define AUDIT_STR_MAX 512   /* bytes of one argument string masked and kept */
#define AUDIT_DEPTH_MAX 8   /* nesting kept in the audit row */
#define UNKNOWN_LOGGED 3    /* unknown argument names logged per execution */
#define SCHEMAS_MAX 32

/* ---- parsed schemas (once per process) ---- */

static json_t *schemas[SCHEMAS_MAX];
static pthread_once_t schemas_once = PTHREAD_ONCE_INIT;

static void schemas_parse(void)
{
    for (int i = 0; i < act_count() && i < SCHEMAS_MAX; i++)
        schemas[i] = json_loads(act_at(i)->schema, 0, NULL);
}

static const json_t *schema_of(const struct act_def *d)
{
    pthread_once(&schemas_once, schemas_parse);
    long i = d - act_at(0);
    return i >= 0 && i < SCHEMAS_MAX ? schemas[i] : NULL;
}

/* ---- validation ---- */

struct bad_arg {
    char field[64];
    char problem[96];
};

static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static bool type_ok(const char *type, const json_t *v)
{
    if (!type)
        return true;
    if (!strcmp(type, "string"))
        return json_is_string(v);
    if (!strcmp(type, "integer"))
        return json_is_integer(v);
    if (!strcmp(type, "number"))
        return json_is_number(v);
    if (!strcmp(type, "boolean"))
        return json_is_boolean(v);
    if (!strcmp(type, "object"))
        return json_is_object(v);
    if (!strcmp(type, "array"))
        return json_is_array(v);
    return false;
}

static int bad(struct bad_arg *b, const char *field, const char *problem)
{
    snprintf(b->field, sizeof b->field, "%s", field);
    snprintf(b->problem, sizeof b->problem, "%s", problem);
    return ERR_INVALID_ARGUMENTS;
}

static int check_value(const char *k, const json_t *ps, const json_t *v, struct bad_arg *b)
{
    const char *type = json_string_value(json_object_get(ps, "type"));
    const json_t *en = json_object_get(ps, "enum"), *mx = json_object_get(ps, "maxLength"),
                 *mn = json_object_get(ps, "minLength");
    char want[48];

    if (!type_ok(type, v)) {
        snprintf(want, sizeof want, "must be %s %s", type && strchr("aeiou", type[0]) ? "an" : "a",
                 type ? type : "value");
        return bad(b, k, want);
    }
    if (json_is_array(en)) {
        size_t i;
        json_t *x;
        bool hit = false;
        json_array_foreach(en, i, x) hit = hit || json_equal(x, v);
        if (!hit)
            return bad(b, k, "is not one of the allowed values");
    }
    if (json_is_string(v)) {
        size_t n = utf8_len(json_string_value(v));
        if (json_is_integer(mx) && (json_int_t)n > json_integer_value(mx))
            return bad(b, k, "is too long");
        if (json_is_integer(mn) && (json_int_t)n < json_integer_value(mn))
            return bad(b, k, n ? "is too short" : "is empty");
    }
    return 0;
}

/*
 * Check args against the schema and build *clean: only the declared
 * properties, nulls for optional ones dropped. Unknown properties are
 * ignored (dropped, logged): a model that adds a field (say, a phone number
 * to send a link to) gets the documented behaviour, never its extra field.
 */
static int validate(const char *name, const json_t *schema, const json_t *args, json_t **clean,
                    struct bad_arg *b)
{
    const json_t *props = json_object_get(schema, "properties"),
                 *req = json_object_get(schema, "required");
    const char *k;
    json_t *v;
    size_t i;

    *clean = NULL;
    if (!json_is_object(args))
        return bad(b, "arguments", "must be a JSON object");
    json_array_foreach(req, i, v)
    {
        json_t *a = json_object_get(args, json_string_value(v));
        if (!a || json_is_null(a))
            return bad(b, json_string_value(v), "is missing");
    }
    *clean = json_object();
    size_t unknown = 0;
    json_object_foreach((json_t *)args, k, v)
    {
        const json_t *ps = json_object_get(props, k);
        int rc;
        if (!ps) {
            /* a few named, the rest counted: one tool call cannot flood the log */
            if (++unknown <= UNKNOWN_LOGGED)
                log_warn("action=%s ignoring unknown argument '%.40s'", name, k);
            continue;
        }
        if (json_is_null(v))
            continue; /* optional property sent as null: absent */
        if ((rc = check_value(k, ps, v, b))) {
            json_decref(*clean);
            *clean = NULL;
            return rc;
        }
        json_object_set(*clean, k, v);
    }
    if (unknown > UNKNOWN_LOGGED)
        log_warn("action=%s ignoring unknown argument ... and %zu more", name,
                 unknown - UNKNOWN_LOGGED);
    return 0;
}

/* ---- envelope, audit, logs ---- */

/*
 * The message as a JSON string. A sentence built with snprintf from database
 * text (an article title, a name) may have been cut inside a UTF-8 character
 * at the buffer's end, which jansson refuses: keep the longest valid prefix.
 */
static json_t *message_json(const char *m)
{
    size_t n = m ? strlen(m) : 0;
    json_t *j;

    while (!(j = json_stringn(m ? m : "", n)) && n > 0)
        n--;
    return j ? j : json_string("");
}

static json_t *envelope(const struct act_call *c, bool ok, double ms)
{
    json_t *env = json_object();

    json_object_set_new(env, "success", json_boolean(ok));
    json_object_set_new(env, "message", message_json(ok ? c->message : c->err.say));
    if (c->data)
        json_object_set(env, "data", c->data);
    else
        json_object_set_new(env, "data", json_object());
    if (!ok)
        json_object_set_new(env, "error", json_pack("{s:s}", "code", err_name(c->err.code)));
    json_object_set_new(env, "execution_time_ms", json_real(ms));
    return env;
}

/* Masked text of s (at most AUDIT_STR_MAX bytes of it, cut on a UTF-8 boundary). */
static void mask_piece(const char *s, size_t n, char *out, size_t outsz, size_t *budget)
{
    char in[AUDIT_STR_MAX + 1];
    size_t k = n < AUDIT_STR_MAX ? n : AUDIT_STR_MAX;

    while (k < n && k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    memcpy(in, s, k);
    in[k] = '\0';
    log_mask_text(in, out, outsz);
    *budget = *budget > k ? *budget - k : 0;
}

/*
 * A copy of v with every string and key masked one by one. Masking the
 * dumped JSON alone is not enough: there a tab inside a number is the escape
 * "\t", which glues the digits to a letter. Bounded: strings are cut at
 * AUDIT_STR_MAX bytes, nesting below AUDIT_DEPTH_MAX and anything past the
 * byte budget become "...".
 */
static json_t *masked_copy(const json_t *v, int depth, size_t *budget)
{
    char out[2 * AUDIT_STR_MAX + 16];
    const char *k;
    json_t *x, *o;
    size_t i;

    if (!*budget || depth > AUDIT_DEPTH_MAX)
        return json_string("...");
    switch (json_typeof(v)) {
    case JSON_STRING:
        mask_piece(json_string_value(v), json_string_length(v), out, sizeof out, budget);
        o = json_string(out);
        return o ? o : json_string("?");
    case JSON_OBJECT:
        o = json_object();
        json_object_foreach((json_t *)v, k, x)
        {
            if (!*budget)
                break;
            mask_piece(k, strlen(k), out, sizeof out, budget);
            json_object_set_new(o, out, masked_copy(x, depth + 1, budget));
        }
        return o;
    case JSON_ARRAY:
        o = json_array();
        json_array_foreach(v, i, x)
        {
            if (!*budget)
                break;
            json_array_append_new(o, masked_copy(x, depth + 1, budget));
        }
        return o;
    default:
        return json_deep_copy(v); /* numbers: the text pass below masks digit runs */
    }
}

/*
 * Raw text that failed to parse: JSON escapes that stand for whitespace
 * (\t \n \r \b \f, \uXXXX) become a space, so they cannot hide a number from
 * the mask. At most outsz - 1 bytes are kept.
 */
static void unescape_ws(const char *raw, char *out, size_t outsz)
{
    size_t o = 0;

    for (const char *p = raw; *p && o + 1 < outsz;) {
        if (p[0] == '\\' && p[1] && strchr("tnrbf", p[1])) {
            out[o++] = ' ';
            p += 2;
        } else if (p[0] == '\\' && p[1] == 'u' && strspn(p + 2, "0123456789abcdefABCDEF") >= 4) {
            out[o++] = ' ';
            p += 6;
        } else if (p[0] == '\\' && p[1]) {
            out[o++] = *p++;
            if (o + 1 < outsz)
                out[o++] = *p++;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

/* Arguments as stored in the audit row: canonical JSON (or the raw text that
 * failed to parse), every phone number and email masked, bounded. */
static void audit_args(const json_t *args, const char *raw, char *out, size_t outsz)
{
    char *txt = NULL;

    if (args) {
        size_t budget = 4 * AUDIT_ARGS_MAX;
        json_t *m = masked_copy(args, 0, &budget);
        txt = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        json_decref(m);
    } else if (raw) {
        size_t n = strlen(raw) < 4 * AUDIT_ARGS_MAX ? strlen(raw) + 1 : 4 * AUDIT_ARGS_MAX;
        txt = malloc(n);
        if (txt)
            unescape_ws(raw, txt, n);
    }
    log_mask_text(txt ? txt : "{}", out, outsz);
    free(txt);
}

static int audit_write(struct db *db, const struct act_session *s, const char *action,
                       long long user_id, const char *args_masked, bool ok, int code, double ms,
                       struct err *e)
{
    static const char sql[] =
        "INSERT INTO voice_action_logs (call_sid, provider, action, user_id, phone_masked, "
        "arguments, success, error_code, execution_time_ms, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    char masked[32] = "", msbuf[32], now[24];

    if (s->caller[0])
        log_mask_phone(s->caller, masked, sizeof masked);
    snprintf(msbuf, sizeof msbuf, "%.6f", ms);
    db_utc_text(util_now(), now, sizeof now);
    const struct db_val a[] = {
        DB_S(s->call_sid[0] ? s->call_sid : NULL),
        DB_S(s->provider),
        DB_S(action),
        user_id > 0 ? DB_I(user_id) : DB_NIL,
        masked[0] ? ACT__TXT(masked) : DB_NIL,
        DB_S(args_masked),
        DB_I(ok ? 1 : 0),
        DB_S(ok ? NULL : err_name(code)),
        ACT__TXT(msbuf),
        ACT__TXT(now),
    };
    return db_run(db, sql, a, 10, e);
}

/* ---- the steps ---- */

struct run {
    const struct act_env *env;
    struct act_session *s;
    const struct act_def *def;
    struct act_call c;
    double t0;
    char *once_key; /* set when this run owns an exactly-once slot */
    char args_masked[AUDIT_ARGS_MAX];
};

static bool budget_take(struct act_session *s)
{
    bool over;
    pthread_mutex_lock(&s->mu);
    over = s->max_actions > 0 && s->actions_count >= s->max_actions;
    s->actions_count++;
    pthread_mutex_unlock(&s->mu);
    return !over;
}

static bool session_identified(struct act_session *s)
{
    bool v;
    pthread_mutex_lock(&s->mu);
    v = s->identified;
    pthread_mutex_unlock(&s->mu);
    return v;
}

static char *once_key(const char *name, long long user_id, const json_t *clean)
{
    char *canon = json_dumps(clean, JSON_COMPACT | JSON_SORT_KEYS);
    size_t n = strlen(name) + (canon ? strlen(canon) : 0) + 24;
    char *key = malloc(n);
    if (!key)
        abort();
    snprintf(key, n, "%s\n%lld\n%s", name, user_id, canon ? canon : "{}");
    free(canon);
    return key;
}

static int check_identity(struct run *r)
{
    struct act_call *c = &r->c;
    struct act__ident id;
    int rc;

    if (!session_identified(r->s) && (rc = act__session_identify_db(c->db, r->s, NULL, 0, &c->err)))
        return rc;
    act__ident_get(r->s, &id);
    c->user_id = id.user_id;
    if ((r->def->flags & ACT_NEEDS_CALLER) && id.level < ACT_ID_CALLER)
        return err_set(
            &c->err, ERR_NO_CALLER,
            r->s->caller[0] ? "I can't find an account for the number you're calling from. Could "
                              "you tell me the phone number on your account and your claim "
                              "reference?"
                            : NULL,
            "no user for this call (caller %s)", r->s->caller[0] ? "not on file" : "withheld");
    if ((r->def->flags & ACT_NEEDS_VERIFIED) && r->env->cfg->require_verification &&
        id.level < ACT_ID_VERIFIED)
        return err_set(&c->err, ERR_NOT_VERIFIED, NULL,
                       "REQUIRE_VERIFICATION: caller not verified yet");
    return 0;
}

/* Everything up to and including the handler. Returns 0 or the error. */
static int run_steps(struct run *r, const json_t *args, const char *raw, json_t **repeat)
{
    struct act_call *c = &r->c;
    struct bad_arg b = {{0}, {0}};
    json_t *clean = NULL;
    int rc;

    if (!budget_take(r->s))
        return err_set(&c->err, ERR_BUDGET_EXCEEDED, NULL,
                       "budget exceeded: more than %d actions on this call", r->s->max_actions);
    if (!args) {
        json_object_set_new(c->data, "field", json_string("arguments"));
        json_object_set_new(c->data, "problem", json_string("are not valid JSON"));
        return err_set(&c->err, ERR_INVALID_ARGUMENTS, NULL,
                       "arguments are not valid JSON (%zu bytes)", raw ? strlen(raw) : 0);
    }
    if ((rc = validate(r->def->name, schema_of(r->def), args, &clean, &b))) {
        json_object_set_new(c->data, "field", json_string(b.field));
        json_object_set_new(c->data, "problem", json_string(b.problem));
        return err_set(&c->err, rc, NULL, "%s %s", b.field, b.problem);
    }
    c->args = clean;
    if (r->def->precheck && (rc = r->def->precheck(c)))
        return rc;
    if (!r->env->pool)
        return err_set(&c->err, ERR_DB_UNAVAILABLE, NULL, "no database pool");
    if ((rc = db_pool_get(r->env->pool, r->env->cfg->db_pool_wait_ms, &c->db, &c->err))) {
        /* the caller's lookup is the first thing that needed the database */
        if (r->s->caller[0] && !session_identified(r->s))
            log_error("👤 [VOICE-DB] Error finding user: %s", c->err.detail);
        return rc;
    }
    if ((rc = check_identity(r)))
        return rc;
    /* After identity: the key names the acting user, so a call that switches to
     * another verified user (a partner's account) really acts for them. */
    if (r->def->flags & ACT_SIDE_EFFECT) {
        char *key = once_key(r->def->name, c->user_id, clean);
        int orc = act__once_begin(r->s, key, repeat);
        if (orc == 1) {
            free(key);
            return 0;
        }
        if (orc == 2)
            log_warn("action=%s exactly-once cache full; running without it", r->def->name);
        r->once_key = orc == 0 ? key : (free(key), NULL);
    }
    return r->def->handler(c);
}

static void finish_log(const struct run *r, bool ok, double ms, bool repeat)
{
    if (ok) {
        log_info("✅ [VOICE-ACTION] Completed %s (%.1f ms)%s", r->def->name, ms,
                 repeat ? " (repeat: earlier result returned, nothing new done)" : "");
        return;
    }
    const struct err *e = &r->c.err;
    if (e->code == ERR_DB_UNAVAILABLE || e->code == ERR_INTERNAL || e->code == ERR_NOMEM)
        log_error("❌ [VOICE-ACTION] Failed %s: %s%s%s", r->def->name, err_name(e->code),
                  e->detail[0] ? " - " : "", e->detail);
    else
        log_warn("❌ [VOICE-ACTION] Failed %s: %s%s%s", r->def->name, err_name(e->code),
                 e->detail[0] ? " - " : "", e->detail);
}

static void audit(struct run *r, bool ok, double ms)
{
    struct act_call *c = &r->c;
    struct err ae = {0};
    long long uid = c->user_id;

    if (!uid) { /* failed before the handler (or a repeat): the session's user */
        struct act__ident id;
        act__ident_get(r->s, &id);
        uid = id.user_id;
    }
    /* A connection the handler could not get is not retried: with the
     * database down the answer must not wait twice. */
    if (!c->db && r->env->pool && c->err.code != ERR_DB_UNAVAILABLE && c->err.code != ERR_BUSY)
        db_pool_get(r->env->pool, r->env->cfg->db_pool_wait_ms, &c->db, &ae);
    if (!c->db ||
        audit_write(c->db, r->s, r->def->name, uid, r->args_masked, ok, c->err.code, ms, &ae)) {
        log_error("voice_action_logs: could not record %s (success=%d code=%s): %s", r->def->name,
                  ok, ok ? "-" : err_name(c->err.code),
                  ae.detail[0]       ? ae.detail
                  : c->err.detail[0] ? c->err.detail
                                     : "no database");
    }
}

static json_t *unknown_action(const char *name, double t0)
{
    struct act_call c = {0};
    err_set(&c.err, ERR_UNKNOWN_ACTION, NULL, NULL);
    log_warn("❌ [VOICE-ACTION] Failed %.64s: unknown_action - no such action",
             name ? name : "(null)");
    return envelope(&c, false, util_mono_ms() - t0);
}

static json_t *execute(const struct act_env *env, struct act_session *s, const char *name,
                       const json_t *args, const char *raw)
{
    struct run *r;
    json_t *repeat = NULL, *out;
    const struct act_def *def = act_find(name);
    double t0 = util_mono_ms(), ms;
    bool ok;
    int rc;

    if (!def)
        return unknown_action(name, t0);
    log_info("🔧 [VOICE-ACTION] Executing %s", def->name);
    r = calloc(1, sizeof *r);
    if (!r)
        abort();
    r->env = env, r->s = s, r->def = def, r->t0 = t0;
    r->c.env = env, r->c.session = s, r->c.data = json_object();
    audit_args(args, raw, r->args_masked, sizeof r->args_masked);

    rc = run_steps(r, args, raw, &repeat);
    /* Steps of 1/64 ms (~16 us): exact in binary, so every JSON encoder prints
     * it short ("0.328125", not "0.32200000000000001"); the audit row stores the same. */
    ms = round((util_mono_ms() - t0) * 64.0) / 64.0;
    if (repeat) {
        out = repeat; /* the earlier envelope, unchanged */
        ok = true;
    } else {
        ok = rc == 0 && r->c.err.code == 0;
        if (!ok && !r->c.err.code)
            err_set(&r->c.err, rc ? rc : ERR_INTERNAL, NULL, "handler failed without a reason");
        out = envelope(&r->c, ok, ms);
    }
    if (r->once_key)
        act__once_end(s, r->once_key, ok ? out : NULL);
    audit(r, ok, ms);
    if (r->c.db)
        db_pool_put(env->pool, r->c.db, r->c.err.code == ERR_DB_UNAVAILABLE);
    finish_log(r, ok, ms, repeat != NULL);
    free(r->once_key);
    json_decref(r->c.args);
    json_decref(r->c.data);
    free(r);
    return out;
}

json_t *act_execute(const struct act_env *env, struct act_session *s, const char *name,
                    json_t *args)
{
    json_t *empty = NULL, *out;

    if (!args)
        args = empty = json_object();
    out = execute(env, s, name, args, NULL);
    json_decref(empty);
    return out;
}

json_t *act_execute_text(const struct act_env *env, struct act_session *s, const char *name,
                         const char *args_json)
{
    json_error_t je;
    json_t *args, *out;

    /* Providers send "" for a call without arguments. */
    if (!args_json || !*args_json)
        return act_execute(env, s, name, NULL);
    args = json_loads(args_json, JSON_REJECT_DUPLICATES, &je);
    out = execute(env, s, name, args, args ? NULL : args_json);
    json_decref(args);
    return out;
}
