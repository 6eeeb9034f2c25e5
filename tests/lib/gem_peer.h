/*
 * gem_peer.h - start/stop the Gemini Live stand-in (tests/peers/gemini_standin.js)
 * from a C test, drive it, and read what it received. Test code only.
 *
 *   struct gem_peer peer;
 *   gem_peer_start(&peer, "{\"rules\":[...]}", "test-key");  // script JSON (NULL = none)
 *   ... GEMINI_LIVE_URL = peer.url ...
 *   gem_peer_control(&peer, "last", "[{\"interrupted\":true}]"); // run steps now
 *   json_t *log = gem_peer_log(&peer);                          // array of records
 *   gem_peer_stop(&peer);                                       // kills node by its pid
 *
 * Started with --lifeline: if the test dies, node sees EOF on stdin and exits.
 */
#ifndef VWS_GEM_PEER_H
#define VWS_GEM_PEER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct gem_peer {
    pid_t pid;    /* node process, 0 when not running */
    int stdin_fd; /* lifeline pipe (write end) */
    int port;
    char url[256]; /* ws://127.0.0.1:PORT/ws/google.ai...v1beta...BidiGenerateContent */
    char dir[128]; /* temp dir: script.json, log.jsonl, stderr.txt */
    char log_path[192];
};

/* Start on a free loopback port; waits until it listens (10 s max). 0 or -1. */
int gem_peer_start(struct gem_peer *s, const char *script_json, const char *key);
/* Same with the API version in the URL ("v1beta", "v1alpha"). */
int gem_peer_start_ver(struct gem_peer *s, const char *script_json, const char *key,
                       const char *version);
/* Same over TLS: the stand-in serves wss:// with cert/key (PEM files); the URL is
 * wss://localhost:PORT/... (dial 127.0.0.1, verify "localhost"). */
int gem_peer_start_tls(struct gem_peer *s, const char *script_json, const char *key,
                       const char *cert_pem, const char *key_pem);
/* SIGTERM, wait, remove the temp dir. Safe to call twice. */
void gem_peer_stop(struct gem_peer *s);
/* POST steps (JSON array text) to /control/<conn> ("last" or a number). HTTP status or -1. */
int gem_peer_control(const struct gem_peer *s, const char *conn, const char *steps_json);
/* The stand-in's own analysis of the caller audio a connection received (GET /audio/<conn>):
 * {"rate","samples","ms","dominant_hz","rms"}. Caller owns; NULL on error. */
json_t *gem_peer_audio_report(const struct gem_peer *s, const char *conn);
/* Every record so far. Caller owns. */
json_t *gem_peer_log(const struct gem_peer *s);

/* Client messages with this top-level key received (conn 0 = any). */
int gem_peer_count_in(json_t *log, const char *key, int conn);
/* n-th (0-based) received client message with this key (the whole message), borrowed. */
json_t *gem_peer_nth_in(json_t *log, const char *key, int n);
/* Records of this kind ("reject", "closed", "handshake"), n-th, borrowed; NULL if none. */
json_t *gem_peer_kind(json_t *log, const char *kind, int n);
int gem_peer_count_kind(json_t *log, const char *kind);
/* Caller audio received (realtimeInput.audio) on conn (0 = all), decoded to PCM16 (malloc'd,
 * *n samples); *rate gets the mimeType rate of the last chunk. Frames must be text. */
int16_t *gem_peer_audio(json_t *log, int conn, size_t *n, int *rate);
/* The stand-in's stderr so far (malloc'd). */
char *gem_peer_stderr(const struct gem_peer *s);

#endif
