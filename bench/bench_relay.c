/*
 * bench_relay.c - relay load generator for `voice-ws serve` (issue 5).
 *
 * One process, one libwebsockets loop, plays both remote parties of N
 * concurrent calls against the real server binary (run as a child):
 *
 *   - the provider stand-in: a WebSocket server on loopback speaking the
 *     OpenAI Realtime GA protocol (session.created / session.updated with the
 *     pcmu formats echoed, response.create answered with a short audio burst,
 *     every input_audio_buffer.append echoed as response.output_audio.delta)
 *     or, with --provider gemini, Gemini Live (setupComplete; realtimeInput
 *     audio answered with 24 kHz audio of the same duration holding the same
 *     levels, as serverContent.modelTurn inlineData audio/pcm;rate=24000);
 *   - Twilio: a signed webhook POST per call (X-Twilio-Signature, HMAC-SHA1
 *     over PUBLIC_URL/incoming-call + sorted params), the TwiML parsed for the
 *     stream URL and <Parameter>s, then the Media Streams socket: connected,
 *     start (customParameters), 160-byte u-law media frames every 20 ms in
 *     real time, marks echoed once the audio before them would have played,
 *     stop.
 *
 * Measuring without trusting byte equality (Gemini resamples three times):
 * every caller frame is a constant u-law level (a plateau) chosen from 60
 * positive codes by its sequence number mod 60, which survives u-law ->
 * PCM -> resampling -> u-law. Both sides run a plateau detector over the
 * audio they receive: the stand-in notes when each level arrived (t_recv) and
 * when its echo went out (t_write); the Twilio side notes when each level
 * comes back. The stand-in's greeting (the answer to the server's greeting
 * response) spells the stand-in connection number in negative-code plateaus,
 * which links a call to its provider socket. Then per frame:
 *   added latency = (t_recv - t_sent) + (t_arrived - t_write)
 * i.e. the server's inbound leg plus its outbound leg, without the time the
 * frame spent in the bench's own echo.
 *
 * Server cost: utime/stime from /proc/PID/stat and VmRSS from
 * /proc/PID/status over the steady-state window (all calls up), per call.
 * The server is pinned to core 0 and the bench to core 1 when there are two
 * or more cores. RLIMIT_NOFILE is raised to its hard limit for both.
 *
 * Output: "metric <name> <value> <unit>" lines, then one markdown table row
 * per run. Exit 0 when every run completed (not a judgement on the numbers),
 * 1 when a run could not be carried out (server did not start, no call
 * connected), 2 on usage errors.
 */
#include "audio/audio.h"
#include "core/err.h"
#include "core/util.h"
#include "net/evloop.h"
#include "net/wsout.h"
#include "net/wsrx.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#define AUTH_TOKEN "0123456789abcdef0123456789abcdef"
#define ACCOUNT_SID "AC00000000000000000000000000000000"
#define PUBLIC_URL "https://bench.voice-ws.example"
#define LINK_SECRET "bench-link-secret-0123456789abcdef"

#define FRAME_MS 20
#define FRAME_BYTES 160
#define NLEV 60 /* echo levels: code 0x84 + 2k, k < 60 */
#define LEV_BASE 0x84
#define GREET_MARK 0x08 /* greeting alphabet: negative codes */
#define GREET_SEP 0x14
#define GREET_DIG 0x20 /* digit d (0..31) = 0x20 + 2d */
#define GREET_DIGITS 3
#define PLATEAU_MS 5 /* a level must hold this long to count */
#define TICK_US 2000
#define MARKS_MAX 256
#define MSG_STOP (-2) /* struct msg seq of the Twilio stop message */

/* ---------------------------------------------------------------- utils */

static double now_ms(void)
{
    return util_mono_ms();
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

struct samples {
    float *v;
    size_t n, cap;
};

static void samp_add(struct samples *s, double v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        float *nv = realloc(s->v, s->cap * sizeof *nv);
        if (!nv) {
            s->cap /= 2;
            return;
        }
        s->v = nv;
    }
    s->v[s->n++] = (float)v;
}

static double samp_q(struct samples *s, double q)
{
    if (!s->n)
        return NAN;
    size_t i = (size_t)ceil(q * (double)s->n) - 1;
    if (i >= s->n)
        i = s->n - 1;
    return s->v[i];
}

/* ---------------------------------------------------------- level detector */

struct det {
    int cur, run, emitted, thresh;
};

static void det_init(struct det *d, int rate)
{
    d->cur = -1;
    d->run = 0;
    d->emitted = -1;
    d->thresh = rate * PLATEAU_MS / 1000;
}

/* One u-law code in; returns the code when a plateau of it just became long enough. */
static int det_push(struct det *d, int code)
{
    if (code == d->cur) {
        if (++d->run == d->thresh && code != d->emitted) {
            d->emitted = code;
            return code;
        }
        return -1;
    }
    d->cur = code;
    d->run = 1;
    return -1;
}

static int lev_code(long seq)
{
    return LEV_BASE + 2 * (int)(seq % NLEV);
}

static int lev_of(int code)
{
    if (code < LEV_BASE || code > LEV_BASE + 2 * (NLEV - 1) || (code - LEV_BASE) % 2)
        return -1;
    return (code - LEV_BASE) / 2;
}

/* ------------------------------------------------------------------ messages */

struct msg {
    struct msg *next;
    size_t len;
    long seq; /* Twilio side: caller frame number, -1 otherwise */
    int nk;   /* stand-in: echo levels carried */
    int8_t ks[8];
    unsigned char buf[]; /* LWS_PRE + payload */
};

static struct msg *msg_new(size_t cap)
{
    struct msg *m = malloc(sizeof *m + LWS_PRE + cap + 1);
    if (!m)
        return NULL;
    m->next = NULL;
    m->len = 0;
    m->seq = -1;
    m->nk = 0;
    return m;
}

static struct msg *msg_printf(size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static struct msg *msg_printf(size_t cap, const char *fmt, ...)
{
    struct msg *m = msg_new(cap);
    if (!m)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf((char *)m->buf + LWS_PRE, cap + 1, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n > cap) {
        free(m);
        return NULL;
    }
    m->len = (size_t)n;
    return m;
}

static struct msg *msg_json(json_t *o)
{
    if (!o)
        return NULL;
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    struct msg *m = msg_new(n);
    if (m) {
        memcpy(m->buf + LWS_PRE, s, n);
        m->len = n;
    }
    free(s);
    return m;
}

struct queue {
    struct msg *h, *t;
    size_t n;
};

static void q_push(struct queue *q, struct msg *m)
{
    if (!m)
        return;
    if (q->t)
        q->t->next = m;
    else
        q->h = m;
    q->t = m;
    q->n++;
}

static struct msg *q_pop(struct queue *q)
{
    struct msg *m = q->h;
    if (m) {
        q->h = m->next;
        if (!q->h)
            q->t = NULL;
        q->n--;
    }
    return m;
}

static void q_free(struct queue *q)
{
    struct msg *m;
    while ((m = q_pop(q)))
        free(m);
}

struct rxbuf {
    char *p;
    size_t len, cap;
};

/* Fast path for the two hot messages (Twilio media, OpenAI input_audio_buffer.append):
 * lws's streaming LEJP parser picks out three string fields without building a tree,
 * ~3x cheaper than json_loadb (docs/loadgen.md); everything else goes to jansson. */
struct lj {
    char f0[64], f1[80], f3[64]; /* path 0, 1 and 3 values (truncated) */
    char *v;                     /* path 2 value */
    size_t n0, n1, n3, vlen, vcap;
    bool big;    /* path 2 value did not fit */
    bool has[4]; /* a string value was seen for path i */
};

static void lj_add(char *dst, size_t *n, size_t cap, const char *src, size_t len, bool *big)
{
    if (*n + len + 1 > cap) {
        if (big)
            *big = true;
        len = *n + 1 < cap ? cap - *n - 1 : 0;
    }
    memcpy(dst + *n, src, len);
    *n += len;
    dst[*n] = '\0';
}

static signed char lj_cb(struct lejp_ctx *ctx, char reason)
{
    struct lj *j = ctx->user;
    if (!ctx->path_match || (reason != LEJPCB_VAL_STR_CHUNK && reason != LEJPCB_VAL_STR_END))
        return 0;
    if (reason == LEJPCB_VAL_STR_END && ctx->path_match <= 4)
        j->has[ctx->path_match - 1] = true;
    switch (ctx->path_match - 1) {
    case 0:
        lj_add(j->f0, &j->n0, sizeof j->f0, ctx->buf, ctx->npos, NULL);
        break;
    case 1:
        lj_add(j->f1, &j->n1, sizeof j->f1, ctx->buf, ctx->npos, NULL);
        break;
    case 2:
        lj_add(j->v, &j->vlen, j->vcap, ctx->buf, ctx->npos, &j->big);
        break;
    case 3:
        lj_add(j->f3, &j->n3, sizeof j->f3, ctx->buf, ctx->npos, NULL);
        break;
    }
    return 0;
}

/* Parse txt picking paths[0..npaths-1] (3 or 4); 0 when the JSON was complete and well-formed. */
static int lj_parse(struct lj *j, const char *const *paths, int npaths, const char *txt, size_t len,
                    char *vbuf, size_t vcap)
{
    j->f0[0] = j->f1[0] = j->f3[0] = '\0';
    j->n0 = j->n1 = j->n3 = j->vlen = 0;
    j->big = false;
    memset(j->has, 0, sizeof j->has);
    j->v = vbuf;
    j->vcap = vcap;
    vbuf[0] = '\0';
    struct lejp_ctx ctx;
    lejp_construct(&ctx, lj_cb, j, paths, (unsigned char)npaths);
    int m = lejp_parse(&ctx, (const unsigned char *)txt, (int)len);
    lejp_destruct(&ctx);
    return m < 0 || j->big ? -1 : 0;
}

/* -------------------------------------------------------------------- state */

enum prov_kind { PK_OPENAI, PK_GEMINI };

struct sconn { /* one provider socket accepted by the stand-in */
    int id;
    struct lws *wsi;
    struct queue q;
    struct wsrx rx;
    struct det det;
    uint64_t in_total, out_total; /* Gemini echo: samples in (at in_rate) and out (24 kHz) */
    int in_rate;
    bool configured, closed;
    bool ready; /* first WRITEABLE seen: direct writes allowed from now on */
    int resp_n, evn;
    double recv_t[NLEV], write_t[NLEV];
    long appends, bad;
};

struct tcall;

struct tconn { /* per-session data of a Twilio-side socket */
    struct tcall *c;
};

enum tstate { TC_IDLE, TC_WEBHOOK, TC_WS_OPENING, TC_STREAMING, TC_DONE, TC_FAILED };

struct tcall {
    int idx;
    enum tstate st;
    char sid[40], stream_sid[40], from[20];
    char p_from[32], p_sid[48], p_token[512];
    struct lws *http, *ws;
    char *body; /* webhook form body */
    char sig[40];
    int http_status;
    struct rxbuf hresp;
    struct wsrx rx;
    struct queue q;
    double t_due; /* when to place the call */
    double t_start, t_first_audio, t_first_media, next_frame;
    long seq_no; /* Twilio sequenceNumber */
    long frames; /* caller frames sent (levels) */
    long chunks; /* all media messages sent */
    long frames_cap;
    double *sent_t;
    uint8_t *echoed;
    long k_seq[NLEV];
    long first_echo; /* first frame echoed, -1 none */
    double play_end;
    struct {
        char name[48];
        double due;
    } mk[MARKS_MAX];
    int mk_h, mk_n;
    struct det det;
    int conn_id, greet_n, greet_d[GREET_DIGITS];
    bool greet_on;
    bool stop_queued, stop_sent, ws_closed;
    bool ready; /* first WRITEABLE seen: direct writes allowed from now on */
    long media_rx, marks_rx, marks_echoed, clears, violations, dups, unmatched;
    char fail[160];
};

struct run {
    enum prov_kind pk;
    int n;
    double audio_s, ramp_s, settle_s;
    int srv_port, sp_port;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct evloop ev; /* lws runs on our libuv loop (epoll), as serve does (net/evloop.h) */
    struct tcall *calls;
    double *due; /* due[i]: when call i next needs the tick (compact: scanned every tick) */
    struct sconn **conns;
    int nconns, conns_cap;
    double t0, t_win0, t_stop, t_close, t_end;
    bool in_window, window_done;
    lws_sorted_usec_list_t tick;
    /* measurements */
    struct samples lat, rtt, leg_in, leg_out, ttfa, tfm, lag, rss;
    double tick_due, next_rss, next_wait;
    bool in_tick;
    bool all_done;
    long st_bad_msgs;
    /* server */
    pid_t pid;
    double cpu_u0, cpu_s0, cpu_u1, cpu_s1;
    double srv_wait0, srv_wait1, bench_wait0, bench_wait1;
    long rss_base, rss_peak;
    struct rusage bench_ru0, bench_ru1;
    bool interrupted;
};

static struct run *R;
static volatile sig_atomic_t g_stop;
/* Echoed audio per received audio (--echo-ratio). OpenAI default 0.75: the pass-through echo is
 * cut to 15 ms per 20 ms frame so the agent never runs ahead of Twilio playback (at 1.0 every
 * scheduling stall adds lead the server then paces, up to its 1 s LEAD_MS, forever: that is
 * playout, not relay cost). Gemini default 1.0: chosen when the server still held a partial
 * 20 ms output frame until the next chunk (it now flushes it after 3 ms); kept so the Gemini
 * rows stay comparable with earlier runs. --echo-ratio changes either. */
static double g_echo_ratio = 0.75;
static double g_echo_ratio_opt = -1;

static void on_sig(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* ------------------------------------------------------------ /proc readers */

static int proc_cpu(pid_t pid, double *u_ms, double *s_ms)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* comm may hold spaces */
    if (!p)
        return -1;
    unsigned long ut = 0, stt = 0;
    /* after ")": state(3) ppid ... utime is field 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stt) != 2)
        return -1;
    double hz = (double)sysconf(_SC_CLK_TCK);
    *u_ms = (double)ut * 1000.0 / hz;
    *s_ms = (double)stt * 1000.0 / hz;
    return 0;
}

/* Run-queue wait of all threads of pid (ms, from /proc/PID/task/TID/schedstat field 2):
 * time the process was runnable but another task had the CPU. High = the machine, not the
 * program, limited the run. */
static double proc_runq_wait_ms(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return NAN;
    double ms = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p2[300];
        snprintf(p2, sizeof p2, "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
        FILE *f = fopen(p2, "r");
        if (!f)
            continue;
        unsigned long long run = 0, wait = 0;
        if (fscanf(f, "%llu %llu", &run, &wait) == 2)
            ms += (double)wait / 1e6;
        fclose(f);
    }
    closedir(d);
    return ms;
}

static long proc_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* ------------------------------------------------------------- stand-in side */

static struct sconn *sconn_new(struct run *r)
{
    if (r->nconns == r->conns_cap) {
        int nc = r->conns_cap ? r->conns_cap * 2 : 64;
        struct sconn **np = realloc(r->conns, (size_t)nc * sizeof *np);
        if (!np)
            return NULL;
        r->conns = np;
        r->conns_cap = nc;
    }
    struct sconn *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->id = r->nconns;
    r->conns[r->nconns++] = s;
    det_init(&s->det, 8000);
    return s;
}

/* A message went out (lws_write returned): note when its echo levels were written. */
static void sconn_sent(struct sconn *s, const struct msg *m, double t)
{
    for (int i = 0; i < m->nk; i++)
        s->write_t[m->ks[i]] = t;
}

/* The hot path of sconn_send without the allocation: p has LWS_PRE writable bytes before it;
 * ks/nk are the echo levels it carries. Copied into a queued message only when it must wait. */
static void sconn_write(struct sconn *s, unsigned char *p, size_t len, const int8_t *ks, int nk)
{
    if (s->closed || !s->wsi)
        return;
    if (s->ready && !s->q.h) {
        double t = now_ms();
        enum wsout_rc rc = wsout_now(s->wsi, p, len);
        if (rc == WSOUT_SENT)
            for (int i = 0; i < nk; i++)
                s->write_t[ks[i]] = t;
        else if (rc == WSOUT_ERR)
            s->closed = true; /* lws kills the socket */
        if (rc != WSOUT_QUEUE)
            return;
    }
    struct msg *m = msg_new(len);
    if (!m)
        return;
    memcpy(m->buf + LWS_PRE, p, len);
    m->len = len;
    m->nk = nk;
    memcpy(m->ks, ks, (size_t)nk);
    q_push(&s->q, m);
    lws_callback_on_writable(s->wsi);
}

/* Send m: written at once when nothing is queued ahead (net/wsout: no WRITEABLE round, no
 * POLLOUT arm/disarm = epoll_ctl DEL+ADD under libuv), else queued for WRITEABLE. */
static void sconn_send(struct sconn *s, struct msg *m)
{
    if (!m || s->closed || !s->wsi) {
        free(m);
        return;
    }
    if (s->ready && !s->q.h) {
        double t = now_ms();
        enum wsout_rc rc = wsout_now(s->wsi, m->buf + LWS_PRE, m->len);
        if (rc != WSOUT_QUEUE) {
            if (rc == WSOUT_SENT)
                sconn_sent(s, m, t);
            else
                s->closed = true; /* lws kills the socket */
            free(m);
            return;
        }
    }
    q_push(&s->q, m);
    lws_callback_on_writable(s->wsi);
}

/* The greeting: plateaus spelling the connection id, then silence (u-law, 8 kHz). */
static size_t greet_ulaw(int id, uint8_t *out)
{
    int codes[2 * GREET_DIGITS + 1];
    int nc = 0;
    codes[nc++] = GREET_MARK;
    for (int i = GREET_DIGITS - 1; i >= 0; i--) {
        codes[nc++] = GREET_DIG + 2 * ((id >> (5 * i)) & 31);
        codes[nc++] = GREET_SEP;
    }
    size_t n = 0;
    for (int i = 0; i < nc; i++)
        for (int j = 0; j < FRAME_BYTES; j++)
            out[n++] = (uint8_t)codes[i];
    for (int j = 0; j < 3 * FRAME_BYTES; j++)
        out[n++] = AUD_ULAW_SILENCE;
    return n; /* 10 frames, 200 ms */
}

static void oai_send_event(struct sconn *s, json_t *o)
{
    char id[32];
    snprintf(id, sizeof id, "event_%d_%d", s->id, ++s->evn);
    json_object_set_new(o, "event_id", json_string(id));
    sconn_send(s, msg_json(o));
}

static void oai_session_created(struct sconn *s)
{
    oai_send_event(
        s, json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:[s], s:{s:{s:{s:s, s:i}}, s:{s:{s:s, s:i}}}}}",
                     "type", "session.created", "session", "type", "realtime", "object",
                     "realtime.session", "id", "sess_bench", "model", "gpt-realtime",
                     "output_modalities", "audio", "audio", "input", "format", "type", "audio/pcm",
                     "rate", 24000, "output", "format", "type", "audio/pcm", "rate", 24000));
}

static void oai_on_session_update(struct sconn *s, json_t *m)
{
    const char *typ = NULL, *in = NULL, *out = NULL;
    if (json_unpack(m, "{s:{s:s, s:{s:{s:{s:s}}, s:{s:{s:s}}}}}", "session", "type", &typ, "audio",
                    "input", "format", "type", &in, "output", "format", "type", &out) ||
        strcmp(typ, "realtime")) {
        s->bad++;
        oai_send_event(s, json_pack("{s:s, s:{s:s, s:s, s:s}}", "type", "error", "error", "type",
                                    "invalid_request_error", "code", "invalid_value", "message",
                                    "session.update is not GA-shaped"));
        return;
    }
    s->configured = true;
    oai_send_event(
        s, json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:[s], s:{s:{s:{s:s}}, s:{s:{s:s}, s:s}}}}",
                     "type", "session.updated", "session", "type", "realtime", "object",
                     "realtime.session", "id", "sess_bench", "model", "gpt-realtime",
                     "output_modalities", "audio", "audio", "input", "format", "type", in, "output",
                     "format", "type", out, "voice", "marin"));
}

static void oai_on_response_create(struct sconn *s)
{
    char rid[32], iid[40];
    snprintf(rid, sizeof rid, "resp_%d_%d", s->id, ++s->resp_n);
    snprintf(iid, sizeof iid, "item_greet_%d_%d", s->id, s->resp_n);
    oai_send_event(s, json_pack("{s:s, s:{s:s, s:s, s:s, s:[]}}", "type", "response.created",
                                "response", "id", rid, "object", "realtime.response", "status",
                                "in_progress", "output"));
    uint8_t pcm[16 * FRAME_BYTES];
    char b64[4 * sizeof pcm / 3 + 8];
    size_t n = greet_ulaw(s->id, pcm);
    for (size_t off = 0; off < n; off += FRAME_BYTES) {
        util_b64_encode(pcm + off, FRAME_BYTES, b64);
        oai_send_event(s, json_pack("{s:s, s:s, s:s, s:i, s:i, s:s}", "type",
                                    "response.output_audio.delta", "response_id", rid, "item_id",
                                    iid, "output_index", 0, "content_index", 0, "delta", b64));
    }
    oai_send_event(s, json_pack("{s:s, s:s, s:s, s:i, s:i}", "type", "response.output_audio.done",
                                "response_id", rid, "item_id", iid, "output_index", 0,
                                "content_index", 0));
    oai_send_event(s, json_pack("{s:s, s:{s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:s}]}}", "type",
                                "response.done", "response", "id", rid, "object",
                                "realtime.response", "status", "completed", "output", "id", iid,
                                "type", "message", "role", "assistant", "status", "completed"));
}

static void note_levels(struct sconn *s, const uint8_t *u, size_t n, int8_t *ks, int *nk, double t)
{
    for (size_t i = 0; i < n; i++) {
        int code = det_push(&s->det, u[i]);
        int k = code >= 0 ? lev_of(code) : -1;
        if (k >= 0) {
            s->recv_t[k] = t;
            if (*nk < 8)
                ks[(*nk)++] = (int8_t)k;
        }
    }
}

static void oai_on_append(struct sconn *s, const char *b64, size_t len, double t)
{
    uint8_t u[4096];
    long n = util_b64_decode(b64, len, u, sizeof u);
    if (n < 0) {
        s->bad++;
        return;
    }
    s->appends++;
    char tb64[4096 * 4 / 3 + 8];
    if (g_echo_ratio < 1.0) { /* shorter echo: the agent never runs ahead of playback */
        size_t keep = (size_t)((double)n * g_echo_ratio) / 3 * 3;
        if (keep < 48)
            keep = (size_t)n;
        if (keep < (size_t)n && len == ((size_t)n + 2) / 3 * 4)
            len = keep / 3 * 4; /* canonical base64: the first keep bytes are this prefix */
        else if (keep < (size_t)n) {
            len = util_b64_encode(u, keep, tb64);
            b64 = tb64;
        }
    }
    static unsigned char ebuf[LWS_PRE + 8192 + 256];
    const size_t ecap = sizeof ebuf - LWS_PRE;
    int el = snprintf((char *)ebuf + LWS_PRE, ecap,
                      "{\"type\":\"response.output_audio.delta\",\"event_id\":\"event_%d_%d\","
                      "\"response_id\":\"resp_echo_%d\",\"item_id\":\"item_echo_%d\","
                      "\"output_index\":0,\"content_index\":0,\"delta\":\"%.*s\"}",
                      s->id, ++s->evn, s->id, s->id, (int)len, b64);
    int8_t ks[8];
    int nk = 0;
    note_levels(s, u, (size_t)n, ks, &nk, t);
    if (el > 0 && (size_t)el < ecap)
        sconn_write(s, ebuf + LWS_PRE, (size_t)el, ks, nk);
}

static void oai_on_message(struct sconn *s, const char *txt, size_t len, double t)
{
    static const char *const paths[] = {"type", "event_id", "audio"};
    static char audio[8192];
    struct lj j;
    if (!lj_parse(&j, paths, 3, txt, len, audio, sizeof audio) &&
        !strcmp(j.f0, "input_audio_buffer.append")) {
        if (!s->configured || !j.vlen)
            s->bad++; /* the server promised to hold audio until session.updated */
        else
            oai_on_append(s, audio, j.vlen, t);
        return;
    }
    json_t *m = json_loadb(txt, len, 0, NULL);
    const char *type = json_string_value(json_object_get(m, "type"));
    if (!type) {
        s->bad++;
    } else if (!strcmp(type, "input_audio_buffer.append")) {
        s->bad++; /* malformed for the fast path */
    } else if (!strcmp(type, "session.update")) {
        oai_on_session_update(s, m);
    } else if (!strcmp(type, "response.create")) {
        oai_on_response_create(s);
    } else if (!strcmp(type, "conversation.item.create")) {
        json_t *item = json_object_get(m, "item");
        const char *evid = json_string_value(json_object_get(m, "event_id"));
        (void)evid;
        json_incref(item);
        oai_send_event(s, json_pack("{s:s, s:n, s:o}", "type", "conversation.item.added",
                                    "previous_item_id", "item", item));
    }
    /* other client events (truncate, cancel, clear) are accepted silently */
    json_decref(m);
}

static struct msg *gem_audio_msg(const int16_t *pcm, size_t n)
{
    uint8_t *le = malloc(n * 2 + 1);
    char *b64 = malloc(n * 2 * 4 / 3 + 8);
    struct msg *m = NULL;
    if (le && b64) {
        aud_pcm_to_le(pcm, n, le);
        size_t bl = util_b64_encode(le, n * 2, b64);
        m = msg_printf(
            bl + 200,
            "{\"serverContent\":{\"modelTurn\":{\"role\":\"model\",\"parts\":[{\"inlineData\":"
            "{\"mimeType\":\"audio/pcm;rate=24000\",\"data\":\"%s\"}}]}}}",
            b64);
    }
    free(le);
    free(b64);
    return m;
}

static void gem_greet(struct sconn *s)
{
    uint8_t u[16 * FRAME_BYTES];
    size_t n = greet_ulaw(s->id, u);
    int16_t *pcm = malloc(n * 3 * sizeof *pcm);
    if (!pcm)
        return;
    for (size_t i = 0; i < n; i++) {
        int16_t v = aud_ulaw_to_pcm(u[i]);
        pcm[3 * i] = pcm[3 * i + 1] = pcm[3 * i + 2] = v; /* constant plateaus: exact at 24k */
    }
    sconn_send(s, gem_audio_msg(pcm, n * 3));
    free(pcm);
    sconn_send(s, msg_printf(64, "{\"serverContent\":{\"generationComplete\":true}}"));
    sconn_send(s, msg_printf(64, "{\"serverContent\":{\"turnComplete\":true}}"));
}

/* realtimeInput.audio: mime "audio/pcm;rate=R", data base64 PCM16 LE (b64 NULL: missing). */
static void gem_on_audio(struct sconn *s, const char *mime, const char *b64, size_t bl, double t)
{
    const char *r = mime ? strstr(mime, "rate=") : NULL;
    int rate = r ? atoi(r + 5) : 0;
    if (!mime || strncmp(mime, "audio/pcm", 9) || rate < 8000 || rate > 48000 || !b64) {
        s->bad++;
        return;
    }
    if (s->in_rate != rate) {
        s->in_rate = rate;
        s->in_total = s->out_total = 0;
        det_init(&s->det, rate);
    }
    uint8_t *le = malloc(bl + 1);
    long nb = le ? util_b64_decode(b64, bl, le, bl + 1) : -1;
    if (nb < 2) {
        free(le);
        s->bad++;
        return;
    }
    size_t ns = (size_t)nb / 2;
    /* Output of exactly the same duration at 24 kHz holding the same levels (a synthesised
     * "tone" per plateau, sample-and-hold): unlike a filter it adds no delay of its own, so
     * every millisecond measured on the outbound leg is the server's. */
    size_t ocap = ns * 24000 / (size_t)rate + 2;
    int16_t *in = malloc(ns * sizeof *in);
    int16_t *out = malloc(ocap * sizeof *out);
    uint8_t *codes = malloc(ns);
    if (in && out && codes) {
        s->appends++;
        aud_pcm_from_le(le, ns, in);
        aud_ulaw_encode(in, ns, codes);
        /* output sample n (global) holds input sample n*rate/24000 (global) */
        uint64_t in0 = s->in_total, in1 = in0 + ns;
        uint64_t target = in1 * 24000 / (uint64_t)rate;
        size_t no = 0;
        for (; s->out_total < target && no < ocap; s->out_total++) {
            uint64_t gi = s->out_total * (uint64_t)rate / 24000;
            size_t i = gi >= in0 ? (size_t)(gi - in0) : 0;
            out[no++] = in[i < ns ? i : ns - 1];
        }
        s->in_total = in1;
        if (g_echo_ratio < 1.0) /* see oai_on_append */
            no = (size_t)((double)no * g_echo_ratio);
        struct msg *m = gem_audio_msg(out, no);
        if (m)
            note_levels(s, codes, ns, m->ks, &m->nk, t);
        sconn_send(s, m);
    }
    free(le);
    free(in);
    free(out);
    free(codes);
}

static void gem_on_message(struct sconn *s, const char *txt, size_t len, double t)
{
    /* the caller audio (25-50/s per call, 1.7 KB and more) by LEJP; the rest by jansson */
    static const char *const paths[] = {"realtimeInput.audio.mimeType", "setup.model",
                                        "realtimeInput.audio.data"};
    static char data[65536];
    struct lj j;
    if (!lj_parse(&j, paths, 3, txt, len, data, sizeof data) && j.has[0] && j.has[2] && !j.has[1]) {
        if (!s->configured)
            s->bad++;
        else
            gem_on_audio(s, j.f0, data, j.vlen, t);
        return;
    }
    json_t *m = json_loadb(txt, len, 0, NULL);
    json_t *v;
    if (!json_is_object(m)) {
        s->bad++;
    } else if ((v = json_object_get(m, "realtimeInput"))) {
        json_t *a = json_object_get(v, "audio");
        json_t *d = json_object_get(a, "data");
        if (!s->configured)
            s->bad++;
        else if (a)
            gem_on_audio(s, json_string_value(json_object_get(a, "mimeType")), json_string_value(d),
                         json_string_length(d), t);
    } else if ((v = json_object_get(m, "setup"))) {
        const char *model = json_string_value(json_object_get(v, "model"));
        if (s->configured || !model || strncmp(model, "models/", 7)) {
            s->bad++;
            lws_close_reason(s->wsi, 1007, (unsigned char *)"Request contains an invalid argument.",
                             37);
            s->closed = true;
        } else {
            s->configured = true;
            sconn_send(s, msg_printf(64, "{\"setupComplete\":{}}"));
        }
    } else if ((v = json_object_get(m, "clientContent"))) {
        if (json_is_true(json_object_get(v, "turnComplete")))
            gem_greet(s);
    }
    json_decref(m);
}

static void tick_poll(struct run *r, double t);

static int cb_standin(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len)
{
    struct sconn **pss = user, *s = pss ? *pss : NULL;
    struct run *r = R;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        if (!r || !(s = sconn_new(r)))
            return -1;
        *pss = s;
        s->wsi = wsi;
        if (r->pk == PK_OPENAI)
            oai_session_created(s);
        break;
    case LWS_CALLBACK_RECEIVE: {
        if (!s)
            return -1;
        double t = now_ms();
        const char *mp;
        size_t ml;
        enum wsrx_rc k = wsrx_feed(&s->rx, wsi, in, len, SIZE_MAX / 2, &mp, &ml);
        if (k < 0)
            return -1;
        if (k == WSRX_MSG) {
            if (r->pk == PK_OPENAI)
                oai_on_message(s, mp, ml, t);
            else
                gem_on_message(s, mp, ml, t);
            wsrx_done(&s->rx);
            tick_poll(r, now_ms());
        }
        if (s->closed)
            return -1;
        break;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        if (!s)
            break;
        s->ready = true;
        /* drain while the kernel takes it all (lws keeps a partial tail: then wait) */
        while (s->q.h && !lws_partial_buffered(wsi)) {
            struct msg *m = q_pop(&s->q);
            double t = now_ms();
            int n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
            sconn_sent(s, m, t);
            size_t len_m = m->len;
            free(m);
            if (n < (int)len_m)
                return -1;
        }
        if (s->q.h)
            lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_CLOSED:
        if (s) {
            s->closed = true;
            s->wsi = NULL;
            q_free(&s->q);
        }
        break;
    default:
        break;
    }
    return 0;
}

/* -------------------------------------------------------------- Twilio side */

static void tc_fail(struct tcall *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tc_fail(struct tcall *c, const char *fmt, ...)
{
    if (c->st == TC_FAILED)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->fail, sizeof c->fail, fmt, ap);
    va_end(ap);
    c->st = TC_FAILED;
}

/* A message went out (lws_write returned at t): note when each caller frame was sent. */
static void tc_sent_seq(struct tcall *c, long seq, double t)
{
    if (seq >= 0 && seq < c->frames_cap) {
        c->sent_t[seq] = t;
        c->k_seq[seq % NLEV] = seq;
    }
}

static void tc_sent(struct tcall *c, const struct msg *m, double t)
{
    tc_sent_seq(c, m->seq, t);
}

/* The hot path of tc_send without the allocation: p has LWS_PRE writable bytes before it
 * (lws masks the payload in place); copied into a queued message only when it must wait. */
static void tc_write(struct tcall *c, unsigned char *p, size_t len, long seq)
{
    if (!c->ws || c->ws_closed)
        return;
    if (c->ready && !c->q.h) {
        double t = now_ms();
        enum wsout_rc rc = wsout_now(c->ws, p, len);
        if (rc == WSOUT_SENT)
            tc_sent_seq(c, seq, t);
        else if (rc == WSOUT_ERR)
            c->ws_closed = true; /* lws kills the socket */
        if (rc != WSOUT_QUEUE)
            return;
    }
    struct msg *m = msg_new(len);
    if (!m)
        return;
    memcpy(m->buf + LWS_PRE, p, len);
    m->len = len;
    m->seq = seq;
    q_push(&c->q, m);
    lws_callback_on_writable(c->ws);
}

/* Send m: written at once when nothing is queued ahead (see sconn_send); stop always goes
 * through WRITEABLE, which closes the socket after it as Twilio does. */
static void tc_send(struct tcall *c, struct msg *m)
{
    if (!m || !c->ws || c->ws_closed) {
        free(m);
        return;
    }
    if (c->ready && !c->q.h && m->seq != MSG_STOP) {
        double t = now_ms();
        enum wsout_rc rc = wsout_now(c->ws, m->buf + LWS_PRE, m->len);
        if (rc != WSOUT_QUEUE) {
            if (rc == WSOUT_SENT)
                tc_sent(c, m, t);
            else
                c->ws_closed = true; /* lws kills the socket */
            free(m);
            return;
        }
    }
    q_push(&c->q, m);
    lws_callback_on_writable(c->ws);
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Percent-encode a form value (application/x-www-form-urlencoded). */
static void form_enc(char *out, size_t outsz, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *v && o + 4 < outsz; v++) {
        unsigned char ch = (unsigned char)*v;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
}

/* The webhook body and its X-Twilio-Signature (twilio.md §2.1). */
static int tc_build_webhook(struct tcall *c)
{
    const char *kv[][2] = {
        {"AccountSid", ACCOUNT_SID}, {"ApiVersion", "2010-04-01"},
        {"CallSid", c->sid},         {"CallStatus", "ringing"},
        {"Called", "+442079460123"}, {"Caller", c->from},
        {"Direction", "inbound"},    {"From", c->from},
        {"FromCountry", "GB"},       {"To", "+442079460123"},
        {"ToCountry", "GB"},
    };
    enum { NKV = sizeof kv / sizeof kv[0] };
    char body[2048] = "", enc[256];
    const char *names[NKV];
    for (int i = 0; i < NKV; i++) {
        form_enc(enc, sizeof enc, kv[i][1]);
        size_t bl = strlen(body);
        snprintf(body + bl, sizeof body - bl, "%s%s=%s", i ? "&" : "", kv[i][0], enc);
        names[i] = kv[i][0];
    }
    qsort(names, NKV, sizeof names[0], kv_cmp); /* byte order */
    char s[4096];
    size_t sl = (size_t)snprintf(s, sizeof s, "%s/incoming-call", PUBLIC_URL);
    for (int i = 0; i < NKV; i++)
        for (int j = 0; j < NKV; j++)
            if (!strcmp(names[i], kv[j][0]))
                sl += (size_t)snprintf(s + sl, sizeof s - sl, "%s%s", kv[j][0], kv[j][1]);
    uint8_t mac[64];
    unsigned ml = util_hmac_sha1(AUTH_TOKEN, strlen(AUTH_TOKEN), s, sl, mac);
    util_b64_encode(mac, ml, c->sig);
    c->body = strdup(body);
    return c->body ? 0 : -1;
}

/* Pull attribute value name="..." after p; XML entities of the token alphabet are none. */
static int xml_attr(const char *p, const char *attr, char *out, size_t outsz)
{
    char key[32];
    snprintf(key, sizeof key, "%s=\"", attr);
    const char *a = strstr(p, key);
    if (!a)
        return -1;
    a += strlen(key);
    const char *e = strchr(a, '"');
    if (!e || (size_t)(e - a) >= outsz)
        return -1;
    memcpy(out, a, (size_t)(e - a));
    out[e - a] = '\0';
    return 0;
}

static int tc_parse_twiml(struct tcall *c, const char *x)
{
    char url[512];
    const char *st = strstr(x, "<Stream ");
    if (!strstr(x, "<Connect>") || !st || xml_attr(st, "url", url, sizeof url))
        return -1;
    size_t ul = strlen(url);
    if (strncmp(url, "wss://", 6) || ul < 13 || strcmp(url + ul - 13, "/media-stream"))
        return -1;
    const char *p = st;
    c->p_from[0] = c->p_sid[0] = c->p_token[0] = '\0';
    while ((p = strstr(p, "<Parameter "))) {
        char name[64], val[512];
        if (xml_attr(p, "name", name, sizeof name) || xml_attr(p, "value", val, sizeof val))
            return -1;
        if (!strcmp(name, "from"))
            util_strlcpy(c->p_from, val, sizeof c->p_from);
        else if (!strcmp(name, "callSid"))
            util_strlcpy(c->p_sid, val, sizeof c->p_sid);
        else if (!strcmp(name, "token"))
            util_strlcpy(c->p_token, val, sizeof c->p_token);
        p++;
    }
    return c->p_from[0] && c->p_token[0] ? 0 : -1;
}

static void tc_open_ws(struct tcall *c)
{
    struct run *r = R;
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof i);
    i.context = r->ctx;
    i.vhost = r->vh;
    i.address = "127.0.0.1";
    i.port = r->srv_port;
    i.path = "/media-stream";
    i.host = "bench.voice-ws.example";
    i.origin = i.host;
    i.protocol = NULL; /* Twilio sends no subprotocol */
    i.local_protocol_name = "twilio";
    i.opaque_user_data = c;
    i.pwsi = &c->ws;
    c->st = TC_WS_OPENING;
    if (!lws_client_connect_via_info(&i))
        tc_fail(c, "media-stream connect failed at once");
}

static void tc_place(struct tcall *c)
{
    struct run *r = R;
    if (tc_build_webhook(c)) {
        tc_fail(c, "out of memory");
        return;
    }
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof i);
    i.context = r->ctx;
    i.vhost = r->vh;
    i.address = "127.0.0.1";
    i.port = r->srv_port;
    i.path = "/incoming-call";
    i.host = "bench.voice-ws.example";
    i.origin = i.host;
    i.method = "POST";
    i.protocol = "webhook";
    i.local_protocol_name = "webhook";
    i.opaque_user_data = c;
    i.pwsi = &c->http;
    c->st = TC_WEBHOOK;
    if (!lws_client_connect_via_info(&i))
        tc_fail(c, "webhook connect failed at once");
}

/* A caller frame: the level of its number, or (silence) u-law silence, which Twilio keeps
 * streaming while the caller says nothing; silence is not counted or matched. */
/* base64 of the 160-byte frame of each level, and of silence (index NLEV): made once */
static char g_frame_b64[NLEV + 1][AUD_FRAME_B64 + 4];

static void frame_b64_init(void)
{
    uint8_t u[FRAME_BYTES];
    for (int k = 0; k <= NLEV; k++) {
        memset(u, k < NLEV ? lev_code(k) : AUD_ULAW_SILENCE, sizeof u);
        util_b64_encode(u, sizeof u, g_frame_b64[k]);
    }
}

static void tc_queue_frame(struct tcall *c, double t, bool silence)
{
    if (!silence && c->frames >= c->frames_cap)
        return;
    unsigned char buf[LWS_PRE + 512];
    long chunk = ++c->chunks;
    int n = snprintf(
        (char *)buf + LWS_PRE, sizeof buf - LWS_PRE,
        "{\"event\":\"media\",\"sequenceNumber\":\"%ld\",\"streamSid\":\"%s\",\"media\":{\"track\":"
        "\"inbound\",\"chunk\":\"%ld\",\"timestamp\":\"%ld\",\"payload\":\"%s\"}}",
        ++c->seq_no, c->stream_sid, chunk, (long)(t - c->t_start),
        g_frame_b64[silence ? NLEV : (int)(c->frames % NLEV)]);
    if (n < 0 || (size_t)n >= sizeof buf - LWS_PRE)
        return;
    tc_write(c, buf + LWS_PRE, (size_t)n, silence ? -1 : c->frames++);
}

static void tc_start_stream(struct tcall *c)
{
    double t = now_ms();
    snprintf(c->stream_sid, sizeof c->stream_sid, "MZ%032x", (unsigned)c->idx + 1);
    tc_send(c, msg_printf(128,
                          "{\"event\":\"connected\",\"protocol\":\"Call\",\"version\":\"1.0.0\"}"));
    tc_send(
        c,
        msg_printf(
            2048,
            "{\"event\":\"start\",\"sequenceNumber\":\"%ld\",\"streamSid\":\"%s\",\"start\":{"
            "\"streamSid\":\"%s\",\"accountSid\":\"%s\",\"callSid\":\"%s\",\"tracks\":[\"inbound\"]"
            ","
            "\"customParameters\":{\"from\":\"%s\",\"callSid\":\"%s\",\"token\":\"%s\"},"
            "\"mediaFormat\":{\"encoding\":\"audio/x-mulaw\",\"sampleRate\":8000,\"channels\":1}}}",
            ++c->seq_no, c->stream_sid, c->stream_sid, ACCOUNT_SID, c->sid, c->p_from,
            c->p_sid[0] ? c->p_sid : c->sid, c->p_token));
    c->t_start = t;
    c->next_frame = t;
    c->st = TC_STREAMING;
    R->due[c->idx] = t;
}

static void tc_on_level(struct tcall *c, int code, double t)
{
    struct run *r = R;
    int k = lev_of(code);
    if (k >= 0) {
        long s = c->k_seq[k];
        if (s < 0 || s >= c->frames) {
            c->unmatched++;
            return;
        }
        if (c->echoed[s]) {
            c->dups++;
            return;
        }
        c->echoed[s] = 1;
        if (c->first_echo < 0 || s < c->first_echo)
            c->first_echo = s;
        double ts = c->sent_t[s];
        if (ts < r->t_win0 || ts > r->t_stop)
            return;
        samp_add(&r->rtt, t - ts);
        if (c->conn_id >= 0 && c->conn_id < r->nconns) {
            struct sconn *sc = r->conns[c->conn_id];
            double tr = sc->recv_t[k], tw = sc->write_t[k];
            if (tr >= ts && tw >= tr && t >= tw) {
                samp_add(&r->leg_in, tr - ts);
                samp_add(&r->leg_out, t - tw);
                samp_add(&r->lat, (tr - ts) + (t - tw));
            }
        }
        return;
    }
    /* greeting alphabet */
    if (code == GREET_MARK) {
        if (c->t_first_audio == 0) { /* the agent's first words: the greeting */
            c->t_first_audio = t;
            samp_add(&r->ttfa, t - c->t_start);
        }
        c->greet_on = true;
        c->greet_n = 0;
    } else if (c->greet_on && code >= GREET_DIG && code < GREET_DIG + 64 && !(code & 1)) {
        c->greet_d[c->greet_n++] = (code - GREET_DIG) / 2;
        if (c->greet_n == GREET_DIGITS) {
            int id = 0;
            for (int i = 0; i < GREET_DIGITS; i++)
                id = id * 32 + c->greet_d[i];
            c->conn_id = id;
            c->greet_on = false;
        }
    }
}

static void tc_on_media(struct tcall *c, const char *pl, size_t pllen, double t)
{
    uint8_t u[8192];
    long n = pl ? util_b64_decode(pl, pllen, u, sizeof u) : -1;
    if (n <= 0) {
        c->violations++;
        return;
    }
    c->media_rx++;
    if (c->t_first_media == 0) {
        c->t_first_media = t;
        samp_add(&R->tfm, t - c->t_start);
    }
    if (c->play_end < t)
        c->play_end = t;
    c->play_end += (double)n / 8.0;
    for (long i = 0; i < n; i++) {
        int code = det_push(&c->det, u[i]);
        if (code >= 0)
            tc_on_level(c, code, t);
    }
}

static void tc_on_mark(struct tcall *c, const char *name, double t)
{
    c->marks_rx++;
    if (!name || c->mk_n >= MARKS_MAX) {
        c->violations++;
        return;
    }
    int i = (c->mk_h + c->mk_n++) % MARKS_MAX;
    util_strlcpy(c->mk[i].name, name, sizeof c->mk[i].name);
    c->mk[i].due = c->play_end > t ? c->play_end : t;
    if (c->mk[i].due < R->due[c->idx])
        R->due[c->idx] = c->mk[i].due;
}

static void tc_on_clear(struct tcall *c, double t)
{
    c->clears++;
    c->play_end = t; /* everything queued is dropped; pending marks come back now */
    for (int i = 0; i < c->mk_n; i++)
        c->mk[(c->mk_h + i) % MARKS_MAX].due = t;
    R->due[c->idx] = t;
}

static void tc_on_message(struct tcall *c, const char *txt, size_t len, double t)
{
    /* media (50/s) and mark (10/s) by LEJP; anything LEJP cannot take goes to jansson */
    static const char *const paths[] = {"event", "streamSid", "media.payload", "mark.name"};
    static char payload[12000];
    struct lj j;
    if (!lj_parse(&j, paths, 4, txt, len, payload, sizeof payload)) {
        if (!j.has[0] || !j.has[1] || strcmp(j.f1, c->stream_sid))
            c->violations++;
        else if (!strcmp(j.f0, "media"))
            j.vlen ? tc_on_media(c, payload, j.vlen, t) : (void)c->violations++;
        else if (!strcmp(j.f0, "mark"))
            tc_on_mark(c, j.has[3] ? j.f3 : NULL, t);
        else if (!strcmp(j.f0, "clear"))
            tc_on_clear(c, t);
        else
            c->violations++;
        return;
    }
    json_t *m = json_loadb(txt, len, 0, NULL);
    const char *ev = json_string_value(json_object_get(m, "event"));
    const char *sid = json_string_value(json_object_get(m, "streamSid"));
    if (!ev || !sid || strcmp(sid, c->stream_sid)) {
        c->violations++;
    } else if (!strcmp(ev, "media")) {
        c->violations++; /* not well-formed for the fast path */
    } else if (!strcmp(ev, "mark")) {
        tc_on_mark(c, json_string_value(json_object_get(json_object_get(m, "mark"), "name")), t);
    } else if (!strcmp(ev, "clear")) {
        tc_on_clear(c, t);
    } else {
        c->violations++;
    }
    json_decref(m);
}

static void tc_service(struct tcall *c, double t)
{
    struct run *r = R;
    if (c->st != TC_STREAMING || !c->ws)
        return;
    while (c->mk_n && c->mk[c->mk_h].due <= t && !c->stop_queued) {
        unsigned char buf[LWS_PRE + 256];
        int n = snprintf((char *)buf + LWS_PRE, sizeof buf - LWS_PRE,
                         "{\"event\":\"mark\",\"sequenceNumber\":\"%ld\",\"streamSid\":\"%s\","
                         "\"mark\":{\"name\":\"%s\"}}",
                         ++c->seq_no, c->stream_sid, c->mk[c->mk_h].name);
        if (n > 0 && (size_t)n < sizeof buf - LWS_PRE)
            tc_write(c, buf + LWS_PRE, (size_t)n, -1);
        c->marks_echoed++;
        c->mk_h = (c->mk_h + 1) % MARKS_MAX;
        c->mk_n--;
    }
    while (c->next_frame <= t && !c->stop_queued) {
        tc_queue_frame(c, t, t >= r->t_stop);
        c->next_frame += FRAME_MS;
    }
    /* Hang up once the last measured frame came back (or after a grace period: then the
     * frames still out count as dropped), at least 300 ms after the measured audio. */
    bool last_back = c->frames > 0 && c->echoed[c->frames - 1];
    if (!c->stop_queued && t >= r->t_stop + 300 && (last_back || t >= r->t_close)) {
        c->stop_queued = true;
        struct msg *m =
            msg_printf(256,
                       "{\"event\":\"stop\",\"sequenceNumber\":\"%ld\",\"streamSid\":\"%s\","
                       "\"stop\":{\"accountSid\":\"%s\",\"callSid\":\"%s\"}}",
                       ++c->seq_no, c->stream_sid, ACCOUNT_SID, c->sid);
        if (m)
            m->seq = MSG_STOP;
        tc_send(c, m);
    }
}

static int cb_webhook(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len)
{
    (void)user;
    struct tcall *c = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        unsigned char **p = in, *end = (*p) + len;
        char cl[16];
        int n = snprintf(cl, sizeof cl, "%zu", strlen(c->body));
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                         (const unsigned char *)"application/x-www-form-urlencoded",
                                         33, p, end) ||
            lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                         (const unsigned char *)cl, n, p, end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"X-Twilio-Signature:",
                                        (const unsigned char *)c->sig, (int)strlen(c->sig), p, end))
            return -1;
        lws_client_http_body_pending(wsi, 1);
        lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE: {
        size_t bl = strlen(c->body);
        unsigned char *b = malloc(LWS_PRE + bl);
        if (!b)
            return -1;
        memcpy(b + LWS_PRE, c->body, bl);
        lws_client_http_body_pending(wsi, 0);
        int n = lws_write(wsi, b + LWS_PRE, bl, LWS_WRITE_HTTP_FINAL);
        free(b);
        if (n < (int)bl)
            return -1;
        break;
    }
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        c->http_status = (int)lws_http_client_http_response(wsi);
        break;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        char buf[LWS_PRE + 4096], *px = buf + LWS_PRE;
        int lenx = (int)sizeof buf - LWS_PRE;
        if (lws_http_client_read(wsi, &px, &lenx) < 0)
            return -1;
        break;
    }
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        if (c->hresp.len + len + 1 > c->hresp.cap) {
            size_t nc = (c->hresp.len + len + 1) * 2;
            char *np = realloc(c->hresp.p, nc);
            if (!np)
                return -1;
            c->hresp.p = np;
            c->hresp.cap = nc;
        }
        memcpy(c->hresp.p + c->hresp.len, in, len);
        c->hresp.len += len;
        c->hresp.p[c->hresp.len] = '\0';
        break;
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        if (c->st == TC_WEBHOOK) {
            if (c->http_status != 200)
                tc_fail(c, "webhook answered %d", c->http_status);
            else if (!c->hresp.p || tc_parse_twiml(c, c->hresp.p))
                tc_fail(c, "webhook TwiML has no <Connect><Stream> with parameters");
            else
                tc_open_ws(c);
        }
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c && c->st == TC_WEBHOOK)
            tc_fail(c, "webhook: %s", in ? (const char *)in : "connection error");
        break;
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        if (c) {
            if (c->st == TC_WEBHOOK)
                tc_fail(c, "webhook closed without an answer");
            c->http = NULL;
        }
        break;
    default:
        break;
    }
    return 0;
}

static int cb_twilio(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    (void)user;
    struct tcall *c = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (c) {
            c->ws = wsi;
            tc_start_stream(c);
        }
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
        if (!c)
            break;
        double t = now_ms();
        const char *mp;
        size_t ml;
        enum wsrx_rc k = wsrx_feed(&c->rx, wsi, in, len, SIZE_MAX / 2, &mp, &ml);
        if (k < 0)
            return -1;
        if (k == WSRX_MSG) {
            tc_on_message(c, mp, ml, t);
            wsrx_done(&c->rx);
            if (R)
                tick_poll(R, now_ms());
        }
        break;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        if (!c)
            break;
        c->ready = true;
        /* drain while the kernel takes it all (lws keeps a partial tail: then wait) */
        while (c->q.h && !lws_partial_buffered(wsi)) {
            struct msg *m = q_pop(&c->q);
            double t = now_ms();
            int n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
            tc_sent(c, m, t);
            bool was_stop = m->seq == MSG_STOP, short_w = n < (int)m->len;
            free(m);
            if (short_w)
                return -1;
            if (was_stop) {
                c->stop_sent = true;
                lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
                return -1; /* Twilio closes after stop */
            }
        }
        if (c->q.h)
            lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c)
            tc_fail(c, "media-stream: %s", in ? (const char *)in : "connection error");
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c) {
            c->ws_closed = true;
            c->ws = NULL;
            q_free(&c->q);
            if (c->st == TC_STREAMING)
                c->st = c->stop_sent ? TC_DONE : TC_FAILED;
            if (!c->stop_sent && !c->fail[0])
                snprintf(c->fail, sizeof c->fail, "server closed the media stream");
        }
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"standin", cb_standin, sizeof(struct sconn *), 65536, 0, NULL, 0},
    {"twilio", cb_twilio, 0, 16384, 0, NULL, 0},
    {"webhook", cb_webhook, 0, 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* -------------------------------------------------------------------- ticks */

/* When a streaming call next needs the tick: its next frame or its oldest pending mark. */
static double tc_next_due(const struct tcall *c)
{
    if (c->st == TC_IDLE)
        return c->t_due;
    if (c->st != TC_STREAMING || !c->ws || c->stop_queued)
        return INFINITY; /* tc_start_stream sets it */
    double d = c->next_frame;
    if (c->mk_n && c->mk[c->mk_h].due < d)
        d = c->mk[c->mk_h].due;
    return d;
}

/* One periodic timer for all calls: every TICK_US it sends each due call's frame (the 20 ms
 * cadence per call is kept; the timestamps are taken at each lws_write). Before the hang-up
 * phase only calls whose due[] time has come are looked at. */
static void tick_run(struct run *r, double t)
{
    if (r->in_window && r->tick_due > 0)
        samp_add(&r->lag, t - r->tick_due);
    r->tick_due = t + TICK_US / 1000.0;
    bool full = t >= r->t_stop; /* hang-up phase: every call, every tick (tc_service) */
    for (int i = 0; i < r->n; i++) {
        if (!full && t < r->due[i])
            continue;
        struct tcall *c = &r->calls[i];
        if (c->st == TC_IDLE && t >= c->t_due && t < r->t_stop)
            tc_place(c);
        else
            tc_service(c, t);
        r->due[i] = tc_next_due(c);
    }
    if (!r->in_window && !r->window_done && t >= r->t_win0) {
        r->in_window = true;
        proc_cpu(r->pid, &r->cpu_u0, &r->cpu_s0);
        getrusage(RUSAGE_SELF, &r->bench_ru0);
        r->srv_wait0 = proc_runq_wait_ms(r->pid);
        r->bench_wait0 = proc_runq_wait_ms(getpid());
    }
    if (r->in_window) {
        if (t >= r->next_rss) { /* /proc/PID/status takes the server's mm lock: not too often */
            long rss = proc_rss_kb(r->pid);
            if (rss > r->rss_peak)
                r->rss_peak = rss;
            if (rss > 0)
                samp_add(&r->rss, (double)rss);
            r->next_rss = t + 250;
        }
        if (t >= r->t_stop) {
            proc_cpu(r->pid, &r->cpu_u1, &r->cpu_s1);
            getrusage(RUSAGE_SELF, &r->bench_ru1);
            r->srv_wait1 = proc_runq_wait_ms(r->pid);
            r->bench_wait1 = proc_runq_wait_ms(getpid());
            r->in_window = false;
            r->window_done = true;
        }
    }
    bool all = full;
    for (int i = 0; i < r->n && all; i++)
        all = r->calls[i].st == TC_DONE || r->calls[i].st == TC_FAILED;
    r->all_done = all;
}

static void tick_cb(lws_sorted_usec_list_t *sul);

/* Run the tick now and schedule the next one TICK_US after this one was due (not after it
 * ended). */
static void tick_now(struct run *r, double t)
{
    r->in_tick = true;
    tick_run(r, t);
    r->in_tick = false;
    double wait_us = (r->tick_due - now_ms()) * 1000.0;
    lws_usec_t us = wait_us < 1 ? 1 : wait_us > TICK_US ? TICK_US : (lws_usec_t)wait_us;
    lws_sul_schedule(r->ctx, 0, &r->tick, tick_cb, us);
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    tick_now(lws_container_of(sul, struct run, tick), now_ms());
}

/* Called after each received message (t: a fresh timestamp): when the tick is due but the
 * loop is still busy with a batch of readable sockets, run it now instead of after the batch,
 * so a busy loop does not delay the 20 ms cadence. */
static void tick_poll(struct run *r, double t)
{
    if (!r->in_tick && r->tick_due > 0 && t >= r->tick_due)
        tick_now(r, t);
}

/* ------------------------------------------------------------------ server */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    int port = -1;
    if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof a) &&
        !getsockname(fd, (struct sockaddr *)&a, &al))
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static void pin_to(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static int ncpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static pid_t spawn(const char *bin, char *const argv[], char *const envp[], const char *log,
                   bool pin)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    if (pin)
        pin_to(0);
    execve(bin, argv, envp);
    _exit(127);
}

static int wait_exit(pid_t pid, double ms)
{
    double end = now_ms() + ms;
    int st;
    while (now_ms() < end) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return st;
        usleep(5000);
    }
    return -1;
}

static int tcp_ready(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    int ok = fd >= 0 && !connect(fd, (struct sockaddr *)&a, sizeof a);
    if (fd >= 0)
        close(fd);
    return ok;
}

static void tail_log(const char *path)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "tail -n 20 '%s' >&2", path);
    if (system(cmd) < 0)
        perror("tail");
}

/* ---------------------------------------------------------------------- run */

static void ctx_close(struct run *r)
{
    r->ctx = NULL;
    if (evloop_destroy(&r->ev))
        fprintf(stderr, "bench_relay: libwebsockets or the event loop did not shut down cleanly\n");
}

struct opts {
    const char *bin;
    int ns[16], nn;
    enum prov_kind pks[2];
    int npk;
    double audio_s, ramp_s;
    bool pin, keep;
};

static void metric(const char *pfx, const char *name, double v, const char *unit)
{
    if (isnan(v))
        printf("metric %s.%s nan %s\n", pfx, name, unit);
    else
        printf("metric %s.%s %.3f %s\n", pfx, name, v, unit);
}

struct result {
    int n;
    enum prov_kind pk;
    double p50, p99, max, cu, cs, ct, rss, t50, t99;
    long dropped;
    bool ok;
};

static int do_run(const struct opts *o, enum prov_kind pk, int n, struct result *res)
{
    const char *pname = pk == PK_OPENAI ? "openai" : "gemini";
    struct run run;
    memset(&run, 0, sizeof run);
    struct run *r = &run;
    R = r;
    r->pk = pk;
    r->n = n;
    r->audio_s = o->audio_s;
    r->ramp_s = o->ramp_s;
    r->settle_s = 2.0;
    r->srv_port = free_port();
    r->sp_port = free_port();
    if (r->srv_port == r->sp_port)
        r->sp_port = free_port();
    g_echo_ratio = g_echo_ratio_opt > 0 ? g_echo_ratio_opt : pk == PK_OPENAI ? 0.75 : 1.0;
    res->n = n;
    res->pk = pk;
    res->ok = false;

    char tmpl[] = "/tmp/bench_relay.XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) {
        perror("mkdtemp");
        return -1;
    }
    char dbp[256], logp[256], env_port[32], env_db[300], env_url[128];
    snprintf(dbp, sizeof dbp, "%s/bench.db", dir);
    snprintf(logp, sizeof logp, "%s/server.log", dir);
    snprintf(env_port, sizeof env_port, "PORT=%d", r->srv_port);
    snprintf(env_db, sizeof env_db, "DB_PATH=%s", dbp);
    if (pk == PK_OPENAI)
        snprintf(env_url, sizeof env_url, "OPENAI_REALTIME_URL=ws://127.0.0.1:%d/v1/realtime",
                 r->sp_port);
    else
        snprintf(env_url, sizeof env_url,
                 "GEMINI_LIVE_URL=ws://127.0.0.1:%d/ws/google.ai.generativelanguage.v1beta."
                 "GenerativeService.BidiGenerateContent",
                 r->sp_port);
    char *envp[] = {
        env_port,
        "PUBLIC_URL=" PUBLIC_URL,
        "TWILIO_AUTH_TOKEN=" AUTH_TOKEN,
        "TWILIO_ACCOUNT_SID=" ACCOUNT_SID,
        "LINK_SECRET=" LINK_SECRET,
        pk == PK_OPENAI ? "OPENAI_API_KEY=sk-bench" : "GEMINI_API_KEY=bench-key",
        pk == PK_OPENAI ? "VOICE_PROVIDER=openai" : "VOICE_PROVIDER=gemini",
        env_url,
        env_db,
        "LOG_LEVEL=warn",
        "DRAIN_SECONDS=2",
        "APP_ENV=development",
        "ENABLE_REAL_SMS=false",
        NULL,
    };
    /* db init --demo */
    char *init_argv[] = {(char *)o->bin, "db", "init", "--demo", NULL};
    pid_t ip = spawn(o->bin, init_argv, envp, logp, false);
    int st = ip > 0 ? wait_exit(ip, 30000) : -1;
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
        fprintf(stderr, "bench_relay: `%s db init --demo` failed (status %d); log:\n", o->bin, st);
        tail_log(logp);
        return -1;
    }

    /* our loop: stand-in listener + Twilio clients */
    struct lws_context_creation_info ci;
    memset(&ci, 0, sizeof ci);
    ci.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    ci.fd_limit_per_thread = 0;
    r->ctx = evloop_create(&r->ev, &ci);
    if (!r->ctx) {
        fprintf(stderr, "bench_relay: lws_create_context failed\n");
        return -1;
    }
    static const struct lws_protocol_vhost_options pvo_def = {NULL, NULL, "default", "1"};
    static const struct lws_protocol_vhost_options pvo = {NULL, &pvo_def, "standin", ""};
    struct lws_context_creation_info vi;
    memset(&vi, 0, sizeof vi);
    vi.port = r->sp_port;
    vi.iface = "127.0.0.1";
    vi.protocols = protocols;
    vi.pvo = &pvo;
    vi.vhost_name = "standin";
    vi.timeout_secs = 30;
    r->vh = lws_create_vhost(r->ctx, &vi);
    if (!r->vh) {
        fprintf(stderr, "bench_relay: stand-in vhost on port %d failed\n", r->sp_port);
        ctx_close(r);
        return -1;
    }

    /* the server */
    char *srv_argv[] = {(char *)o->bin, "serve", NULL};
    r->pid = spawn(o->bin, srv_argv, envp, logp, o->pin);
    double t_up = now_ms() + 15000;
    while (!tcp_ready(r->srv_port) && now_ms() < t_up) {
        if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
            r->pid = 0;
            break;
        }
        usleep(20000);
    }
    if (!r->pid || !tcp_ready(r->srv_port)) {
        fprintf(stderr, "bench_relay: server did not start listening on %d; log:\n", r->srv_port);
        tail_log(logp);
        if (r->pid) {
            kill(r->pid, SIGKILL);
            waitpid(r->pid, &st, 0);
        }
        ctx_close(r);
        return -1;
    }
    usleep(300000);
    r->rss_base = proc_rss_kb(r->pid);

    /* calls */
    r->calls = calloc((size_t)n, sizeof *r->calls);
    r->due = calloc((size_t)n, sizeof *r->due);
    if (!r->calls || !r->due) {
        fprintf(stderr, "bench_relay: out of memory\n");
        return -1;
    }
    double t0 = now_ms() + 50;
    r->t0 = t0;
    r->t_win0 = t0 + (r->ramp_s + r->settle_s) * 1000.0;
    r->t_stop = r->t_win0 + r->audio_s * 1000.0;
    r->t_close = r->t_stop + 3000.0; /* grace for the last echoes (see tc_service) */
    r->t_end = r->t_close + 5000.0;
    long fcap = (long)((r->t_stop - t0) / FRAME_MS) + 8;
    for (int i = 0; i < n; i++) {
        struct tcall *c = &r->calls[i];
        c->idx = i;
        c->t_due = t0 + (n > 1 ? r->ramp_s * 1000.0 * i / (n - 1) : 0);
        r->due[i] = c->t_due;
        snprintf(c->sid, sizeof c->sid, "CA%08x%08x%016x", (unsigned)getpid(), (unsigned)time(NULL),
                 (unsigned)i);
        snprintf(c->from, sizeof c->from, "+447700900%03d", 100 + (i % 900));
        c->frames_cap = fcap;
        c->sent_t = calloc((size_t)fcap, sizeof *c->sent_t);
        c->echoed = calloc((size_t)fcap, 1);
        c->first_echo = -1;
        c->conn_id = -1;
        for (int k = 0; k < NLEV; k++)
            c->k_seq[k] = -1;
        det_init(&c->det, 8000);
        if (!c->sent_t || !c->echoed) {
            fprintf(stderr, "bench_relay: out of memory\n");
            return -1;
        }
    }
    lws_sul_schedule(r->ctx, 0, &r->tick, tick_cb, 1);
    while (now_ms() < r->t_end && !g_stop) {
        evloop_turn(&r->ev);
        double t = now_ms();
        if (r->all_done && t > r->t_stop && r->window_done)
            break;
        if (t < r->next_wait)
            continue;
        r->next_wait = t + 100;
        if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
            fprintf(stderr, "bench_relay: the server exited during the run (status %d); log:\n",
                    st);
            tail_log(logp);
            r->pid = 0;
            break;
        }
    }
    r->interrupted = g_stop;
    lws_sul_cancel(&r->tick);

    /* ---- results ---- */
    long sent = 0, after_first = 0, dropped = 0, pre = 0, no_echo_calls = 0, failed = 0, media = 0,
         marks = 0, marks_echoed = 0, viol = 0, dups = 0, clears = 0, unmatched = 0, no_id = 0;
    for (int i = 0; i < n; i++) {
        struct tcall *c = &r->calls[i];
        sent += c->frames;
        media += c->media_rx;
        marks += c->marks_rx;
        marks_echoed += c->marks_echoed;
        viol += c->violations;
        dups += c->dups;
        clears += c->clears;
        unmatched += c->unmatched;
        if (c->conn_id < 0)
            no_id++;
        if (c->st != TC_DONE) {
            failed++;
            if (failed <= 5)
                fprintf(stderr, "bench_relay: call %d (%s) failed: %s\n", i, c->sid,
                        c->fail[0] ? c->fail : "did not finish");
        }
        if (c->first_echo < 0) {
            no_echo_calls++;
            dropped += c->frames;
            continue;
        }
        pre += c->first_echo;
        for (long s = c->first_echo; s < c->frames; s++) {
            after_first++;
            dropped += !c->echoed[s];
        }
    }
    long st_bad = 0;
    for (int i = 0; i < r->nconns; i++)
        st_bad += r->conns[i]->bad;

    qsort(r->lat.v, r->lat.n, sizeof(float), cmp_float);
    qsort(r->rtt.v, r->rtt.n, sizeof(float), cmp_float);
    qsort(r->leg_in.v, r->leg_in.n, sizeof(float), cmp_float);
    qsort(r->leg_out.v, r->leg_out.n, sizeof(float), cmp_float);
    qsort(r->ttfa.v, r->ttfa.n, sizeof(float), cmp_float);
    qsort(r->tfm.v, r->tfm.n, sizeof(float), cmp_float);
    qsort(r->lag.v, r->lag.n, sizeof(float), cmp_float);
    qsort(r->rss.v, r->rss.n, sizeof(float), cmp_float);
    double win_s = r->audio_s;
    double cu = (r->cpu_u1 - r->cpu_u0) / (n * win_s), cs = (r->cpu_s1 - r->cpu_s0) / (n * win_s);
    double bench_cpu =
        ((double)(r->bench_ru1.ru_utime.tv_sec - r->bench_ru0.ru_utime.tv_sec) * 1e3 +
         (double)(r->bench_ru1.ru_utime.tv_usec - r->bench_ru0.ru_utime.tv_usec) / 1e3 +
         (double)(r->bench_ru1.ru_stime.tv_sec - r->bench_ru0.ru_stime.tv_sec) * 1e3 +
         (double)(r->bench_ru1.ru_stime.tv_usec - r->bench_ru0.ru_stime.tv_usec) / 1e3) /
        (win_s * 10.0);
    /* median over the window: the peak also holds transient queues (stalls, backlogs) */
    double rss_med = samp_q(&r->rss, 0.5);
    double rss_call =
        r->rss_base > 0 && !isnan(rss_med) ? (rss_med - (double)r->rss_base) / n : NAN;
    double rss_call_peak =
        r->rss_peak > 0 && r->rss_base > 0 ? (double)(r->rss_peak - r->rss_base) / n : NAN;

    char pfx[64];
    snprintf(pfx, sizeof pfx, "relay.%s.n%d", pname, n);
    metric(pfx, "calls", n, "calls");
    metric(pfx, "calls_failed", (double)failed, "calls");
    metric(pfx, "calls_without_echo", (double)no_echo_calls, "calls");
    metric(pfx, "calls_without_greeting_id", (double)no_id, "calls");
    metric(pfx, "frames_sent", (double)sent, "frames");
    metric(pfx, "frames_before_first_echo", (double)pre, "frames");
    metric(pfx, "frames_after_first_echo", (double)after_first, "frames");
    metric(pfx, "frames_dropped", (double)dropped, "frames");
    metric(pfx, "frames_duplicated", (double)dups, "frames");
    metric(pfx, "levels_unmatched", (double)unmatched, "plateaus");
    metric(pfx, "media_received", (double)media, "messages");
    metric(pfx, "marks_received", (double)marks, "marks");
    metric(pfx, "marks_echoed", (double)marks_echoed, "marks");
    metric(pfx, "clears_received", (double)clears, "messages");
    metric(pfx, "twilio_protocol_violations", (double)viol, "messages");
    metric(pfx, "provider_protocol_violations", (double)st_bad, "messages");
    metric(pfx, "latency_samples", (double)r->lat.n, "frames");
    metric(pfx, "added_latency_p50", samp_q(&r->lat, 0.50), "ms");
    metric(pfx, "added_latency_p99", samp_q(&r->lat, 0.99), "ms");
    metric(pfx, "added_latency_max", samp_q(&r->lat, 1.0), "ms");
    metric(pfx, "inbound_leg_p50", samp_q(&r->leg_in, 0.50), "ms");
    metric(pfx, "inbound_leg_p99", samp_q(&r->leg_in, 0.99), "ms");
    metric(pfx, "outbound_leg_p50", samp_q(&r->leg_out, 0.50), "ms");
    metric(pfx, "outbound_leg_p99", samp_q(&r->leg_out, 0.99), "ms");
    metric(pfx, "round_trip_p50", samp_q(&r->rtt, 0.50), "ms");
    metric(pfx, "round_trip_p99", samp_q(&r->rtt, 0.99), "ms");
    metric(pfx, "time_to_first_audio_p50", samp_q(&r->ttfa, 0.50), "ms");
    metric(pfx, "time_to_first_audio_p99", samp_q(&r->ttfa, 0.99), "ms");
    metric(pfx, "time_to_first_media_p50", samp_q(&r->tfm, 0.50), "ms");
    metric(pfx, "server_cpu_user_per_call", cu, "ms/s");
    metric(pfx, "server_cpu_system_per_call", cs, "ms/s");
    metric(pfx, "server_cpu_total_per_call", cu + cs, "ms/s");
    metric(pfx, "server_cpu_total",
           (r->cpu_u1 - r->cpu_u0 + r->cpu_s1 - r->cpu_s0) / (win_s * 10.0), "%core");
    metric(pfx, "server_rss_idle", (double)r->rss_base, "KB");
    metric(pfx, "server_rss_peak", (double)r->rss_peak, "KB");
    metric(pfx, "server_rss_median", rss_med, "KB");
    metric(pfx, "server_rss_per_call", rss_call, "KB");
    metric(pfx, "server_rss_per_call_peak", rss_call_peak, "KB");
    metric(pfx, "server_runqueue_wait", (r->srv_wait1 - r->srv_wait0) / (win_s * 10.0), "%window");
    metric(pfx, "bench_cpu", bench_cpu, "%core");
    metric(pfx, "bench_runqueue_wait", (r->bench_wait1 - r->bench_wait0) / (win_s * 10.0),
           "%window");
    metric(pfx, "bench_timer_lag_p99", samp_q(&r->lag, 0.99), "ms");
    metric(pfx, "bench_timer_lag_max", samp_q(&r->lag, 1.0), "ms");
    metric(pfx, "window", win_s, "s");
    metric(pfx, "echo_ratio", g_echo_ratio, "ratio");
    fflush(stdout);

    res->p50 = samp_q(&r->lat, 0.5);
    res->p99 = samp_q(&r->lat, 0.99);
    res->max = samp_q(&r->lat, 1.0);
    res->dropped = dropped;
    res->cu = cu;
    res->cs = cs;
    res->ct = cu + cs;
    res->rss = rss_call;
    res->t50 = samp_q(&r->ttfa, 0.5);
    res->t99 = samp_q(&r->ttfa, 0.99);
    res->ok = r->window_done && !r->interrupted && no_echo_calls < n && r->pid;

    /* ---- teardown ---- */
    if (r->pid) {
        kill(r->pid, SIGTERM);
        st = wait_exit(r->pid, 10000);
        if (st < 0) {
            fprintf(stderr, "bench_relay: server did not exit on SIGTERM within 10 s: killed\n");
            kill(r->pid, SIGKILL);
            waitpid(r->pid, &st, 0);
            res->ok = false;
        } else if (!WIFEXITED(st) || WEXITSTATUS(st)) {
            fprintf(stderr, "bench_relay: server exit status %d; log:\n", st);
            tail_log(logp);
        }
    }
    ctx_close(r);
    for (int i = 0; i < n; i++) {
        struct tcall *c = &r->calls[i];
        q_free(&c->q);
        free(c->body);
        wsrx_done(&c->rx);
        free(c->hresp.p);
        free(c->sent_t);
        free(c->echoed);
    }
    free(r->calls);
    free(r->due);
    for (int i = 0; i < r->nconns; i++) {
        q_free(&r->conns[i]->q);
        wsrx_done(&r->conns[i]->rx);
        free(r->conns[i]);
    }
    free(r->conns);
    free(r->lat.v);
    free(r->rtt.v);
    free(r->leg_in.v);
    free(r->leg_out.v);
    free(r->ttfa.v);
    free(r->tfm.v);
    free(r->lag.v);
    free(r->rss.v);
    if (!o->keep) {
        unlink(dbp);
        char p[300];
        snprintf(p, sizeof p, "%s-wal", dbp);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", dbp);
        unlink(p);
        unlink(logp);
        rmdir(dir);
    } else {
        fprintf(stderr, "bench_relay: kept %s\n", dir);
    }
    R = NULL;
    return res->ok ? 0 : -1;
}

static void usage(void)
{
    fprintf(
        stderr,
        "usage: bench_relay [--provider openai|gemini|both] [--calls N[,N...]] [--seconds S]\n"
        "                   [--ramp S] [--echo-ratio R] [--bin PATH] [--no-pin] [--keep]\n"
        "  defaults: openai, 100,500,1000 calls, 10 s of audio after a ramp of N/200 s (>= 1 s),\n"
        "  server binary $VWS_BIN or build/voice-ws\n");
}

int main(int argc, char **argv)
{
    struct opts o;
    memset(&o, 0, sizeof o);
    o.bin = getenv("VWS_BIN") ? getenv("VWS_BIN") : "build/voice-ws";
    o.audio_s = 10;
    o.ramp_s = -1;
    o.pin = true;
    o.pks[0] = PK_OPENAI;
    o.npk = 1;
    int defn[] = {100, 500, 1000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--provider") && v) {
            i++;
            if (!strcmp(v, "openai")) {
                o.pks[0] = PK_OPENAI;
                o.npk = 1;
            } else if (!strcmp(v, "gemini")) {
                o.pks[0] = PK_GEMINI;
                o.npk = 1;
            } else if (!strcmp(v, "both")) {
                o.pks[0] = PK_OPENAI;
                o.pks[1] = PK_GEMINI;
                o.npk = 2;
            } else {
                usage();
                return 2;
            }
        } else if (!strcmp(a, "--calls") && v) {
            i++;
            char *s = strdup(v), *save = NULL;
            for (char *t = strtok_r(s, ",", &save); t && o.nn < 16;
                 t = strtok_r(NULL, ",", &save)) {
                int n = atoi(t);
                if (n < 1 || n > 20000) {
                    free(s);
                    usage();
                    return 2;
                }
                o.ns[o.nn++] = n;
            }
            free(s);
        } else if (!strcmp(a, "--seconds") && v) {
            o.audio_s = atof(argv[++i]);
        } else if (!strcmp(a, "--ramp") && v) {
            o.ramp_s = atof(argv[++i]);
        } else if (!strcmp(a, "--bin") && v) {
            o.bin = argv[++i];
        } else if (!strcmp(a, "--echo-ratio") && v) {
            g_echo_ratio_opt = atof(argv[++i]);
            if (g_echo_ratio_opt < 0.3 || g_echo_ratio_opt > 1.0) {
                usage();
                return 2;
            }
        } else if (!strcmp(a, "--no-pin")) {
            o.pin = false;
        } else if (!strcmp(a, "--keep")) {
            o.keep = true;
        } else {
            usage();
            return 2;
        }
    }
    if (!o.nn) {
        memcpy(o.ns, defn, sizeof defn);
        o.nn = 3;
    }
    if (o.audio_s < 0.5 || o.audio_s > 600) {
        usage();
        return 2;
    }
    if (access(o.bin, X_OK)) {
        fprintf(stderr, "bench_relay: server binary %s not found (build it or pass --bin)\n",
                o.bin);
        return 1;
    }
    /* File descriptors: ~2 per call on each side (Twilio socket + provider socket) plus the
     * webhook connections; raise the soft limit to the hard one (inherited by the server). */
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl)) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (ncpus() < 2)
        o.pin = false;
    if (o.pin)
        pin_to(1);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    lws_set_log_level(LLL_ERR, NULL);
    frame_b64_init();
    printf("# bench_relay: server %s, cores %d, pinned %s, RLIMIT_NOFILE %llu\n", o.bin, ncpus(),
           o.pin ? "server=0 bench=1" : "no", (unsigned long long)rl.rlim_cur);

    struct result res[32];
    int nres = 0, rc = 0;
    for (int p = 0; p < o.npk; p++)
        for (int i = 0; i < o.nn && !g_stop; i++) {
            struct opts oo = o;
            if (oo.ramp_s < 0)
                oo.ramp_s = o.ns[i] / 200.0 < 1.0 ? 1.0 : o.ns[i] / 200.0;
            if ((unsigned long long)o.ns[i] * 3 + 64 > (unsigned long long)rl.rlim_cur)
                fprintf(stderr, "bench_relay: warning: RLIMIT_NOFILE %llu is low for %d calls\n",
                        (unsigned long long)rl.rlim_cur, o.ns[i]);
            if (do_run(&oo, o.pks[p], o.ns[i], &res[nres]))
                rc = 1;
            nres++;
        }
    printf("\n| N | provider | latency p50 (ms) | p99 (ms) | max (ms) | dropped frames | CPU user "
           "(ms/s/call) | CPU system (ms/s/call) | CPU total (ms/s/call) | RSS (KB/call) | first "
           "audio "
           "p50 (ms) | first audio p99 (ms) |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < nres; i++) {
        struct result *x = &res[i];
        printf(
            "| %d | %s | %.2f | %.2f | %.2f | %ld | %.3f | %.3f | %.3f | %.1f | %.0f | %.0f |%s\n",
            x->n, x->pk == PK_OPENAI ? "openai" : "gemini", x->p50, x->p99, x->max, x->dropped,
            x->cu, x->cs, x->ct, x->rss, x->t50, x->t99, x->ok ? "" : " (run incomplete)");
    }
    return rc;
}
