/*
 * main.c - the voice-ws command line: serve, action, actions, db init,
 * health, link verify.
 *
 * Owns: argument parsing and exit codes. Everything else is wired in
 * core/app.c. Output contract: stdout carries only JSON (envelope, tool
 * list, health, results); every log line goes to stderr.
 * Exit codes: 0 ok; 3 the operation ran and failed (action success:false,
 * invalid link, database down); 2 usage or configuration errors (message on
 * stderr, nothing on stdout); 1 `db init` failed.
 */
#include "actions/action.h"
#include "actions/links.h"
#include "core/app.h"
#include "core/cfg.h"
#include "core/err.h"
#include "core/norm.h"
#include "db/db.h"
#include "net/server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_MODULE "main"
#include "core/log.h"

#define EXIT_USAGE 2
#define EXIT_FAILED 3

static void usage(FILE *f)
{
    fputs("usage: voice-ws serve [--provider openai|gemini|auto] [--port N]\n"
          "       voice-ws action NAME 'JSON' [--caller +44...] [--call-sid ID]\n"
          "       voice-ws actions\n"
          "       voice-ws db init [--demo]\n"
          "       voice-ws health\n"
          "       voice-ws link verify TOKEN\n",
          f);
}

static int usage_error(const char *fmt, const char *arg)
{
    fputs("voice-ws: ", stderr);
    fprintf(stderr, fmt, arg ? arg : "");
    fputc('\n', stderr);
    usage(stderr);
    return EXIT_USAGE;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
    fflush(stdout);
}

/* Configuration errors name the variable (cfg puts it in the detail). */
static int load_cfg(struct cfg *c)
{
    struct err e = {0};

    if (cfg_load(c, &e)) {
        fprintf(stderr, "voice-ws: configuration error: %s\n", e.detail[0] ? e.detail : e.say);
        return EXIT_USAGE;
    }
    log_setup((enum log_level)c->log_level, c->log_json);
    return 0;
}

/* ---- serve ---- */

static int cmd_serve(int argc, char **argv)
{
    struct srv_opts o = {.port = 0, .provider = -1};
    struct cfg c;
    int rc;

    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--provider") && i + 1 < argc) {
            const char *p = argv[++i];
            if (!strcasecmp(p, "openai"))
                o.provider = CFG_PROV_OPENAI;
            else if (!strcasecmp(p, "gemini"))
                o.provider = CFG_PROV_GEMINI;
            else if (!strcasecmp(p, "auto"))
                o.provider = CFG_PROV_AUTO;
            else if (!strcasecmp(p, "hume"))
                return usage_error("--provider hume: Hume retired its EVI API on 2026-11-13; use "
                                   "--provider gemini instead%s",
                                   NULL);
            else
                return usage_error("--provider must be openai, gemini or auto (got '%s')", p);
        } else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
            char *end;
            long port = strtol(argv[++i], &end, 10);
            if (*end || port < 1 || port > 65535)
                return usage_error("--port must be a number from 1 to 65535 (got '%s')", argv[i]);
            o.port = (int)port;
        } else {
            return usage_error("serve: unexpected argument '%s'", argv[i]);
        }
    }
    if ((rc = load_cfg(&c)))
        return rc;
    rc = srv_run(&c, &o);
    cfg_free(&c);
    return rc;
}

/* ---- action ---- */

struct action_args {
    const char *name;
    json_t *args;    /* owned */
    char caller[24]; /* E.164 or "" */
    char call_sid[72];
};

static int parse_action(int argc, char **argv, struct action_args *a)
{
    json_error_t je;
    int i = 3;

    memset(a, 0, sizeof *a);
    if (argc < 3)
        return usage_error("action: missing action name%s", NULL);
    a->name = argv[2];
    if (!act_find(a->name))
        return usage_error("action: unknown action '%s' (see `voice-ws actions`)", a->name);
    if (argc > 3 && strncmp(argv[3], "--", 2)) {
        a->args = json_loads(argv[3], JSON_REJECT_DUPLICATES, &je);
        if (!a->args) {
            fprintf(stderr, "voice-ws: action: arguments are not valid JSON: %s (column %d)\n",
                    je.text, je.column);
            return EXIT_USAGE;
        }
        i = 4;
    } else {
        a->args = json_object();
    }
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--caller") && i + 1 < argc) {
            if (norm_phone(argv[++i], a->caller, sizeof a->caller))
                return usage_error("--caller: not a phone number I recognise (%s)",
                                   "use E.164 such as +447700900001");
        } else if (!strcmp(argv[i], "--call-sid") && i + 1 < argc) {
            const char *sid = argv[++i];
            if (!*sid || strlen(sid) > ACT_CALL_SID_MAX ||
                strspn(sid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") !=
                    strlen(sid))
                return usage_error("--call-sid: letters, digits, '-', '_' or '.' only, at most "
                                   "64 characters%s",
                                   NULL);
            snprintf(a->call_sid, sizeof a->call_sid, "%s", sid);
        } else {
            return usage_error("action: unexpected argument '%s'", argv[i]);
        }
    }
    if (!a->call_sid[0])
        snprintf(a->call_sid, sizeof a->call_sid, "cli-%ld", (long)getpid());
    return 0;
}

/* The envelope when even the environment could not be built (no pool). */
static json_t *env_failure(const struct err *e)
{
    int code = e->code == ERR_CONFIG ? ERR_CONFIG : ERR_DB_UNAVAILABLE;
    return json_pack("{s:b, s:s, s:{}, s:{s:s}, s:f}", "success", 0, "message", err_say(code),
                     "data", "error", "code", err_name(code), "execution_time_ms", 0.0);
}

static int cmd_action(int argc, char **argv)
{
    struct action_args a;
    struct act_env env;
    struct act_session s;
    struct err e = {0};
    struct cfg c;
    json_t *out;
    int rc;

    if ((rc = parse_action(argc, argv, &a))) {
        json_decref(a.args);
        return rc;
    }
    if ((rc = load_cfg(&c))) {
        json_decref(a.args);
        return rc;
    }
    if (app_env_open(&env, &c, &e)) {
        log_error("could not start: %s", e.detail);
        out = env_failure(&e);
    } else {
        act_session_init(&s, a.caller, a.call_sid, "cli", c.max_tool_calls);
        out = act_execute(&env, &s, a.name, a.args);
        act_session_cleanup(&s);
        app_env_close(&env);
    }
    print_json(out);
    rc = json_is_true(json_object_get(out, "success")) ? 0 : EXIT_FAILED;
    json_decref(out);
    json_decref(a.args);
    cfg_free(&c);
    return rc;
}

/* ---- actions, health ---- */

static int cmd_actions(void)
{
    struct err e = {0};
    json_t *t;

    if (act_registry_check(&e))
        return 1;
    t = act_tools_openai();
    print_json(t);
    json_decref(t);
    return 0;
}

static int cmd_health(void)
{
    struct act_env env;
    struct err e = {0};
    struct cfg c;
    json_t *h;
    int rc;

    if ((rc = load_cfg(&c)))
        return rc;
    if (app_env_open(&env, &c, &e)) {
        log_error("health: %s", e.detail);
        memset(&env, 0, sizeof env);
        env.cfg = &c;
    }
    h = app_health_json(&env, NULL);
    print_json(h);
    json_decref(h);
    app_env_close(&env);
    cfg_free(&c);
    return 0;
}

/* ---- db init, link verify ---- */

/* mkdir -p of DB_PATH's directory, so a fresh checkout can `db init`. */
static void make_parent_dirs(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0750) && errno != EEXIST)
            log_warn("could not create directory %s: %s", buf, strerror(errno));
        *p = '/';
    }
}

static int open_db(const struct cfg *c, struct db **db, struct err *e)
{
    const struct db_ops *ops = db_backend_for(c);
    if (!ops)
        return err_set(e, ERR_CONFIG, NULL, "no database backend");
    return db_open(ops, db, c, e);
}

static int cmd_db(int argc, char **argv)
{
    bool demo = false;
    struct db *db = NULL;
    struct err e = {0};
    struct cfg c;
    int rc;

    if (argc < 3 || strcmp(argv[2], "init"))
        return usage_error("db: expected `db init [--demo]`%s", NULL);
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--demo"))
            demo = true;
        else
            return usage_error("db init: unexpected argument '%s'", argv[i]);
    }
    if ((rc = load_cfg(&c)))
        return rc;
    if (!c.db_host[0])
        make_parent_dirs(c.db_path);
    rc = open_db(&c, &db, &e);
    if (!rc)
        rc = db_migrate(db, &e);
    if (!rc && demo)
        rc = db_load_demo(db, &e);
    json_t *out = json_pack("{s:b, s:s, s:b}", "ok", rc == 0, "backend",
                            db ? db_backend_name(db)
                               : (db_backend_for(&c) ? db_backend_for(&c)->name : "none"),
                            "demo", demo);
    if (rc) {
        log_error("db init failed: %s", e.detail);
        json_object_set_new(out, "error", json_string(err_name(rc)));
    } else {
        log_info("database ready%s", demo ? " with demo data" : "");
    }
    print_json(out);
    json_decref(out);
    db_close(db);
    cfg_free(&c);
    return rc ? 1 : 0;
}

static int cmd_link(int argc, char **argv)
{
    struct db *db = NULL;
    struct err e = {0};
    json_t *out = NULL;
    struct cfg c;
    int rc;

    if (argc != 4 || strcmp(argv[2], "verify"))
        return usage_error("link: expected `link verify TOKEN`%s", NULL);
    if ((rc = load_cfg(&c)))
        return rc;
    rc = open_db(&c, &db, &e);
    if (!rc)
        rc = link_verify(db, argv[3], &out, &e);
    if (rc) {
        log_error("link verify: %s", e.detail);
        out = json_pack("{s:b, s:s}", "valid", 0, "reason", err_name(ERR_DB_UNAVAILABLE));
    }
    print_json(out);
    rc = json_is_true(json_object_get(out, "valid")) ? 0 : EXIT_FAILED;
    json_decref(out);
    db_close(db);
    cfg_free(&c);
    return rc;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* JSON lines survive a sanitizer exit */
    if (argc < 2)
        return usage(stderr), EXIT_USAGE;
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help"))
        return usage(stdout), 0;
    if (!strcmp(cmd, "serve"))
        return cmd_serve(argc, argv);
    if (!strcmp(cmd, "action"))
        return cmd_action(argc, argv);
    if (!strcmp(cmd, "actions"))
        return argc == 2 ? cmd_actions() : usage_error("actions takes no arguments%s", NULL);
    if (!strcmp(cmd, "health"))
        return argc == 2 ? cmd_health() : usage_error("health takes no arguments%s", NULL);
    if (!strcmp(cmd, "db"))
        return cmd_db(argc, argv);
    if (!strcmp(cmd, "link"))
        return cmd_link(argc, argv);
    return usage_error("unknown command '%s'", cmd);
}
