/*
 * server.h - `voice-ws serve`: the libwebsockets HTTP + WebSocket server
 * (Twilio webhook, Media Streams, provider sockets, health, metrics, action
 * endpoint) on one event loop, with the worker pool for blocking work.
 */
#ifndef VWS_SERVER_H
#define VWS_SERVER_H

struct cfg;

struct srv_opts {
    int port;     /* 0 = cfg->port */
    int provider; /* enum cfg_provider, -1 = cfg->voice_provider */
};

/* Run until SIGTERM/SIGINT (then drain). Returns the process exit code. Main thread. */
int srv_run(const struct cfg *cfg, const struct srv_opts *o);

#endif
