/*
 * app.c - wiring: the one place that names concrete backends. Opens the
 * database pool for the configured backend and the messaging client, and
 * builds the /health JSON shared by `voice-ws health` and GET /health.
 *
 * Must not touch: sockets, provider sessions. Main thread for open/close;
 * app_health_json on any thread that may block (it pings the database).
 */
#include "core/app.h"

#include "core/cfg.h"
#include "core/err.h"
#include "db/db.h"
#include "sms/sms.h"

#include <string.h>

#define LOG_MODULE "app"
#include "core/log.h"

#define HEALTH_DB_WAIT_MS 1000 /* health answers quickly even when every connection is busy */

int app_env_open(struct act_env *env, const struct cfg *cfg, struct err *e)
{
    const struct db_ops *ops = db_backend_for(cfg);
    int rc;

    memset(env, 0, sizeof *env);
    env->cfg = cfg;
    if ((rc = act_registry_check(e)))
        return rc;
    if (!ops)
        return err_set(e, ERR_CONFIG, NULL, "no database backend for this configuration");
    if ((rc = db_pool_new(&env->pool, ops, cfg, cfg->db_pool_size, e)))
        return rc;
    if ((rc = sms_new(&env->sms, cfg, e))) {
        db_pool_free(env->pool);
        env->pool = NULL;
        return rc;
    }
    return 0;
}

void app_env_close(struct act_env *env)
{
    if (!env)
        return;
    sms_free(env->sms);
    db_pool_free(env->pool);
    env->sms = NULL;
    env->pool = NULL;
}

static bool db_reachable(const struct act_env *env)
{
    struct db *db = NULL;
    struct err e = {0};
    int rc;

    if (!env->pool)
        return false;
    rc = db_pool_get(env->pool, HEALTH_DB_WAIT_MS, &db, &e);
    if (rc == ERR_BUSY)
        return true; /* every connection in use: the database is clearly there */
    if (rc)
        return false;
    rc = db_ping(db, &e);
    db_pool_put(env->pool, db, rc != 0);
    if (rc)
        log_warn("health: database ping failed: %s", e.detail);
    return rc == 0;
}

/* status: the database decides (and draining). Provider reachability is
 * reported in services.providers but does not degrade the status, so that
 * `voice-ws health` and GET /health agree on a machine without API keys. */
static json_t *actions_names(void)
{
    json_t *a = json_array();
    for (int i = 0; i < act_count(); i++)
        json_array_append_new(a, json_string(act_at(i)->name));
    return a;
}

json_t *app_health_json(const struct act_env *env, const struct app_health_extra *x)
{
    const struct cfg *c = env->cfg;
    const struct db_ops *ops = env->pool ? db_pool_ops(env->pool) : db_backend_for(c);
    bool reachable = db_reachable(env);
    bool draining = x && x->draining;
    bool twilio = c->twilio_account_sid[0] && c->twilio_auth_token[0] && c->twilio_from_number[0];
    json_t *h = json_object(), *svc = json_object();

    json_object_set_new(h, "status",
                        json_string(reachable && !draining ? "ok" : "degraded"));
    json_object_set_new(h, "provider", json_string(cfg_provider_name(c->voice_provider)));
    json_object_set_new(
        svc, "database",
        json_pack("{s:s, s:b}", "backend", ops ? ops->name : "none", "reachable", reachable));
    json_object_set_new(svc, "sms",
                        json_pack("{s:s, s:b}", "mode",
                                  env->sms && sms_is_live(env->sms) ? "live" : "mock", "configured",
                                  twilio));
    json_object_set_new(svc, "openai", json_pack("{s:b}", "configured", c->openai_api_key[0] != 0));
    json_object_set_new(svc, "gemini", json_pack("{s:b}", "configured", c->gemini_api_key[0] != 0));
    if (x) /* what only the server knows: the provider new calls get, and each one's state */
        json_object_set_new(svc, "providers",
                            json_pack("{s:s, s:s, s:s}", "next",
                                      x->provider_next ? x->provider_next : "none", "openai",
                                      x->openai_state ? x->openai_state : "unknown", "gemini",
                                      x->gemini_state ? x->gemini_state : "unknown"));
    json_object_set_new(h, "services", svc);
    json_object_set_new(h, "actions", actions_names());
    json_object_set_new(h, "calls", json_pack("{s:i}", "active", x ? x->calls_active : 0));
    if (x)
        json_object_set_new(h, "draining", json_boolean(draining));
    return h;
}
