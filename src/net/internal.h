/*
 * internal.h - declarations shared by the files of src/net only (server.c,
 * http.c, call.c, metrics.c). Never included from outside src/net.
 *
 * Everything here lives on the loop thread unless a comment says otherwise.
 */
#ifndef VWS_NET_INTERNAL_H
#define VWS_NET_INTERNAL_H

#include <libwebsockets.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "actions/action.h"
#include "core/app.h"
#include "core/pool.h"
#include "net/evloop.h"

struct cfg;
struct call;
struct http_req;
struct prov_ops;

#define NET_ACT_MAX 32 /* actions tracked by /metrics (registry has ~8) */
#define NET_HIST_N 12  /* histogram buckets (le=...) */
#define NET_PROV_N 2   /* 0 openai, 1 gemini */

enum net_prov_reason { /* voice_provider_errors_total reason label */
                       NET_PR_CONNECT_FAILED = 0,
                       NET_PR_REJECTED,
                       NET_PR_DROPPED,
                       NET_PR_PROTOCOL,
                       NET_PR_EXPIRED,
                       NET_PR_TIMEOUT,
                       NET_PR_N
};

struct net_metrics {                         /* loop thread only: no locks */
    long long act_total[NET_ACT_MAX + 1][2]; /* [action or unknown][0 success,1 failure] */
    long long act_hist[NET_ACT_MAX + 1][NET_HIST_N + 1]; /* cumulative at render */
    double act_sum_ms[NET_ACT_MAX + 1];
    long long sms_sent, sms_failed;
    long long prov_err[NET_PROV_N][NET_PR_N];
    long long calls_total, calls_failed_over, calls_fallback;
    long long streams_rejected; /* bad token, bad start */
    long long webhooks_total, webhooks_rejected;
};

struct net_prov_state {  /* for /health and provider choice */
    const char *state;   /* "ok" | "unreachable" | "rejected" | "unknown" */
    double last_fail_ms; /* util_mono_ms() of the last failure, 0 = never */
};

struct net_dns {    /* one provider host, resolved on a worker */
    char host[256]; /* from the provider URL; "" = none */
    char addr[64];  /* numeric address, "" = not resolved */
    bool numeric;   /* host is already an IP literal */
    bool resolving;
    double expires_ms;
};

struct srv {
    const struct cfg *cfg; /* borrowed, outlives the server */
    struct act_env env;
    bool env_open;
    struct pool *pool;
    struct lws_context *ctx;
    struct evloop ev; /* the libuv loop lws runs on: ours, so srv_run decides when to stop */
    bool signal_seen; /* srv_run has acted on a signal (and woken lws for it) */
    struct lws_vhost *vh;
    struct lws_protocols protocols[6];
    const struct prov_ops *provs[NET_PROV_N]; /* index 0 openai, 1 gemini */
    int provider_sel;                         /* enum cfg_provider */
    char *instructions;                       /* owned */
    const unsigned char *token_key;           /* LINK_SECRET (borrowed from cfg) or token_rand */
    size_t token_key_len;
    unsigned char token_rand[32]; /* per-process key when LINK_SECRET is unset */
    char sig_url[1024];           /* PUBLIC_URL + "/incoming-call" ("" = derive from Host) */
    char public_host[256];        /* host[:port][/prefix] of PUBLIC_URL, "" = the Host header */

    struct call *calls; /* every call: pre-warmed and streaming */
    int calls_active;   /* calls with a Twilio stream attached */
    uint64_t next_id;
    struct http_req *reqs; /* HTTP requests waiting for a worker */
    uint64_t next_req_id;

    volatile sig_atomic_t got_signal;
    bool draining, stop;
    lws_sorted_usec_list_t sul_drain;
    lws_sorted_usec_list_t sul_tick;

    struct net_metrics m;
    struct net_prov_state pstate[NET_PROV_N];
    struct net_dns dns[NET_PROV_N];
};

/* ---- outgoing WebSocket messages (LWS_PRE headroom) ---- */

enum net_msg_kind { NET_MSG_MEDIA = 0, NET_MSG_MARK, NET_MSG_OTHER };

struct net_msg {
    struct net_msg *next;
    enum net_msg_kind kind;
    int bytes;           /* media: u-law bytes in it */
    uint32_t item;       /* media: agent item sequence number */
    size_t len;          /* payload bytes after LWS_PRE */
    unsigned char buf[]; /* LWS_PRE + payload */
};

struct net_msg *net_msg_new(enum net_msg_kind kind, size_t len);

/* ---- server.c ---- */
int net__submit(struct srv *s, struct pool_job *j); /* pool_submit + logging */
void net__maybe_exit(struct srv *s);                /* draining and no calls: stop */

/* ---- http.c ---- */
int net__http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                 size_t len);
size_t net__http_pss_size(void);

/* ---- call.c ---- */
int net__media_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len);
size_t net__media_pss_size(void);
/* Webhook accepted: pre-warm the provider for call_sid (from: E.164 or ""). */
void net__call_prewarm(struct srv *s, const char *call_sid, const char *from);
/* No provider at all: log it and book the callback; no call object stays. */
void net__call_unavailable(struct srv *s, const char *call_sid, const char *from);
/* Drop pre-warmed calls whose provider already failed (their stream would be closed). */
void net__calls_drop_failed(struct srv *s);
/* Calls known (pre-warmed or streaming). */
int net__calls_count(struct srv *s);
/* SIGTERM deadline: end every call. */
void net__calls_end_all(struct srv *s, const char *reason);
/* Provider choice for new calls: index into s->provs, or -1. */
int net__provider_first(struct srv *s);
/* DNS answers arrived for provider idx: open waiting calls. */
void net__calls_dns_ready(struct srv *s, int idx);
/* Kick a resolve of provider idx's host if stale (loop thread). */
void net__dns_refresh(struct srv *s, int idx);
/* The envelope of one action run (tool call or HTTP): count it. */
void net__metrics_action(struct srv *s, const char *action, int success, double ms, int sms_sent);
/* Prometheus text; caller frees. */
char *net__metrics_render(struct srv *s, size_t *len);
/* Extract success / ms / sms from an envelope (worker-safe). */
void net__envelope_stats(json_t *env, int *success, double *ms, int *sms_sent, char *code,
                         size_t codesz);
const char *net__prov_reason_name(int r);
/* Health extras (strings are static). */
void net__health_extra(struct srv *s, struct app_health_extra *x);

#endif
