/*
 * vt_act.c - the action suites' shared fixture (see vt_act.h). Test code only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "vt_act.h"

#include "core/app.h"
#include "core/err.h"
#include "core/util.h"
#include "db/db.h"

#include <stdlib.h>
#include <string.h>

int vt_act_setup(void **state)
{
    struct vt_act *f = calloc(1, sizeof *f);
    assert_non_null(f);
    *state = f;
    return 0;
}

void vt_act_close(struct vt_act *f)
{
    if (!f->open)
        return;
    act_session_cleanup(&f->s);
    app_env_close(&f->env);
    db_close(f->db);
    vt_db_cleanup(&f->h, &f->c);
    f->open = false;
}

int vt_act_teardown(void **state)
{
    struct vt_act *f = *state;
    vt_act_close(f);
    free(f);
    util_set_fake_now(0);
    return 0;
}

void vt_act_open(struct vt_act *f, const char *backend, const char *const *extra,
                 const char *caller, const char *call_sid, int max_actions)
{
    const char *kv[32];
    int n = 0;
    struct err e = {0};

    for (int i = 0; extra && extra[i] && n < 24; i++)
        kv[n++] = extra[i];
    kv[n++] = "SMS_RATE_LIMIT=off";
    kv[n++] = "SMS_GLOBAL_RATE_LIMIT=off";
    kv[n++] = "LOG_LEVEL=error";
    kv[n] = NULL;
    vt_db_fresh(backend, &f->c, &f->h, kv);
    f->db = vt_db_open(&f->c, true);
    assert_int_equal(app_env_open(&f->env, &f->c, &e), 0);
    act_session_init(&f->s, caller, call_sid, "cli", max_actions);
    f->open = true;
}

json_t *vt_act_run(struct vt_act *f, const char *name, const char *args)
{
    json_t *env = act_execute_text(&f->env, &f->s, name, args);
    assert_non_null(env);
    assert_true(json_is_boolean(json_object_get(env, "success")));
    assert_true(json_is_string(json_object_get(env, "message")));
    assert_true(strlen(json_string_value(json_object_get(env, "message"))) > 0);
    assert_true(json_is_object(json_object_get(env, "data")));
    assert_true(json_is_number(json_object_get(env, "execution_time_ms")));
    assert_true(json_number_value(json_object_get(env, "execution_time_ms")) >= 0);
    assert_int_equal(json_object_get(env, "error") != NULL,
                     !json_is_true(json_object_get(env, "success")));
    return env;
}

const char *vt_act_code(const json_t *env)
{
    const char *c = json_string_value(json_object_get(json_object_get(env, "error"), "code"));
    return c ? c : "ok";
}
