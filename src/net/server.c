/*
 * server.c - `voice-ws serve`: the lws context, its one vhost and protocol
 * table, the worker pool wiring, signals and the drain on SIGTERM.
 *
 * Owns: struct srv (created here, passed to every callback through the
 * context user pointer), the main loop, the pool's wake/done plumbing,
 * provider host resolution (on workers, cached) and the periodic tick.
 * Must not touch: HTTP routes (http.c), call sessions (call.c).
 *
 * Threads: everything runs on the main thread, which is the loop thread,
 * except the DNS job's run callback (worker) and the signal handler, which
 * only sets a flag and wakes the loop.
 */
#include "net/server.h"

#include "core/app.h"
#include "core/cfg.h"
#include "core/err.h"
#include "core/util.h"
#include "net/internal.h"
#include "net/twilio.h"
#include "providers/gemini_live.h"
#include "providers/provider.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "server"
#include "core/log.h"

#define DNS_TTL_MS (60 * 1000.0)
#define TICK_US (15 * LWS_USEC_PER_SEC)

/* The signal handler's only way to reach the loop (one server per process). */
static struct srv *volatile sig_srv;

struct net_msg *net_msg_new(enum net_msg_kind kind, size_t len)
{
    struct net_msg *m = malloc(sizeof *m + LWS_PRE + len + 1);
    if (!m)
        return NULL;
    m->next = NULL;
    m->kind = kind;
    m->bytes = 0;
    m->item = 0;
    m->len = len;
    return m;
}

int net__submit(struct srv *s, struct pool_job *j)
{
    if (!s->pool)
        return ERR_BUSY; /* shutting down */
    int rc = pool_submit(s->pool, j);
    if (rc)
        log_warn("work queue full (%d pending): job refused", pool_pending(s->pool));
    return rc;
}

/* ---- wake + signals ---- */

static void wake_loop(void *arg)
{
    struct srv *s = arg;
    lws_cancel_service(s->ctx);
}

static void on_signal(int sig)
{
    (void)sig;
    struct srv *s = sig_srv;
    if (s) {
        s->got_signal = s->got_signal < 2 ? s->got_signal + 1 : 2; /* a second one: now */
        lws_cancel_service(s->ctx);
    }
}

static void drain_deadline(lws_sorted_usec_list_t *sul)
{
    struct srv *s = lws_container_of(sul, struct srv, sul_drain);
    log_warn("drain: DRAIN_SECONDS=%d passed with %d calls active; ending them",
             s->cfg->drain_seconds, s->calls_active);
    net__calls_end_all(s, "shutdown");
    s->stop = true;
}

static void start_drain(struct srv *s)
{
    s->draining = true;
    net__calls_drop_failed(s);
    int pending = net__calls_count(s);
    if (!s->calls) {
        log_info("shutdown requested: no active calls; exiting");
        s->stop = true;
        return;
    }
    log_info("shutdown requested: not accepting new calls; %d active, %d pre-warmed; waiting "
             "up to %d s (DRAIN_SECONDS)",
             s->calls_active, pending - s->calls_active, s->cfg->drain_seconds);
    lws_sul_schedule(s->ctx, 0, &s->sul_drain, drain_deadline,
                     (lws_usec_t)s->cfg->drain_seconds * LWS_USEC_PER_SEC);
}

void net__maybe_exit(struct srv *s)
{
    if (s->draining && !s->calls && !s->stop) {
        log_info("drain: no calls left; exiting");
        s->stop = true;
        lws_cancel_service(s->ctx);
    }
}

/* ---- provider host resolution (workers; DNS blocks) ---- */

struct dns_job {
    struct pool_job base;
    struct srv *s;
    int idx;
    char host[256];
    char addr[64]; /* "" = failed */
};

static void dns_run(struct pool_job *j)
{
    struct dns_job *d = (struct dns_job *)j;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    d->addr[0] = '\0';
    if (getaddrinfo(d->host, NULL, &hints, &res) || !res)
        return;
    /* Prefer IPv4: the bridge hosts are reachable over it everywhere we run. */
    struct addrinfo *pick = res;
    for (struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            pick = a;
            break;
        }
    void *ad = pick->ai_family == AF_INET
                   ? (void *)&((struct sockaddr_in *)pick->ai_addr)->sin_addr
                   : (void *)&((struct sockaddr_in6 *)pick->ai_addr)->sin6_addr;
    inet_ntop(pick->ai_family, ad, d->addr, sizeof d->addr);
    freeaddrinfo(res);
}

static void dns_done(struct pool_job *j)
{
    struct dns_job *d = (struct dns_job *)j;
    struct srv *s = d->s;
    struct net_dns *c = &s->dns[d->idx];
    c->resolving = false;
    if (d->addr[0]) {
        util_strlcpy(c->addr, d->addr, sizeof c->addr);
        c->expires_ms = util_mono_ms() + DNS_TTL_MS;
        log_debug("resolved %s -> %s", c->host, c->addr);
    } else {
        log_warn("could not resolve provider host %s", c->host);
    }
    if (!s->stop)
        net__calls_dns_ready(s, d->idx);
    free(d);
}

void net__dns_refresh(struct srv *s, int idx)
{
    struct net_dns *c = &s->dns[idx];
    if (!c->host[0] || c->numeric || c->resolving || s->stop)
        return;
    if (c->addr[0] && util_mono_ms() < c->expires_ms - DNS_TTL_MS / 2)
        return;
    struct dns_job *d = calloc(1, sizeof *d);
    if (!d)
        return;
    d->base.run = dns_run;
    d->base.done = dns_done;
    d->s = s;
    d->idx = idx;
    util_strlcpy(d->host, c->host, sizeof d->host);
    if (net__submit(s, &d->base)) {
        free(d);
        return;
    }
    c->resolving = true;
}

static void dns_init(struct srv *s, int idx, const char *url)
{
    struct net_dns *c = &s->dns[idx];
    char hp[256];
    if (!url || !*url || tw_url_host(url, hp, sizeof hp))
        return;
    if (hp[0] == '[') { /* [v6]:port */
        char *e = strchr(hp, ']');
        if (!e)
            return;
        *e = '\0';
        util_strlcpy(c->host, hp + 1, sizeof c->host);
    } else {
        char *colon = strchr(hp, ':');
        if (colon)
            *colon = '\0';
        util_strlcpy(c->host, hp, sizeof c->host);
    }
    unsigned char tmp[16];
    c->numeric = inet_pton(AF_INET, c->host, tmp) == 1 || inet_pton(AF_INET6, c->host, tmp) == 1;
    if (c->numeric)
        util_strlcpy(c->addr, c->host, sizeof c->addr);
}

static void tick(lws_sorted_usec_list_t *sul)
{
    struct srv *s = lws_container_of(sul, struct srv, sul_tick);
    for (int i = 0; i < NET_PROV_N; i++)
        if (s->provs[i] && s->provs[i]->configured(s->cfg))
            net__dns_refresh(s, i);
    lws_sul_schedule(s->ctx, 0, &s->sul_tick, tick, TICK_US);
}

/* ---- lws plumbing ---- */

static void lws_log_emit(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    log_write(level == LLL_ERR ? LOG_WARN : LOG_DEBUG, "lws", "%.*s", (int)n, line);
}

static const struct lws_protocol_vhost_options pvo_default = {NULL, NULL, "default", "1"};
static const struct lws_protocol_vhost_options pvo_media = {NULL, &pvo_default, "media", ""};

static void build_protocols(struct srv *s)
{
    int n = 0;
    s->protocols[n++] = (struct lws_protocols){
        .name = "http",
        .callback = net__http_cb,
        .per_session_data_size = net__http_pss_size(),
    };
    s->protocols[n++] = (struct lws_protocols){
        .name = "media",
        .callback = net__media_cb,
        .per_session_data_size = net__media_pss_size(),
        .rx_buffer_size = 512, /* a media message is ~400 B; longer ones (start) are reassembled */
        /* One send() may take a whole outgoing message (agent audio is up to ~1.4 KB). Left 0,
         * lws caps each send at rx_buffer_size + 20 and buffers the rest, so every agent audio
         * message would leave a tail: no direct write for the next one (wsout.h), a POLLOUT
         * round per piece. Costs no memory: lws only copies a tail the kernel did not take. */
        .tx_packet_size = 4096,
    };
    for (int i = 0; i < NET_PROV_N; i++)
        if (s->provs[i] && s->provs[i]->protocol)
            s->protocols[n++] = *s->provs[i]->protocol;
    s->protocols[n] = (struct lws_protocols){0};
}

static int make_context(struct srv *s, int port, struct err *e)
{
    lws_set_log_level(LLL_ERR, lws_log_emit);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.user = s;
    info.max_http_header_data = 4096; /* bigger request headers are refused by lws */
    info.timeout_secs = 10;           /* slow clients: handshake/body stalls */
    info.keepalive_timeout = 10;
    s->ctx = evloop_create(&s->ev, &info); /* lws on our libuv loop (net/evloop.h) */
    if (!s->ctx)
        return err_set(e, ERR_INTERNAL, NULL, "lws_create_context failed");

    build_protocols(s);
    info.port = port;
    info.protocols = s->protocols;
    info.pvo = &pvo_media;
    info.vhost_name = "voice-ws";
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    s->vh = lws_create_vhost(s->ctx, &info);
    if (!s->vh)
        return err_set(e, ERR_IO, NULL, "cannot listen on port %d (in use?)", port);
    return 0;
}

/* ---- setup ---- */

static void set_public_url(struct srv *s)
{
    const char *pu = s->cfg->public_url;
    if (pu && *pu) {
        snprintf(s->sig_url, sizeof s->sig_url, "%s/incoming-call", pu);
        /* host plus any path prefix ("https://h/voice" -> "h/voice"): a proxy that maps a
         * prefix onto this server gets wss://h/voice/media-stream */
        const char *hp = strstr(pu, "://");
        util_strlcpy(s->public_host, hp ? hp + 3 : "", sizeof s->public_host);
        size_t n = strcspn(s->public_host, "?#");
        s->public_host[n] = '\0';
        while (n && s->public_host[n - 1] == '/')
            s->public_host[--n] = '\0';
    }
}

static int set_token_key(struct srv *s, struct err *e)
{
    const char *ls = s->cfg->link_secret;
    if (ls && *ls) {
        s->token_key = (const unsigned char *)ls; /* the whole secret, however long */
        s->token_key_len = strlen(ls);
        return 0;
    }
    /* Development without LINK_SECRET: a per-process key (tokens die with the process). */
    if (util_random(s->token_rand, sizeof s->token_rand))
        return err_set(e, ERR_INTERNAL, NULL, "no random bytes for the stream token key");
    s->token_key = s->token_rand;
    s->token_key_len = sizeof s->token_rand;
    log_warn("LINK_SECRET is not set: stream tokens use a random per-process key (development "
             "only; a second instance could not accept this one's streams)");
    return 0;
}

static void pick_providers(struct srv *s, const struct srv_opts *o)
{
    s->provs[0] = &prov_openai_ops;
    s->provs[1] = &prov_gemini_ops;
    s->provider_sel = o && o->provider >= 0 ? o->provider : (int)s->cfg->voice_provider;
    for (int i = 0; i < NET_PROV_N; i++)
        s->pstate[i].state = "unknown";
    dns_init(s, 0, s->cfg->openai_realtime_url);
    dns_init(s, 1, s->cfg->gemini_live_url);
}

static void print_banner(struct srv *s, int port)
{
    int first = net__provider_first(s);
    log_info("voice-ws listening on port %d; provider=%s (next call: %s); database=%s; sms=%s",
             port, cfg_provider_name((enum cfg_provider)s->provider_sel),
             first >= 0 ? s->provs[first]->name : "none", s->cfg->db_host[0] ? "mysql" : "sqlite",
             s->cfg->enable_real_sms ? "live" : "mock");
    if (s->sig_url[0])
        log_info("next: point your Twilio number's Voice webhook (A call comes in -> Webhook, "
                 "HTTP POST) at %s ; TLS must terminate at %s and forward to this port",
                 s->sig_url, s->public_host);
    else
        log_info("next: set PUBLIC_URL to the https address Twilio reaches (e.g. an ngrok or "
                 "proxy URL), then point the number's Voice webhook (HTTP POST) at "
                 "PUBLIC_URL/incoming-call");
    if (!s->cfg->twilio_auth_token[0])
        log_warn("TWILIO_AUTH_TOKEN is not set: webhook signatures are NOT checked "
                 "(development only)");
    if (first < 0)
        log_warn("no voice provider is configured (OPENAI_API_KEY / GEMINI_API_KEY): calls "
                 "will hear the fallback message and get a callback row");
    log_info("try it locally: curl -s http://127.0.0.1:%d/health", port);
}

static void teardown(struct srv *s)
{
    if (s->ctx) {
        lws_sul_cancel(&s->sul_drain);
        lws_sul_cancel(&s->sul_tick);
        net__calls_end_all(s, "shutdown");
    }
    /* Before the context goes: workers wake the loop through it, and done callbacks
     * may still answer HTTP requests. Finishes queued db writes (the call rows). */
    pool_free(s->pool);
    s->pool = NULL;
    sig_srv = NULL;
    s->ctx = NULL; /* destroyed with its loop: */
    if (evloop_destroy(&s->ev))
        log_warn("event loop: libwebsockets or the loop did not shut down cleanly");
    if (s->env_open)
        app_env_close(&s->env);
    free(s->instructions);
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int srv_run(const struct cfg *cfg, const struct srv_opts *o)
{
    struct srv *s = calloc(1, sizeof *s);
    struct err e = {0};
    int port = o && o->port > 0 ? o->port : cfg->port;
    if (!s)
        return 1;
    s->cfg = cfg;
    s->next_id = 1;
    s->next_req_id = 1;
    set_public_url(s);
    pick_providers(s, o);
    /* Gemini settings Google would refuse (e.g. affective dialog on 3.x) stop the start. */
    if (s->provider_sel != CFG_PROV_OPENAI && prov_gemini_ops.configured(cfg) &&
        prov_gemini_check_config(cfg, &e))
        goto fail;
    if (set_token_key(s, &e) || app_env_open(&s->env, cfg, &e))
        goto fail;
    s->env_open = true;
    s->instructions = prov_instructions(cfg);
    if (make_context(s, port, &e))
        goto fail;
    if (pool_new(&s->pool, cfg->workers, cfg->queue_max, wake_loop, s, &e))
        goto fail;
    sig_srv = s;
    install_signals();
    lws_sul_schedule(s->ctx, 0, &s->sul_tick, tick, 1);
    print_banner(s, port);

    while (!s->stop) {
        evloop_turn(&s->ev);
        if (s->got_signal && !s->draining)
            start_drain(s);
        if (s->got_signal >= 2 && !s->stop) {
            log_warn("second signal: ending %d active calls now", s->calls_active);
            net__calls_end_all(s, "shutdown");
            s->stop = true;
        }
        if (s->got_signal && !s->signal_seen) {
            /* timers and kills set here, outside any lws callback, are noticed by lws on
             * libuv only at its next event: give it one (tests/test_wsout.c found this) */
            s->signal_seen = true;
            lws_cancel_service(s->ctx);
        }
    }
    teardown(s);
    log_info("stopped");
    free(s);
    return 0;

fail:
    log_error("serve: %s", e.detail[0] ? e.detail : err_name(e.code));
    teardown(s);
    free(s);
    return 1;
}
