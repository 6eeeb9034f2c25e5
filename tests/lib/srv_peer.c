/*
 * srv_peer.c - run the server, the Twilio stand-in and HTTP requests from C
 * tests (see srv_peer.h). Test code only.
 */
#include "srv_peer.h"

#include "vwstest.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Every process started here, so a failed test's teardown can stop them. */
#define TRACK_MAX 64
static pid_t tracked[TRACK_MAX];
static char tracked_dir[TRACK_MAX][128];

void vt_peers_track(pid_t pid, const char *dir)
{
    for (int i = 0; i < TRACK_MAX; i++)
        if (tracked[i] == 0) {
            tracked[i] = pid;
            snprintf(tracked_dir[i], sizeof tracked_dir[i], "%s", dir ? dir : "");
            return;
        }
}

void vt_peers_untrack(pid_t pid)
{
    for (int i = 0; i < TRACK_MAX; i++)
        if (tracked[i] == pid) {
            tracked[i] = 0;
            tracked_dir[i][0] = '\0';
        }
}

int vt_peers_cleanup_all(void **state)
{
    (void)state;
    for (int i = 0; i < TRACK_MAX; i++) {
        if (tracked[i] > 0) {
            int st;
            kill(tracked[i], SIGKILL);
            waitpid(tracked[i], &st, 0);
            if (tracked_dir[i][0] && !getenv("VWS_KEEP_TMP"))
                vt_rmdir(tracked_dir[i]);
        }
        tracked[i] = 0;
        tracked_dir[i][0] = '\0';
    }
    return 0;
}

/* Children die with the test process (a killed test leaves no server behind). */
static void child_setup(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000.0 + t.tv_nsec / 1e6;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    size_t cap = 8192, len = 0;
    char *b = malloc(cap);
    size_t k;
    while ((k = fread(b + len, 1, cap - len - 1, f)) > 0) {
        len += k;
        if (cap - len < 2)
            b = realloc(b, cap *= 2);
    }
    b[len] = '\0';
    fclose(f);
    return b;
}

/* env: PATH/HOME/sanitizer options from ours, then extra. */
static int build_env(char **envp, int max, const char *const *extra)
{
    static const char *const pass[] = {
        "PATH", "HOME", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TMPDIR", NULL};
    int n = 0;
    for (const char *const *p = pass; *p; p++) {
        const char *v = getenv(*p);
        if (v && n < max - 1) {
            size_t l = strlen(*p) + strlen(v) + 2;
            envp[n] = malloc(l);
            snprintf(envp[n++], l, "%s=%s", *p, v);
        }
    }
    for (const char *const *p = extra; p && *p && n < max - 1; p++)
        envp[n++] = strdup(*p);
    envp[n] = NULL;
    return n;
}

static void free_env(char **envp, int n)
{
    for (int i = 0; i < n; i++)
        free(envp[i]);
}

int vt_srv_start(struct vt_srv *s, const char *const *env)
{
    char *envp[128], portv[32], dbv[256];
    memset(s, 0, sizeof *s);
    char *d = vt_tmpdir();
    snprintf(s->dir, sizeof s->dir, "%s", d);
    free(d);
    snprintf(s->db_path, sizeof s->db_path, "%s/voice.db", s->dir);
    snprintf(s->err_path, sizeof s->err_path, "%s/stderr.txt", s->dir);
    s->port = vt_free_port();
    snprintf(portv, sizeof portv, "PORT=%d", s->port);
    snprintf(dbv, sizeof dbv, "DB_PATH=%s", s->db_path);

    const char *base[64];
    int nb = 0;
    bool has_db = false;
    for (const char *const *p = env; p && *p && nb < 61; p++) {
        base[nb++] = *p;
        if (!strncmp(*p, "DB_PATH=", 8)) { /* the caller's database (vt_db_fresh) */
            has_db = true;
            snprintf(s->db_path, sizeof s->db_path, "%s", *p + 8);
        }
    }
    base[nb++] = portv;
    if (!has_db)
        base[nb++] = dbv;
    base[nb] = NULL;

    struct vt_run r;
    const char *init[] = {vt_bin(), "db", "init", "--demo", NULL};
    if (vt_run(&r, s->dir, base, init, 60) || r.status != 0) {
        fprintf(stderr, "srv_peer: db init failed: %s\n", r.err ? r.err : "");
        vt_run_free(&r);
        return -1;
    }
    vt_run_free(&r);

    int n = build_env(envp, 128, base);
    pid_t pid = fork();
    if (pid == 0) {
        child_setup();
        int fe = open(s->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fo = open("/dev/null", O_WRONLY);
        if (fe >= 0)
            dup2(fe, 2);
        if (fo >= 0)
            dup2(fo, 1);
        if (chdir(s->dir))
            _exit(127);
        execle(vt_bin(), vt_bin(), "serve", (char *)NULL, envp);
        _exit(127);
    }
    free_env(envp, n);
    if (pid < 0)
        return -1;
    s->pid = pid;
    vt_peers_track(pid, s->dir);
    double until = now_ms() + 15000;
    while (now_ms() < until) {
        char *b = NULL;
        int st = vt_http(s->port, "GET", "/metrics", NULL, NULL, 0, &b);
        free(b);
        if (st == 200)
            return 0;
        int wst;
        if (waitpid(pid, &wst, WNOHANG) == pid) {
            vt_peers_untrack(pid);
            s->pid = 0;
            char *log = vt_srv_log(s);
            fprintf(stderr, "srv_peer: serve exited early:\n%s\n", log);
            free(log);
            return -1;
        }
        poll(NULL, 0, 50);
    }
    fprintf(stderr, "srv_peer: serve did not answer on port %d\n", s->port);
    vt_srv_stop(s, SIGKILL, 1000);
    return -1;
}

int vt_srv_wait(struct vt_srv *s, int timeout_ms)
{
    if (s->pid <= 0)
        return s->exit_status;
    double until = now_ms() + timeout_ms;
    int st;
    while (now_ms() < until) {
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            vt_peers_untrack(s->pid);
            s->pid = 0;
            s->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return s->exit_status;
        }
        poll(NULL, 0, 10);
    }
    return -1;
}

int vt_srv_stop(struct vt_srv *s, int sig, int timeout_ms)
{
    if (s->pid > 0) {
        kill(s->pid, sig);
        if (vt_srv_wait(s, timeout_ms) < 0) {
            kill(s->pid, SIGKILL);
            vt_srv_wait(s, 5000);
            s->exit_status = 128 + SIGKILL;
        }
    }
    return s->exit_status;
}

void vt_srv_cleanup(struct vt_srv *s)
{
    vt_srv_stop(s, SIGKILL, 2000);
    if (s->dir[0]) {
        if (getenv("VWS_KEEP_TMP"))
            fprintf(stderr, "srv_peer: kept %s\n", s->dir);
        else
            vt_rmdir(s->dir);
        s->dir[0] = '\0';
    }
}

char *vt_srv_log(const struct vt_srv *s)
{
    return slurp(s->err_path);
}

int vt_srv_log_wait(const struct vt_srv *s, const char *needle, int timeout_ms)
{
    double until = now_ms() + timeout_ms;
    do {
        char *l = vt_srv_log(s);
        int found = strstr(l, needle) != NULL;
        free(l);
        if (found)
            return 1;
        poll(NULL, 0, 25);
    } while (now_ms() < until);
    return 0;
}

/* ---- HTTP through libcurl ---- */

struct buf {
    char *p;
    size_t n;
};

static size_t on_data(char *d, size_t sz, size_t nm, void *arg)
{
    struct buf *b = arg;
    size_t k = sz * nm;
    char *np = realloc(b->p, b->n + k + 1);
    if (!np)
        return 0;
    b->p = np;
    memcpy(b->p + b->n, d, k);
    b->n += k;
    b->p[b->n] = '\0';
    return k;
}

int vt_http(int port, const char *method, const char *path, const char *const *headers,
            const char *body, size_t blen, char **resp_body)
{
    CURL *h = curl_easy_init();
    char url[512];
    struct buf b = {0};
    struct curl_slist *hl = NULL;
    long status = 0;
    if (!h)
        return 0;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    hl = curl_slist_append(hl, "Expect:");
    for (const char *const *p = headers; p && *p; p++)
        hl = curl_slist_append(hl, *p);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)blen);
    }
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    if (resp_body)
        *resp_body = b.p;
    else
        free(b.p);
    return (int)status;
}

/* ---- database ---- */

static int sql_first(const struct vt_srv *s, const char *sql, long long *iv, char **tv)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int found = 0;
    if (sqlite3_open_v2(s->db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW) {
            found = 1;
            if (iv)
                *iv = sqlite3_column_int64(st, 0);
            if (tv) {
                const unsigned char *t = sqlite3_column_text(st, 0);
                *tv = t ? strdup((const char *)t) : NULL;
            }
        } else if (!st) {
            fprintf(stderr, "srv_peer: sql error: %s (%s)\n", sqlite3_errmsg(db), sql);
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return found;
}

long long vt_srv_sql_int(const struct vt_srv *s, const char *sql)
{
    long long v = -1;
    return sql_first(s, sql, &v, NULL) ? v : -1;
}

char *vt_srv_sql_text(const struct vt_srv *s, const char *sql)
{
    char *t = NULL;
    return sql_first(s, sql, NULL, &t) ? t : NULL;
}

/* ---- Twilio stand-in ---- */

int vt_call_start(struct vt_call *c, const char *spec_json)
{
    char js[512];
    memset(c, 0, sizeof *c);
    snprintf(c->out_path, sizeof c->out_path, "/tmp/vws-call-%d-%ld.json", (int)getpid(),
             (long)(now_ms() * 1000) % 1000000000L);
    snprintf(js, sizeof js, "%s/tests/peers/twilio_caller.js", vt_src());
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        child_setup();
        int fo = open(c->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fo >= 0)
            dup2(fo, 1);
        execlp("node", "node", js, spec_json, (char *)NULL);
        _exit(127);
    }
    c->pid = pid;
    vt_peers_track(pid, NULL);
    return 0;
}

json_t *vt_call_wait(struct vt_call *c, int timeout_s)
{
    double until = now_ms() + timeout_s * 1000.0;
    int st;
    bool done = false;
    while (now_ms() < until) {
        if (waitpid(c->pid, &st, WNOHANG) == c->pid) {
            done = true;
            break;
        }
        poll(NULL, 0, 20);
    }
    if (!done) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, &st, 0);
    }
    vt_peers_untrack(c->pid);
    c->pid = 0;
    char *out = slurp(c->out_path);
    unlink(c->out_path);
    json_error_t e;
    json_t *j = done ? json_loads(out, 0, &e) : NULL;
    if (!j)
        fprintf(stderr, "srv_peer: twilio_caller gave no report: %s\n", out);
    free(out);
    return j;
}

json_t *vt_call_run(const char *spec_json, int timeout_s)
{
    struct vt_call c;
    if (vt_call_start(&c, spec_json))
        return NULL;
    return vt_call_wait(&c, timeout_s);
}

long long vt_jint(json_t *j, const char *dotted)
{
    char key[128];
    const char *p = dotted;
    while (j && *p) {
        size_t n = strcspn(p, ".");
        snprintf(key, sizeof key, "%.*s", (int)n, p);
        j = json_object_get(j, key);
        p += n;
        if (*p == '.')
            p++;
    }
    if (json_is_integer(j))
        return json_integer_value(j);
    if (json_is_real(j))
        return (long long)json_real_value(j);
    if (json_is_true(j))
        return 1;
    if (json_is_false(j))
        return 0;
    return -1;
}

pid_t vt_proc_start(const char *const *argv, const char *out_path)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        child_setup();
        int fo = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fo >= 0)
            dup2(fo, 1);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    vt_peers_track(pid, NULL);
    return pid;
}

void vt_proc_stop(pid_t pid)
{
    int st;
    if (pid <= 0)
        return;
    vt_peers_untrack(pid);
    kill(pid, SIGTERM);
    double until = now_ms() + 3000;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (now_ms() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return;
        }
        poll(NULL, 0, 10);
    }
}
