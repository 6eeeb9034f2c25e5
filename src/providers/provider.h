/*
 * provider.h - the speech-to-speech provider interface (OpenAI Realtime,
 * Gemini Live), one table of function pointers per provider.
 *
 * A provider owns one outbound WebSocket (an lws client on the server's
 * loop) per call. It speaks its vendor's protocol and reports to the call
 * session through struct prov_events; the call session never sees vendor
 * JSON. Audio crosses this interface as base64 G.711 u-law at 8 kHz in both
 * directions (what Twilio speaks): OpenAI passes it through untouched,
 * Gemini transcodes and resamples inside the provider.
 *
 * Tool calls: the provider emits tool_call only for calls that may run
 * (OpenAI: after response.done with status completed; Gemini: on toolCall)
 * and tool_cancel when the vendor withdraws one. The session answers each
 * with tool_result(); the provider sends the vendor's function output and,
 * for OpenAI, exactly one response.create once every call of a response is
 * answered (its own per-call response state machine).
 *
 * Threads: everything here runs on the loop thread.
 */
#ifndef VWS_PROVIDER_H
#define VWS_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>

struct cfg;
struct err;
struct lws_context;
struct lws_vhost;
struct lws_protocols;
struct prov;

enum prov_close {
    PROV_CLOSE_NORMAL = 0,       /* we closed it */
    PROV_CLOSE_CONNECT_FAILED,   /* TCP/TLS/handshake failed: fail over */
    PROV_CLOSE_REJECTED,         /* key refused, model/setup rejected (401/403/1007/1008): fail over */
    PROV_CLOSE_DROPPED,          /* connection lost mid-call */
    PROV_CLOSE_PROTOCOL,         /* malformed or impossible events from the vendor */
    PROV_CLOSE_EXPIRED,          /* session length limit reached */
};

struct prov_events {             /* implemented by the call session; loop thread */
    /* Session configured (session.updated / setupComplete): caller audio may flow. */
    void (*ready)(void *owner);
    /* Agent audio: base64 u-law 8 kHz, len chars; item_id identifies the assistant item
     * (OpenAI item id; "" when the vendor has none). */
    void (*audio)(void *owner, const char *ulaw_b64, size_t len, const char *item_id);
    /* Caller started speaking over the agent (OpenAI speech_started, Gemini interrupted):
     * clear Twilio's buffer and drop queued audio. */
    void (*barge_in)(void *owner);
    /* Run this action. args_json is the vendor's arguments as JSON text (object). */
    void (*tool_call)(void *owner, const char *call_id, const char *name, const char *args_json);
    /* The vendor withdrew this call: don't start it if it hasn't started. */
    void (*tool_cancel)(void *owner, const char *call_id);
    /* The provider connection is gone (no more events after this). */
    void (*closed)(void *owner, enum prov_close why, const char *detail);
};

struct prov_open_args {
    struct lws_context *ctx;
    struct lws_vhost *vhost;     /* the server's vhost, has the provider's client protocol */
    const struct cfg *cfg;       /* borrowed, outlives the provider */
    const struct prov_events *ev;
    void *owner;                 /* passed back to every event */
    const char *instructions;    /* system prompt (UK claims agent), borrowed for the call */
    const char *call_sid;        /* for logs */
    const char *address;         /* numeric IP resolved off-loop, or NULL: use the URL's host */
};

struct prov_ops {
    const char *name;            /* "openai", "gemini": also the audit provider */
    /* MUST: an API key (and URL) is configured. */
    bool (*configured)(const struct cfg *cfg);
    /* MUST: the lws client protocol this provider's sockets use (registered on the vhost). */
    const struct lws_protocols *protocol;
    /* MUST: start connecting (async). *out set on success; events follow later. */
    int (*open)(struct prov **out, const struct prov_open_args *a, struct err *e);
    /* MUST: caller audio from Twilio (base64 u-law 8 kHz, len chars). Dropped until ready. */
    void (*send_audio)(struct prov *p, const char *ulaw_b64, size_t len);
    /* MUST: answer a tool_call with the action's envelope (JSON text). */
    void (*tool_result)(struct prov *p, const char *call_id, const char *name,
                        const char *envelope_json);
    /* MUST: have the agent speak first; first_name "" when the caller is not on file. */
    void (*greet)(struct prov *p, const char *first_name);
    /* MAY: the caller heard heard_ms of item_id before barging in (OpenAI truncate). */
    void (*truncate)(struct prov *p, const char *item_id, int heard_ms);
    /* MUST: close and free; accepts NULL; no events after it returns. */
    void (*close)(struct prov *p);
};

extern const struct prov_ops prov_openai_ops;
extern const struct prov_ops prov_gemini_ops;

/* The default agent instructions (UK claims company), with COMPANY_NAME filled in.
 * Or INSTRUCTIONS_FILE's contents. Caller frees. */
char *prov_instructions(const struct cfg *cfg);

#endif
