/*
 * vt_act.h - the fixture the action test suites share: a fresh demo database
 * on one backend, the action environment (pool, mock SMS) and one call
 * session, plus a runner that checks every envelope's shape. Test code only.
 */
#ifndef VWS_VT_ACT_H
#define VWS_VT_ACT_H

#include <jansson.h>
#include <stdbool.h>

#include "actions/action.h"
#include "core/cfg.h"
#include "vt_db.h"

struct vt_act {
    struct cfg c;
    struct vt_db h;
    struct db *db;           /* for checking rows */
    struct act_env env;
    struct act_session s;
    bool open;
};

/* cmocka setup/teardown: allocate the fixture / close it, free it, unpin the clock. */
int vt_act_setup(void **state);
int vt_act_teardown(void **state);

/* Fresh demo database on backend; extra "K=V" win over the defaults (no SMS rate limit,
 * LOG_LEVEL=error). One session for caller (E.164 or "") with this call SID and budget. */
void vt_act_open(struct vt_act *f, const char *backend, const char *const *extra,
                 const char *caller, const char *call_sid, int max_actions);
void vt_act_close(struct vt_act *f);

/* Execute and check the envelope's shape (success, message, data, error iff failure,
 * execution_time_ms >= 0). Caller owns the result. */
json_t *vt_act_run(struct vt_act *f, const char *name, const char *args);
/* error.code, or "ok" for a success. */
const char *vt_act_code(const json_t *env);

#endif
