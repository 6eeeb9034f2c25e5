/*
 * metrics.c - the counters behind GET /metrics (Prometheus text format) and
 * the server's part of /health.
 *
 * Owns: struct net_metrics updates and rendering. Counters are plain
 * integers touched only on the loop thread (action results reach it through
 * the pool's done callbacks), so there are no locks. net__envelope_stats is
 * the one function that may run on a worker.
 */
#include "core/cfg.h"
#include "core/util.h"
#include "net/internal.h"
#include "providers/provider.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double hist_le[NET_HIST_N] = {5,   10,   25,   50,   100,   250,
                                           500, 1000, 2500, 5000, 10000, 30000};

static const char *const reason_names[NET_PR_N] = {
    "connect_failed", "rejected", "dropped", "protocol", "expired", "timeout",
};

const char *net__prov_reason_name(int r)
{
    return r >= 0 && r < NET_PR_N ? reason_names[r] : "other";
}

void net__envelope_stats(json_t *env, int *success, double *ms, int *sms_sent, char *code,
                         size_t codesz)
{
    *success = 0;
    *ms = 0;
    *sms_sent = -1; /* -1: the action sent no SMS */
    if (code && codesz)
        code[0] = '\0';
    if (!json_is_object(env))
        return;
    *success = json_is_true(json_object_get(env, "success"));
    *ms = json_number_value(json_object_get(env, "execution_time_ms"));
    const char *c = json_string_value(json_object_get(json_object_get(env, "error"), "code"));
    if (c && code)
        util_strlcpy(code, c, codesz);
    json_t *sms = json_object_get(json_object_get(env, "data"), "sms");
    json_t *sent = json_object_get(sms, "sent");
    if (json_is_boolean(sent))
        *sms_sent = json_is_true(sent);
}

void net__metrics_action(struct srv *s, const char *action, int success, double ms, int sms_sent)
{
    int idx = NET_ACT_MAX; /* "unknown" row */
    int n = act_count();
    for (int i = 0; i < n && i < NET_ACT_MAX; i++)
        if (!strcmp(act_at(i)->name, action)) {
            idx = i;
            break;
        }
    s->m.act_total[idx][success ? 0 : 1]++;
    s->m.act_sum_ms[idx] += ms;
    int b = 0;
    while (b < NET_HIST_N && ms > hist_le[b])
        b++;
    s->m.act_hist[idx][b]++;
    if (sms_sent == 1)
        s->m.sms_sent++;
    else if (sms_sent == 0)
        s->m.sms_failed++;
}

/* ---- rendering ---- */

struct out {
    char *buf;
    size_t len, cap;
    bool oom;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    if (o->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->oom = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t nc = o->cap * 2 + (size_t)n;
        char *nb = realloc(o->buf, nc);
        if (!nb) {
            o->oom = true;
            return;
        }
        o->buf = nb;
        o->cap = nc;
    }
}

static const char *act_label(int i)
{
    return i < NET_ACT_MAX && i < act_count() ? act_at(i)->name : "unknown";
}

static void render_actions(struct srv *s, struct out *o)
{
    int n = act_count();
    if (n > NET_ACT_MAX)
        n = NET_ACT_MAX;
    put(o, "# HELP voice_actions_total Voice actions executed, by action and outcome.\n"
           "# TYPE voice_actions_total counter\n");
    for (int i = 0; i <= NET_ACT_MAX; i++) {
        if (i >= n && i < NET_ACT_MAX)
            continue;
        for (int k = 0; k < 2; k++)
            put(o, "voice_actions_total{action=\"%s\",outcome=\"%s\"} %lld\n", act_label(i),
                k ? "failure" : "success", s->m.act_total[i][k]);
    }
    put(o, "# HELP voice_action_duration_ms Voice action execution time in milliseconds.\n"
           "# TYPE voice_action_duration_ms histogram\n");
    for (int i = 0; i <= NET_ACT_MAX; i++) {
        if (i >= n && i < NET_ACT_MAX)
            continue;
        long long cum = 0;
        for (int b = 0; b < NET_HIST_N; b++) {
            cum += s->m.act_hist[i][b];
            put(o, "voice_action_duration_ms_bucket{action=\"%s\",le=\"%g\"} %lld\n", act_label(i),
                hist_le[b], cum);
        }
        cum += s->m.act_hist[i][NET_HIST_N];
        put(o, "voice_action_duration_ms_bucket{action=\"%s\",le=\"+Inf\"} %lld\n", act_label(i),
            cum);
        put(o, "voice_action_duration_ms_sum{action=\"%s\"} %.3f\n", act_label(i),
            s->m.act_sum_ms[i]);
        put(o, "voice_action_duration_ms_count{action=\"%s\"} %lld\n", act_label(i), cum);
    }
}

static void render_calls(struct srv *s, struct out *o)
{
    put(o,
        "# HELP voice_calls_active Calls with a live Twilio media stream.\n"
        "# TYPE voice_calls_active gauge\nvoice_calls_active %d\n",
        s->calls_active);
    put(o,
        "# HELP voice_calls_total Calls whose media stream started.\n"
        "# TYPE voice_calls_total counter\nvoice_calls_total %lld\n",
        s->m.calls_total);
    put(o,
        "# HELP voice_calls_failover_total Calls served by the second provider.\n"
        "# TYPE voice_calls_failover_total counter\nvoice_calls_failover_total %lld\n",
        s->m.calls_failed_over);
    put(o,
        "# HELP voice_calls_fallback_total Calls ended early (fallback message + callback).\n"
        "# TYPE voice_calls_fallback_total counter\nvoice_calls_fallback_total %lld\n",
        s->m.calls_fallback);
    put(o,
        "# HELP voice_streams_rejected_total Media streams refused (bad token or start).\n"
        "# TYPE voice_streams_rejected_total counter\nvoice_streams_rejected_total %lld\n",
        s->m.streams_rejected);
    put(o,
        "# HELP voice_webhooks_total Incoming-call webhooks, and those refused.\n"
        "# TYPE voice_webhooks_total counter\nvoice_webhooks_total %lld\n"
        "voice_webhooks_rejected_total %lld\n",
        s->m.webhooks_total, s->m.webhooks_rejected);
    put(o,
        "# HELP voice_sms_total SMS confirmations reported by actions, by outcome.\n"
        "# TYPE voice_sms_total counter\n"
        "voice_sms_total{outcome=\"sent\"} %lld\nvoice_sms_total{outcome=\"failed\"} %lld\n",
        s->m.sms_sent, s->m.sms_failed);
    put(o, "# HELP voice_provider_errors_total Provider failures, by provider and reason.\n"
           "# TYPE voice_provider_errors_total counter\n");
    static const char *const pn[NET_PROV_N] = {"openai", "gemini"};
    for (int p = 0; p < NET_PROV_N; p++)
        for (int r = 0; r < NET_PR_N; r++)
            put(o, "voice_provider_errors_total{provider=\"%s\",reason=\"%s\"} %lld\n", pn[p],
                reason_names[r], s->m.prov_err[p][r]);
    put(o,
        "# HELP voice_work_queue_pending Jobs queued or running on the worker pool.\n"
        "# TYPE voice_work_queue_pending gauge\nvoice_work_queue_pending %d\n",
        s->pool ? pool_pending(s->pool) : 0);
}

char *net__metrics_render(struct srv *s, size_t *len)
{
    struct out o = {.buf = malloc(8192), .cap = 8192};
    if (!o.buf)
        return NULL;
    render_actions(s, &o);
    render_calls(s, &o);
    if (o.oom) {
        free(o.buf);
        return NULL;
    }
    *len = o.len;
    return o.buf;
}

void net__health_extra(struct srv *s, struct app_health_extra *x)
{
    int first = net__provider_first(s);
    x->calls_active = s->calls_active;
    x->provider_next = first >= 0 ? s->provs[first]->name : "none";
    x->openai_state = s->pstate[0].state;
    x->gemini_state = s->pstate[1].state;
    x->draining = s->draining;
}
