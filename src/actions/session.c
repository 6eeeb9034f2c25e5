/*
 * session.c - one call's identity and its exactly-once cache.
 *
 * Owns: struct act_session's fields after init (guarded by s->mu) and the
 * once cache: key (action + canonical arguments) -> the envelope of the
 * first successful execution. An entry whose envelope is still NULL is "in
 * flight": a concurrent identical call waits on the condition variable
 * instead of running the side effect a second time.
 * caller, call_sid and provider are written once by act_session_init and
 * read without the lock afterwards. Any thread (workers of one call).
 */
#include "actions/action.h"
#include "actions/internal.h"

#include "core/cfg.h"
#include "core/util.h"
#include "db/db.h"

#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "session"
#include "core/log.h"

#define ONCE_MAX 128 /* entries per call; the action budget keeps it far lower */

struct once_entry {
    char *key;
    json_t *env; /* NULL while the first execution runs */
    struct once_entry *next;
};

struct act_once {
    pthread_cond_t cv; /* signalled when an in-flight entry settles */
    struct once_entry *head;
    int n;
};

void act_session_init(struct act_session *s, const char *caller_e164, const char *call_sid,
                      const char *provider, int max_actions)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    util_strlcpy(s->caller, caller_e164 ? caller_e164 : "", sizeof s->caller);
    /* at most ACT_CALL_SID_MAX: a longer SID would fail every insert on MySQL */
    util_strlcpy(s->call_sid, call_sid ? call_sid : "", ACT_CALL_SID_MAX + 1);
    util_strlcpy(s->provider, provider ? provider : "cli", sizeof s->provider);
    s->max_actions = max_actions;
    s->once = calloc(1, sizeof *s->once);
    if (!s->once)
        abort();
    pthread_cond_init(&s->once->cv, NULL);
}

void act_session_cleanup(struct act_session *s)
{
    if (!s || !s->once)
        return;
    for (struct once_entry *o = s->once->head, *nx; o; o = nx) {
        nx = o->next;
        free(o->key);
        json_decref(o->env);
        free(o);
    }
    pthread_cond_destroy(&s->once->cv);
    free(s->once);
    s->once = NULL;
    pthread_mutex_destroy(&s->mu);
}

/* ---- identity ---- */

void act__ident_get(struct act_session *s, struct act__ident *out)
{
    pthread_mutex_lock(&s->mu);
    out->user_id = s->user_id;
    out->level = s->level;
    pthread_mutex_unlock(&s->mu);
}

void act__ident_raise(struct act_session *s, long long user_id, enum act_id_level level,
                      struct act__ident *now)
{
    pthread_mutex_lock(&s->mu);
    if (level >= s->level || s->user_id == 0) {
        s->user_id = user_id;
        s->level = level;
    }
    s->identified = true;
    now->user_id = s->user_id;
    now->level = s->level;
    pthread_mutex_unlock(&s->mu);
}

/* Look up with a connection already borrowed (exec.c's lazy path). */
int act__session_identify_db(struct db *db, struct act_session *s, char *first_name, int fnsz,
                             struct err *e)
{
    struct act__user u;
    int rc;

    if (first_name && fnsz > 0)
        first_name[0] = '\0';
    if (!s->caller[0]) {
        pthread_mutex_lock(&s->mu);
        s->identified = true;
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    rc = act__user_find(db, 0, s->caller, &u, e);
    if (rc < 0)
        return rc; /* not marked identified: the next action tries again */
    pthread_mutex_lock(&s->mu);
    /* never lower an identity already raised by check_user_details */
    if (rc == 1 && s->level < ACT_ID_CALLER) {
        s->user_id = u.id;
        s->level = ACT_ID_CALLER;
    }
    s->identified = true;
    pthread_mutex_unlock(&s->mu);
    if (rc == 1 && first_name && fnsz > 0)
        util_strlcpy(first_name, u.first_name, (size_t)fnsz);
    return 0;
}

int act_session_identify(const struct act_env *env, struct act_session *s, char *first_name,
                         int fnsz, struct err *e)
{
    struct db *db = NULL;
    int rc;

    if (!s->caller[0])
        return act__session_identify_db(NULL, s, first_name, fnsz, e);
    rc = db_pool_get(env->pool, env->cfg->db_pool_wait_ms, &db, e);
    if (rc)
        return rc;
    rc = act__session_identify_db(db, s, first_name, fnsz, e);
    db_pool_put(env->pool, db, rc == ERR_DB_UNAVAILABLE);
    return rc;
}

/* ---- exactly once ---- */

static struct once_entry *once_find(struct act_once *o, const char *key)
{
    for (struct once_entry *x = o->head; x; x = x->next)
        if (!strcmp(x->key, key))
            return x;
    return NULL;
}

int act__once_begin(struct act_session *s, const char *key, json_t **earlier)
{
    struct once_entry *x;
    int rc = 0;

    *earlier = NULL;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        x = once_find(s->once, key);
        if (!x)
            break;
        if (x->env) {
            *earlier = json_deep_copy(x->env);
            rc = 1;
            goto out;
        }
        pthread_cond_wait(&s->once->cv, &s->mu); /* identical call in flight */
    }
    if (s->once->n >= ONCE_MAX) {
        rc = 2; /* cache full: run without exactly-once (logged by the caller) */
        goto out;
    }
    x = calloc(1, sizeof *x);
    if (!x || !(x->key = strdup(key)))
        abort();
    x->next = s->once->head;
    s->once->head = x;
    s->once->n++;
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void act__once_end(struct act_session *s, const char *key, const json_t *env_or_null)
{
    struct once_entry **pp, *x;

    pthread_mutex_lock(&s->mu);
    for (pp = &s->once->head; (x = *pp); pp = &x->next) {
        if (strcmp(x->key, key))
            continue;
        if (env_or_null) {
            x->env = json_deep_copy(env_or_null);
        } else { /* failed: forget it so a retry runs */
            *pp = x->next;
            free(x->key);
            free(x);
            s->once->n--;
        }
        break;
    }
    pthread_cond_broadcast(&s->once->cv);
    pthread_mutex_unlock(&s->mu);
}
