/*
 * app.h - wiring: the one place that names concrete backends. Builds the
 * shared action environment (cfg, db pool, sms) for the CLI and the server.
 */
#ifndef VWS_APP_H
#define VWS_APP_H

#include <jansson.h>

#include "actions/action.h"

struct cfg;
struct err;

/* Open the db pool for cfg's backend and the messaging client. Main thread. */
int app_env_open(struct act_env *env, const struct cfg *cfg, struct err *e);
void app_env_close(struct act_env *env);

struct app_health_extra {        /* what only the server knows; NULL from the CLI */
    int calls_active;
    const char *provider_next;   /* provider new calls will use: "openai" | "gemini" | "none" */
    const char *openai_state;    /* "ok" | "unreachable" | "rejected" | "unknown" */
    const char *gemini_state;
    int draining;                /* 1 while shutting down */
};

/*
 * The /health JSON (also `voice-ws health`): status, provider,
 * services.database{backend,reachable}, services.sms{mode,configured},
 * services.openai{configured}, services.gemini{configured}, actions, calls.active.
 * Pings the database (worker or main thread: it blocks). Caller owns.
 */
json_t *app_health_json(const struct act_env *env, const struct app_health_extra *x);

#endif
