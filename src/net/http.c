/*
 * http.c - the HTTP routes: /health, /metrics, /incoming-call (Twilio
 * webhook), /actions/NAME, /links/verify; 404/405/413 for the rest.
 *
 * Owns: one struct http_req per connection (lws per-session data), request
 * bodies (capped), responses (written in two WRITEABLE steps: headers, then
 * body), and the jobs that do blocking work (health ping, actions, link
 * checks) on the pool. A job carries the request id, never the wsi; the done
 * callback finds the request again (it may have closed meanwhile).
 * Must not touch: call sessions (call.c) beyond net__call_prewarm.
 *
 * Threads: loop thread, except the job run callbacks (workers), which see
 * only their job.
 */
#include "actions/links.h"
#include "core/app.h"
#include "core/cfg.h"
#include "core/err.h"
#include "core/norm.h"
#include "core/util.h"
#include "db/db.h"
#include "net/internal.h"
#include "net/twilio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "http"
#include "core/log.h"

#define HTTP_BODY_MAX (64 * 1024) /* webhook and action bodies; bigger -> 413 */
#define HTTP_BODY_TIMEOUT_S 10    /* a slow client must finish its body by then */
#define HTTP_JOB_TIMEOUT_S 30     /* worker answer deadline before the socket is dropped */
#define HTTP_DB_WAIT_MS 2000

enum route { R_NONE = 0, R_HEALTH, R_METRICS, R_INCOMING, R_ACTION, R_LINK };
enum method { M_OTHER = 0, M_GET, M_POST };
enum wstate { W_IDLE = 0, W_HEADERS, W_BODY, W_WAITING };

struct http_req {
    struct http_req *next; /* srv->reqs while a job runs for it */
    bool linked;
    uint64_t id;
    struct lws *wsi;
    struct srv *s;
    enum route route;
    enum method method;
    char action[64]; /* /actions/NAME */
    char *body;      /* request body, NUL-terminated, <= HTTP_BODY_MAX */
    size_t blen;
    bool too_big;
    bool responded; /* a response is queued or sent */
    /* response */
    int status;
    const char *ctype;
    const char *extra_hdr_name, *extra_hdr_val;
    unsigned char *resp; /* LWS_PRE + body */
    size_t resp_len;
    enum wstate ws;
    bool close_after;
};

size_t net__http_pss_size(void)
{
    return sizeof(struct http_req);
}

static struct srv *srv_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

/* ---- responses ---- */

static void unlink_req(struct http_req *r)
{
    if (!r->linked)
        return;
    for (struct http_req **pp = &r->s->reqs; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    r->linked = false;
    r->next = NULL;
}

static void req_reset(struct http_req *r)
{
    unlink_req(r);
    free(r->body);
    free(r->resp);
    r->body = NULL;
    r->resp = NULL;
}

static void respond(struct http_req *r, int status, const char *ctype, const char *body, size_t len)
{
    free(r->resp);
    r->resp = malloc(LWS_PRE + len + 1);
    if (!r->resp) {
        len = 0;
        r->resp = malloc(LWS_PRE + 1);
        status = 500;
        if (!r->resp) { /* nothing we can send: drop the connection */
            r->close_after = true;
            lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
            return;
        }
    }
    if (len)
        memcpy(r->resp + LWS_PRE, body, len);
    r->resp_len = len;
    r->status = status;
    r->ctype = ctype;
    r->ws = W_HEADERS;
    r->responded = true;
    lws_callback_on_writable(r->wsi);
}

static void respond_text(struct http_req *r, int status, const char *text)
{
    respond(r, status, "text/plain; charset=utf-8", text, strlen(text));
}

static void respond_json(struct http_req *r, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (!s) {
        respond_text(r, 500, "internal error\n");
        return;
    }
    size_t n = strlen(s);
    char *nl = realloc(s, n + 2);
    if (nl) { /* a trailing newline, for curl users */
        s = nl;
        s[n++] = '\n';
    }
    respond(r, status, "application/json", s, n);
    free(s);
}

static int write_headers(struct lws *wsi, struct http_req *r)
{
    unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
                                       *end = buf + sizeof buf - 1;
    if (lws_add_http_common_headers(wsi, (unsigned)r->status, r->ctype, r->resp_len, &p, end))
        return -1;
    if (r->extra_hdr_name &&
        lws_add_http_header_by_name(wsi, (const unsigned char *)r->extra_hdr_name,
                                    (const unsigned char *)r->extra_hdr_val,
                                    (int)strlen(r->extra_hdr_val), &p, end))
        return -1;
    if (r->close_after && lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
                                                       (const unsigned char *)"close", 5, &p, end))
        return -1;
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    r->ws = W_BODY;
    lws_callback_on_writable(wsi);
    return 0;
}

static int write_body(struct lws *wsi, struct http_req *r)
{
    int n = lws_write(wsi, r->resp + LWS_PRE, r->resp_len, LWS_WRITE_HTTP_FINAL);
    r->ws = W_IDLE;
    free(r->resp);
    r->resp = NULL;
    if (n < (int)r->resp_len || r->close_after)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ---- jobs ---- */

enum job_kind { J_HEALTH, J_ACTION, J_LINK };

struct http_job {
    struct pool_job base;
    struct srv *s;
    uint64_t req_id;
    enum job_kind kind;
    struct app_health_extra x; /* J_HEALTH (strings are static) */
    char name[64];             /* J_ACTION */
    char caller[24];
    json_t *args;    /* J_ACTION, owned */
    char token[256]; /* J_LINK */
    /* results */
    int status;
    json_t *out; /* owned */
    int success, sms_sent;
    double ms;
    char code[48];
};

static void job_run(struct pool_job *pj)
{
    struct http_job *j = (struct http_job *)pj;
    struct err e = {0};
    switch (j->kind) {
    case J_HEALTH:
        j->out = app_health_json(&j->s->env, &j->x);
        j->status = j->out ? 200 : 500;
        break;
    case J_ACTION: {
        struct act_session sess;
        char sid[48];
        snprintf(sid, sizeof sid, "http-%llu", (unsigned long long)j->req_id);
        act_session_init(&sess, j->caller, sid, "http", 0);
        j->out = act_execute(&j->s->env, &sess, j->name, j->args);
        act_session_cleanup(&sess);
        net__envelope_stats(j->out, &j->success, &j->ms, &j->sms_sent, j->code, sizeof j->code);
        j->status = j->out ? 200 : 500;
        break;
    }
    case J_LINK: {
        struct db *db = NULL;
        if (db_pool_get(j->s->env.pool, HTTP_DB_WAIT_MS, &db, &e) == 0) {
            int rc = link_verify(db, j->token, &j->out, &e);
            db_pool_put(j->s->env.pool, db, rc == ERR_DB_UNAVAILABLE);
        }
        if (!j->out) {
            log_warn("link verify failed: %s", e.detail);
            j->out = json_pack("{s:b,s:s}", "valid", 0, "reason", "unavailable");
            j->status = 503;
        } else {
            j->status = 200;
        }
        break;
    }
    }
}

static struct http_req *find_req(struct srv *s, uint64_t id)
{
    for (struct http_req *r = s->reqs; r; r = r->next)
        if (r->id == id)
            return r;
    return NULL;
}

static void job_done(struct pool_job *pj)
{
    struct http_job *j = (struct http_job *)pj;
    struct srv *s = j->s;
    if (j->kind == J_ACTION && j->out)
        net__metrics_action(s, j->name, j->success, j->ms, j->sms_sent);
    struct http_req *r = find_req(s, j->req_id);
    if (r) {
        unlink_req(r);
        lws_set_timeout(r->wsi, NO_PENDING_TIMEOUT, 0);
        respond_json(r, j->status, j->out);
    }
    json_decref(j->out);
    json_decref(j->args);
    free(j);
}

/* Hand j to the pool; the request waits for it. 0, or a 503 was sent. */
static int submit_job(struct http_req *r, struct http_job *j)
{
    j->base.run = job_run;
    j->base.done = job_done;
    j->s = r->s;
    j->req_id = r->id;
    if (net__submit(r->s, &j->base)) {
        json_decref(j->args);
        free(j);
        r->extra_hdr_name = "retry-after:";
        r->extra_hdr_val = "1";
        respond_text(r, 503, "busy, try again\n");
        return -1;
    }
    r->next = r->s->reqs;
    r->s->reqs = r;
    r->linked = true;
    r->ws = W_WAITING;
    lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, HTTP_JOB_TIMEOUT_S);
    return 0;
}

/* ---- routes ---- */

static void do_health(struct http_req *r)
{
    struct http_job *j = calloc(1, sizeof *j);
    if (!j) {
        respond_text(r, 500, "internal error\n");
        return;
    }
    j->kind = J_HEALTH;
    net__health_extra(r->s, &j->x);
    submit_job(r, j);
}

static void do_metrics(struct http_req *r)
{
    size_t n = 0;
    char *text = net__metrics_render(r->s, &n);
    if (!text) {
        respond_text(r, 500, "internal error\n");
        return;
    }
    respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, n);
    free(text);
}

static void do_link(struct http_req *r)
{
    char buf[300];
    const char *tok = lws_get_urlarg_by_name(r->wsi, "token=", buf, (int)sizeof buf);
    if (!tok || !*tok || strlen(tok) >= 256) {
        respond_text(r, 400, "missing or malformed token\n");
        return;
    }
    struct http_job *j = calloc(1, sizeof *j);
    if (!j) {
        respond_text(r, 500, "internal error\n");
        return;
    }
    j->kind = J_LINK;
    util_strlcpy(j->token, tok, sizeof j->token);
    submit_job(r, j);
}

static bool bearer_ok(struct http_req *r)
{
    char h[512];
    const char *want = r->s->cfg->actions_api_token;
    if (lws_hdr_copy(r->wsi, h, (int)sizeof h, WSI_TOKEN_HTTP_AUTHORIZATION) <= 0)
        return false;
    if (strncmp(h, "Bearer ", 7))
        return false;
    /* Compare digests so the comparison time depends on neither length nor content. */
    char a[65], b[65];
    util_sha256_hex(h + 7, strlen(h + 7), a);
    util_sha256_hex(want, strlen(want), b);
    return util_ct_equal(a, b, 64);
}

static void do_action(struct http_req *r)
{
    json_error_t jerr;
    json_t *root = json_loadb(r->body ? r->body : "", r->blen, JSON_REJECT_DUPLICATES, &jerr);
    json_t *caller = root ? json_object_get(root, "caller") : NULL;
    json_t *args = root ? json_object_get(root, "arguments") : NULL;
    if (!root || !json_is_object(root) ||
        (caller && !json_is_string(caller) && !json_is_null(caller)) ||
        (args && !json_is_object(args) && !json_is_null(args))) {
        json_decref(root);
        respond_text(r, 400, "body must be {\"caller\":\"+44...\",\"arguments\":{...}}\n");
        return;
    }
    struct http_job *j = calloc(1, sizeof *j);
    if (!j) {
        json_decref(root);
        respond_text(r, 500, "internal error\n");
        return;
    }
    j->kind = J_ACTION;
    util_strlcpy(j->name, r->action, sizeof j->name);
    const char *cs = json_is_string(caller) ? json_string_value(caller) : "";
    if (*cs && norm_phone(cs, j->caller, sizeof j->caller)) {
        json_decref(root);
        free(j);
        respond_text(r, 400, "caller is not a phone number\n");
        return;
    }
    j->args = json_is_object(args) ? json_incref(args) : json_object();
    json_decref(root);
    submit_job(r, j);
}

static const char *header_host(struct http_req *r, char *buf, size_t sz)
{
    if (r->s->public_host[0])
        return r->s->public_host;
    if (lws_hdr_copy(r->wsi, buf, (int)sz, WSI_TOKEN_HOST) > 0)
        return buf;
    return "localhost";
}

static void respond_twiml_fallback(struct http_req *r, int status)
{
    char x[512];
    int n = tw_twiml_fallback(x, sizeof x);
    respond(r, status, "text/xml", x, (size_t)(n > 0 ? n : 0));
}

/* Signature check over PUBLIC_URL/incoming-call. Without PUBLIC_URL (development) the
 * URL is rebuilt from the Host header, https or http (Twilio accepts http webhooks). */
static bool webhook_signed(struct http_req *r, const struct tw_form *f)
{
    const char *tok = r->s->cfg->twilio_auth_token;
    if (!tok[0])
        return true;
    char sig[64] = "", url[1100], host[256];
    if (lws_hdr_custom_copy(r->wsi, sig, (int)sizeof sig, "x-twilio-signature:", 19) <= 0)
        sig[0] = '\0';
    if (r->s->sig_url[0])
        return tw_signature_valid(tok, r->s->sig_url, f, sig);
    const char *h = header_host(r, host, sizeof host);
    snprintf(url, sizeof url, "https://%s/incoming-call", h);
    if (tw_signature_valid(tok, url, f, sig))
        return true;
    snprintf(url, sizeof url, "http://%s/incoming-call", h);
    return tw_signature_valid(tok, url, f, sig);
}

static void do_incoming(struct http_req *r)
{
    struct srv *s = r->s;
    struct tw_form f;
    s->m.webhooks_total++;
    if (s->draining) {
        log_warn("webhook refused: shutting down (503 + fallback TwiML)");
        respond_twiml_fallback(r, 503);
        return;
    }
    if (tw_form_parse(r->body ? r->body : "", r->blen, &f)) {
        tw_form_free(&f);
        s->m.webhooks_rejected++;
        respond_text(r, 400, "malformed form body\n");
        return;
    }
    if (!webhook_signed(r, &f)) {
        s->m.webhooks_rejected++;
        log_warn("webhook refused: X-Twilio-Signature does not match %s (check PUBLIC_URL)",
                 s->sig_url[0] ? s->sig_url : "https://<Host>/incoming-call");
        tw_form_free(&f);
        respond_text(r, 403, "invalid signature\n");
        return;
    }
    const char *sid = tw_form_get(&f, "CallSid");
    const char *from_raw = tw_form_get(&f, "From");
    if (!tw_call_sid_ok(sid)) {
        s->m.webhooks_rejected++;
        tw_form_free(&f);
        respond_text(r, 400, "missing or malformed CallSid\n");
        return;
    }
    char from[24], token[TW_TOKEN_MAX], host[256], xml[2048];
    tw_caller_from(from_raw, from, sizeof from);
    if (net__provider_first(s) < 0) {
        /* Nobody to talk to: say sorry now (no stream) and book the callback. */
        respond_twiml_fallback(r, 200);
        net__call_unavailable(s, sid, from);
        tw_form_free(&f);
        return;
    }
    const char *from_param = from[0] ? from : "withheld";
    long long expiry = util_now() + s->cfg->stream_token_ttl_s;
    int n = -1;
    if (!tw_stream_token(s->token_key, s->token_key_len, sid, from_param, expiry, token,
                         sizeof token))
        n = tw_twiml_connect(xml, sizeof xml, header_host(r, host, sizeof host), from_param, sid,
                             token);
    if (n < 0) {
        tw_form_free(&f);
        respond_twiml_fallback(r, 200);
        return;
    }
    log_info("webhook call=%s from=%s: answered with <Connect><Stream>", sid,
             from[0] ? from : "withheld");
    respond(r, 200, "text/xml", xml, (size_t)n);
    net__call_prewarm(s, sid, from);
    tw_form_free(&f);
}

static void dispatch(struct http_req *r)
{
    switch (r->route) {
    case R_HEALTH:
        do_health(r);
        break;
    case R_METRICS:
        do_metrics(r);
        break;
    case R_INCOMING:
        do_incoming(r);
        break;
    case R_ACTION:
        do_action(r);
        break;
    case R_LINK:
        do_link(r);
        break;
    case R_NONE:
        respond_text(r, 404, "not found\n");
        break;
    }
}

/* ---- request start ---- */

static enum route route_of(struct http_req *r, const char *path)
{
    if (!strcmp(path, "/health"))
        return R_HEALTH;
    if (!strcmp(path, "/metrics"))
        return R_METRICS;
    if (!strcmp(path, "/incoming-call"))
        return R_INCOMING;
    if (!strcmp(path, "/links/verify"))
        return R_LINK;
    if (!strncmp(path, "/actions/", 9) && r->s->cfg->actions_api_token[0]) {
        const char *name = path + 9;
        size_t n = strlen(name);
        if (n == 0 || n >= sizeof r->action ||
            strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
            return R_NONE;
        memcpy(r->action, name, n + 1);
        return R_ACTION;
    }
    return R_NONE;
}

static bool method_allowed(enum route rt, enum method m)
{
    switch (rt) {
    case R_HEALTH:
        return m == M_GET || m == M_POST;
    case R_METRICS:
        return m == M_GET;
    case R_LINK:
        return m == M_GET;
    case R_INCOMING:
        return m == M_POST;
    case R_ACTION:
        return m == M_POST;
    case R_NONE:
        return true;
    }
    return false;
}

static long content_length(struct lws *wsi)
{
    char cl[32];
    if (lws_hdr_copy(wsi, cl, (int)sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
        return -1;
    char *end;
    long v = strtol(cl, &end, 10);
    return *end || v < 0 ? HTTP_BODY_MAX + 1 : v;
}

static int on_http(struct lws *wsi, struct http_req *r, const char *path)
{
    req_reset(r);
    memset(r, 0, sizeof *r);
    r->wsi = wsi;
    r->s = srv_of(wsi);
    r->id = r->s->next_req_id++;
    r->method = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI)    ? M_GET
                : lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) ? M_POST
                                                                : M_OTHER;
    r->route = route_of(r, path);
    if (!method_allowed(r->route, r->method)) {
        r->close_after = r->method != M_GET;
        r->extra_hdr_name = "allow:";
        r->extra_hdr_val = r->route == R_HEALTH                          ? "GET, POST"
                           : r->route == R_METRICS || r->route == R_LINK ? "GET"
                                                                         : "POST";
        respond_text(r, 405, "method not allowed\n");
        return 0;
    }
    if (r->route == R_ACTION && !bearer_ok(r)) {
        log_warn("POST /actions/%s refused: bad or missing bearer token", r->action);
        r->close_after = true;
        r->extra_hdr_name = "www-authenticate:";
        r->extra_hdr_val = "Bearer";
        respond_text(r, 401, "unauthorized\n");
        return 0;
    }
    long cl = content_length(wsi);
    if (cl > HTTP_BODY_MAX) {
        r->too_big = true;
        r->close_after = true;
        log_warn("%s refused: body of %ld bytes is over %d", path, cl, HTTP_BODY_MAX);
        respond_text(r, 413, "request body too large\n");
        return 0;
    }
    bool wants_body = (r->route == R_INCOMING || r->route == R_ACTION) && cl != 0;
    if (r->method == M_POST && !wants_body && cl > 0)
        r->close_after = true; /* a body we don't read: don't reuse the connection */
    if (!wants_body) {
        dispatch(r);
        return 0;
    }
    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, HTTP_BODY_TIMEOUT_S);
    return 0;
}

static int on_body(struct http_req *r, const char *in, size_t len)
{
    if (r->too_big || r->responded)
        return 0;
    if (r->blen + len > HTTP_BODY_MAX) {
        r->too_big = true;
        r->close_after = true;
        free(r->body);
        r->body = NULL;
        respond_text(r, 413, "request body too large\n");
        return 0;
    }
    char *nb = realloc(r->body, r->blen + len + 1);
    if (!nb)
        return -1;
    r->body = nb;
    memcpy(r->body + r->blen, in, len);
    r->blen += len;
    r->body[r->blen] = '\0';
    return 0;
}

int net__http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                 size_t len)
{
    struct http_req *r = user;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
        /* Broadcast to every protocol: only this one drains the pool. */
        struct srv *s = lws_context_user(lws_get_context(wsi));
        if (s && s->pool)
            pool_run_done(s->pool);
        return 0;
    }
    case LWS_CALLBACK_HTTP:
        return on_http(wsi, r, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_BODY:
        return on_body(r, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
        if (!r->responded)
            dispatch(r);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!r || !r->s)
            return 0;
        if (r->ws == W_HEADERS)
            return write_headers(wsi, r) ? -1 : 0;
        if (r->ws == W_BODY)
            return write_body(wsi, r);
        return 0;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (r && r->s)
            req_reset(r);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}
