/*
 * oai_peer.c - run the OpenAI Realtime stand-in from C tests (see oai_peer.h).
 * Test code only.
 */
#include "oai_peer.h"

#include "vt_node.h"
#include "vwstest.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The launcher is shared with the Gemini peer; these copy its fields in and out. */
static void from_node(struct vt_oai *s, const struct vt_node *n)
{
    s->pid = n->pid;
    s->stdin_fd = n->stdin_fd;
    s->port = n->port;
    snprintf(s->dir, sizeof s->dir, "%s", n->dir);
    snprintf(s->log_path, sizeof s->log_path, "%s", n->log_path);
}

static int start_once(struct vt_oai *s, const char *script_json, const char *key, const char *cert,
                      const char *pkey)
{
    struct vt_node n;

    memset(s, 0, sizeof *s);
    if (vt_node_start(&n, "openai_standin.js", key ? key : "sk-test", script_json, cert, pkey,
                      "oai_peer"))
        return -1;
    from_node(s, &n);
    if (cert)
        snprintf(s->url, sizeof s->url, "wss://localhost:%d/v1/realtime", s->port);
    else
        snprintf(s->url, sizeof s->url, "ws://127.0.0.1:%d/v1/realtime", s->port);
    return 0;
}

int vt_oai_start(struct vt_oai *s, const char *script_json, const char *key)
{
    /* A port from vt_free_port can be taken again before node binds it: retry. */
    for (int attempt = 0; attempt < 3; attempt++)
        if (start_once(s, script_json, key, NULL, NULL) == 0)
            return 0;
    return -1;
}

int vt_oai_start_tls(struct vt_oai *s, const char *script_json, const char *key,
                     const char *cert_pem_path, const char *key_pem_path)
{
    for (int attempt = 0; attempt < 3; attempt++)
        if (start_once(s, script_json, key, cert_pem_path, key_pem_path) == 0)
            return 0;
    return -1;
}

int vt_oai_make_certs(const char *dir)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > ext.cnf && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout ca.key -out ca.pem -days 2 -subj /CN=vws-test-ca 2>/dev/null && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout srv.key -out srv.csr -subj /CN=localhost 2>/dev/null && "
             "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out srv.pem -days 2 -extfile ext.cnf 2>/dev/null",
             dir);
    return system(cmd) == 0 ? 0 : -1;
}

void vt_oai_stop(struct vt_oai *s)
{
    struct vt_node n = {.pid = s->pid, .stdin_fd = s->stdin_fd, .port = s->port};
    snprintf(n.dir, sizeof n.dir, "%s", s->dir);
    vt_node_stop(&n);
    s->pid = 0;
    s->stdin_fd = 0;
    s->dir[0] = '\0';
}

json_t *vt_oai_log(const struct vt_oai *s)
{
    return vt_node_log(s->log_path);
}

static int count_dir(json_t *log, const char *dir, const char *type)
{
    size_t i;
    json_t *r;
    int n = 0;
    json_array_foreach(log, i, r)
    {
        const char *d = json_string_value(json_object_get(r, "dir"));
        const char *t = json_string_value(json_object_get(json_object_get(r, "ev"), "type"));
        if (d && t && !strcmp(d, dir) && !strcmp(t, type))
            n++;
    }
    return n;
}

int vt_oai_count_in(json_t *log, const char *type)
{
    return count_dir(log, "in", type);
}

int vt_oai_count_out(json_t *log, const char *type)
{
    return count_dir(log, "out", type);
}

json_t *vt_oai_nth_in(json_t *log, const char *type, int nth)
{
    size_t i;
    json_t *r;
    json_array_foreach(log, i, r)
    {
        const char *d = json_string_value(json_object_get(r, "dir"));
        json_t *ev = json_object_get(r, "ev");
        const char *t = json_string_value(json_object_get(ev, "type"));
        if (d && t && !strcmp(d, "in") && !strcmp(t, type) && nth-- == 0)
            return ev;
    }
    return NULL;
}

int vt_oai_errors(json_t *log, const char *code)
{
    size_t i;
    json_t *r;
    int n = 0;
    json_array_foreach(log, i, r)
    {
        const char *d = json_string_value(json_object_get(r, "dir"));
        json_t *ev = json_object_get(r, "ev");
        const char *t = json_string_value(json_object_get(ev, "type"));
        if (!d || !t || strcmp(d, "out") || strcmp(t, "error"))
            continue;
        const char *c = json_string_value(json_object_get(json_object_get(ev, "error"), "code"));
        if (!*code || (c && !strcmp(c, code)))
            n++;
    }
    return n;
}

char *vt_oai_stderr(const struct vt_oai *s)
{
    return vt_node_stderr(s->dir);
}
