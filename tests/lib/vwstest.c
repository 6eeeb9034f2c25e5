/*
 * vwstest.c - shared test helpers (see vwstest.h). Test code only.
 */
#include "vwstest.h"

#include "core/cfg.h"
#include "core/err.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct kvlist {
    const char *const *kv;
};

static const char *kv_get(const char *name, void *arg)
{
    const struct kvlist *l = arg;
    size_t n = strlen(name);
    for (const char *const *p = l->kv; p && *p; p++)
        if (!strncmp(*p, name, n) && (*p)[n] == '=')
            return *p + n + 1;
    return NULL;
}

int vt_cfg_try(struct cfg *c, const char *const *kv, char *detail, size_t detailsz)
{
    struct kvlist l = {kv};
    struct err e = {0};
    int rc = cfg_load_from(c, kv_get, &l, &e);
    if (detail && detailsz)
        snprintf(detail, detailsz, "%s", e.detail);
    return rc;
}

void vt_cfg(struct cfg *c, const char *const *kv)
{
    char detail[256];
    if (vt_cfg_try(c, kv, detail, sizeof detail)) {
        fprintf(stderr, "vt_cfg: %s\n", detail);
        abort();
    }
}

char *vt_tmpdir(void)
{
    char tmpl[] = "/tmp/vws-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    if (!d)
        abort();
    return strdup(d);
}

void vt_rmdir(const char *dir)
{
    char cmd[512];
    if (!dir || strncmp(dir, "/tmp/vws-test-", 14))
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "vt_rmdir: could not remove %s\n", dir);
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

const char *vt_bin(void)
{
    return env_or("VWS_BIN", "build/voice-ws");
}

const char *vt_src(void)
{
    return env_or("VWS_SRC", ".");
}

const char *vt_build(void)
{
    return env_or("VWS_BUILD", "build");
}

static void add_env(char **envp, int *n, int max, const char *name)
{
    const char *v = getenv(name);
    if (v && *n < max - 1) {
        size_t len = strlen(name) + strlen(v) + 2;
        envp[*n] = malloc(len);
        snprintf(envp[*n], len, "%s=%s", name, v);
        (*n)++;
    }
}

static char *slurp_fd(int fd)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    ssize_t k;
    lseek(fd, 0, SEEK_SET);
    while ((k = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)k;
        if (cap - len < 2)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    return buf;
}

int vt_run(struct vt_run *r, const char *cwd, const char *const *env, const char *const *argv,
           int timeout_s)
{
    char *envp[128];
    int n = 0, status = 0;
    FILE *fo = tmpfile(), *fe = tmpfile();
    static const char *const pass[] = {"PATH", "HOME", "ASAN_OPTIONS", "UBSAN_OPTIONS",
                                       "LSAN_OPTIONS", "TMPDIR", NULL};

    memset(r, 0, sizeof *r);
    for (const char *const *p = pass; *p; p++)
        add_env(envp, &n, 128, *p);
    for (const char *const *p = env; p && *p && n < 127; p++)
        envp[n++] = strdup(*p);
    envp[n] = NULL;

    pid_t pid = fork();
    if (pid == 0) {
        dup2(fileno(fo), 1);
        dup2(fileno(fe), 2);
        if (cwd && chdir(cwd))
            _exit(127);
        execve(argv[0], (char *const *)argv, envp);
        _exit(127);
    }
    for (int i = 0; i < n; i++)
        free(envp[i]);
    if (pid < 0)
        return -1;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= timeout_s) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        poll(NULL, 0, 5);
    }
    r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r->out = slurp_fd(fileno(fo));
    r->err = slurp_fd(fileno(fe));
    fclose(fo);
    fclose(fe);
    return 0;
}

void vt_run_free(struct vt_run *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

int vt_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof a) &&
        !getsockname(fd, (struct sockaddr *)&a, &len))
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

bool vt_mysql_available(void)
{
    const char *h = getenv("VWS_MYSQL_HOST");
    return h && *h;
}
