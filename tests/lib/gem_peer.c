/*
 * gem_peer.c - run the Gemini Live stand-in from C tests (see gem_peer.h). Test code only.
 */
#include "gem_peer.h"

#include "core/util.h"
#include "vt_node.h"
#include "vwstest.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int gem_peer_start(struct gem_peer *s, const char *script_json, const char *key)
{
    return gem_peer_start_ver(s, script_json, key, "v1beta");
}

static int start(struct gem_peer *s, const char *script_json, const char *key, const char *version,
                 const char *cert, const char *tkey);

int gem_peer_start_ver(struct gem_peer *s, const char *script_json, const char *key,
                       const char *version)
{
    return start(s, script_json, key, version, NULL, NULL);
}

int gem_peer_start_tls(struct gem_peer *s, const char *script_json, const char *key,
                       const char *cert_pem, const char *key_pem)
{
    return start(s, script_json, key, "v1beta", cert_pem, key_pem);
}

static int start(struct gem_peer *s, const char *script_json, const char *key, const char *version,
                 const char *cert, const char *tkey)
{
    struct vt_node n;

    memset(s, 0, sizeof *s);
    if (vt_node_start(&n, "gemini_standin.js", key ? key : "test-key", script_json, cert, tkey,
                      "gem_peer"))
        return -1;
    s->pid = n.pid;
    s->stdin_fd = n.stdin_fd;
    s->port = n.port;
    snprintf(s->dir, sizeof s->dir, "%s", n.dir);
    snprintf(s->log_path, sizeof s->log_path, "%s", n.log_path);
    snprintf(s->url, sizeof s->url,
             "%s://%s:%d/ws/google.ai.generativelanguage.%s.GenerativeService."
             "BidiGenerateContent",
             cert ? "wss" : "ws", cert ? "localhost" : "127.0.0.1", s->port, version);
    return 0;
}

void gem_peer_stop(struct gem_peer *s)
{
    struct vt_node n = {.pid = s->pid, .stdin_fd = s->stdin_fd, .port = s->port};
    snprintf(n.dir, sizeof n.dir, "%s", s->dir);
    vt_node_stop(&n);
    s->pid = 0;
    s->stdin_fd = 0;
    s->dir[0] = '\0';
}

static size_t sink(char *p, size_t sz, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return sz * n;
}

int gem_peer_control(const struct gem_peer *s, const char *conn, const char *steps_json)
{
    char url[128];
    long status = -1;
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");

    if (!c)
        return -1;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/control/%s", s->port, conn);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, steps_json);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return (int)status;
}

struct membuf {
    char *p;
    size_t n;
};

static size_t collect(char *p, size_t sz, size_t n, void *arg)
{
    struct membuf *m = arg;
    char *np = realloc(m->p, m->n + sz * n + 1);
    if (!np)
        return 0;
    m->p = np;
    memcpy(m->p + m->n, p, sz * n);
    m->n += sz * n;
    m->p[m->n] = '\0';
    return sz * n;
}

json_t *gem_peer_audio_report(const struct gem_peer *s, const char *conn)
{
    char url[128];
    struct membuf m = {NULL, 0};
    long status = 0;
    CURL *c = curl_easy_init();
    json_t *j = NULL;

    if (!c)
        return NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/audio/%s", s->port, conn);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status == 200 && m.p)
        j = json_loads(m.p, 0, NULL);
    free(m.p);
    curl_easy_cleanup(c);
    return j;
}

json_t *gem_peer_log(const struct gem_peer *s)
{
    return vt_node_log(s->log_path);
}

static bool is_in(json_t *r, const char *key, int conn)
{
    const char *d = json_string_value(json_object_get(r, "dir"));
    if (!d || strcmp(d, "in"))
        return false;
    if (conn && json_integer_value(json_object_get(r, "conn")) != conn)
        return false;
    return json_object_get(json_object_get(r, "msg"), key) != NULL;
}

int gem_peer_count_in(json_t *log, const char *key, int conn)
{
    size_t i;
    json_t *r;
    int n = 0;
    json_array_foreach(log, i, r) n += is_in(r, key, conn);
    return n;
}

json_t *gem_peer_nth_in(json_t *log, const char *key, int n)
{
    size_t i;
    json_t *r;
    json_array_foreach(log, i, r) if (is_in(r, key, 0) && n-- == 0) return json_object_get(r,
                                                                                           "msg");
    return NULL;
}

json_t *gem_peer_kind(json_t *log, const char *kind, int n)
{
    size_t i;
    json_t *r;
    json_array_foreach(log, i, r)
    {
        const char *k = json_string_value(json_object_get(r, "kind"));
        if (k && !strcmp(k, kind) && n-- == 0)
            return r;
    }
    return NULL;
}

int gem_peer_count_kind(json_t *log, const char *kind)
{
    int n = 0;
    while (gem_peer_kind(log, kind, n))
        n++;
    return n;
}

int16_t *gem_peer_audio(json_t *log, int conn, size_t *n, int *rate)
{
    size_t i, cap = 0, len = 0;
    json_t *r;
    uint8_t *bytes = NULL;

    *n = 0;
    json_array_foreach(log, i, r)
    {
        if (!is_in(r, "realtimeInput", conn))
            continue;
        json_t *a =
            json_object_get(json_object_get(json_object_get(r, "msg"), "realtimeInput"), "audio");
        const char *mime = json_string_value(json_object_get(a, "mimeType"));
        const char *data = json_string_value(json_object_get(a, "data"));
        if (!mime || !data)
            continue;
        const char *rp = strstr(mime, "rate=");
        if (rate)
            *rate = rp ? atoi(rp + 5) : 0;
        size_t dl = strlen(data), need = (dl / 4 + 1) * 3;
        if (len + need > cap) {
            cap = (len + need) * 2;
            bytes = realloc(bytes, cap);
        }
        long k = util_b64_decode(data, dl, bytes + len, cap - len);
        if (k > 0)
            len += (size_t)k;
    }
    int16_t *pcm = malloc(len + 2);
    for (size_t j = 0; j + 1 < len; j += 2)
        pcm[j / 2] = (int16_t)(uint16_t)(bytes[j] | (bytes[j + 1] << 8));
    *n = len / 2;
    free(bytes);
    return pcm;
}

char *gem_peer_stderr(const struct gem_peer *s)
{
    return vt_node_stderr(s->dir);
}
