/*
 * bench_floor.c - what the kernel alone charges a relay on loopback: the socket pattern of a
 * bridged call (docs/loadgen.md, "The floor") with no WebSocket library, no JSON, no TLS.
 *
 * Three roles in two processes, pinned like bench_relay (relay on core 0, the rest on core 1):
 *   driver (core 1)  --tw socket-->  relay (core 0)  --pv socket-->  echo (core 1)
 * Per call the driver sends a 380-byte message every 20 ms on its tw socket (a Twilio media
 * message); the relay reads it and writes it on the call's pv socket (input_audio_buffer.append);
 * the echo writes every message back (an audio delta); the relay writes that on tw (Twilio media).
 * Every 5th message the relay also writes a 90-byte mark on tw, which the driver echoes (marks
 * every 100 ms). That is bench_relay's message count per call-second: 110 read and 110 written
 * by the relay. The relay is an epoll loop (level-triggered, one recv per readable socket, like
 * lws). Reported: the relay's user and system CPU per call-second (utime/stime of /proc) and
 * the messages it moved.
 *
 * Usage: bench_floor [--calls N[,N...]] [--seconds S]      (defaults 100,300,500 and 6)
 * Not a test of voice-ws: a ruler for the CPU targets (the bench prints "metric floor.*").
 */

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG 380
#define MARK 90
#define FRAME_MS 20

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void pin(int core)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core, &set);
    if (sysconf(_SC_NPROCESSORS_ONLN) > 1)
        sched_setaffinity(0, sizeof set, &set);
}

static int listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 4096) ||
        getsockname(fd, (struct sockaddr *)&a, &al))
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a))
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as lws does */
    return fd;
}

static int take(int lfd)
{
    int fd = accept(lfd, NULL, NULL), one = 1;
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void cpu_of(pid_t pid, double *user_ms, double *sys_ms)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    *user_ms = *sys_ms = 0;
    if (!f)
        return;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2) {
        double tick = (double)sysconf(_SC_CLK_TCK);
        *user_ms = (double)ut * 1000.0 / tick;
        *sys_ms = (double)st * 1000.0 / tick;
    }
}

/* The relay: tw[i] <-> pv[i]; every 5th message from pv also sends a mark on tw. */
static void relay(int n, const int *tw, const int *pv, int ctl)
{
    int ep = epoll_create1(0);
    for (int i = 0; i < n; i++) {
        struct epoll_event e1 = {.events = EPOLLIN, .data.u64 = (uint64_t)i * 2};
        struct epoll_event e2 = {.events = EPOLLIN, .data.u64 = (uint64_t)i * 2 + 1};
        epoll_ctl(ep, EPOLL_CTL_ADD, tw[i], &e1);
        epoll_ctl(ep, EPOLL_CTL_ADD, pv[i], &e2);
    }
    struct epoll_event ce = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    epoll_ctl(ep, EPOLL_CTL_ADD, ctl, &ce);
    long *count = calloc((size_t)n, sizeof *count);
    static char buf[65536], mark[MARK];
    memset(mark, 'm', sizeof mark);
    struct epoll_event ev[256];
    for (;;) {
        int k = epoll_wait(ep, ev, 256, -1);
        for (int j = 0; j < k; j++) {
            if (ev[j].data.u64 == UINT64_MAX)
                _exit(0);
            int i = (int)(ev[j].data.u64 / 2), from_pv = (int)(ev[j].data.u64 % 2);
            ssize_t r = recv(from_pv ? pv[i] : tw[i], buf, sizeof buf, 0);
            if (r <= 0)
                continue;
            if (!from_pv) {
                if (r >= MSG) /* frames go on; a mark echo (shorter) ends here */
                    send(pv[i], buf, (size_t)(r - r % MSG), 0);
            } else {
                send(tw[i], buf, (size_t)r, 0);
                if (++count[i] % 5 == 0)
                    send(tw[i], mark, sizeof mark, 0);
            }
        }
    }
}

static int run(int n, double seconds)
{
    int ptw, ppv, ctl[2];
    int ltw = listener(&ptw), lpv = listener(&ppv);
    if (ltw < 0 || lpv < 0 || pipe(ctl))
        return 1;
    int *dtw = calloc((size_t)n, sizeof(int)), *rtw = calloc((size_t)n, sizeof(int));
    int *rpv = calloc((size_t)n, sizeof(int)), *epv = calloc((size_t)n, sizeof(int));
    for (int i = 0; i < n; i++) {
        dtw[i] = dial(ptw);
        rtw[i] = take(ltw);
        rpv[i] = dial(ppv);
        epv[i] = take(lpv);
        if (dtw[i] < 0 || rtw[i] < 0 || rpv[i] < 0 || epv[i] < 0) {
            fprintf(stderr, "bench_floor: socket setup failed at call %d: %s\n", i,
                    strerror(errno));
            return 1;
        }
    }
    pid_t pid = fork();
    if (pid == 0) {
        pin(0);
        close(ctl[1]);
        relay(n, rtw, rpv, ctl[0]);
        _exit(0);
    }
    pin(1);
    int ep = epoll_create1(0);
    for (int i = 0; i < n; i++) {
        struct epoll_event e1 = {.events = EPOLLIN, .data.u64 = (uint64_t)i * 2};
        struct epoll_event e2 = {.events = EPOLLIN, .data.u64 = (uint64_t)i * 2 + 1};
        epoll_ctl(ep, EPOLL_CTL_ADD, dtw[i], &e1);
        epoll_ctl(ep, EPOLL_CTL_ADD, epv[i], &e2);
    }
    static char msg[MSG], buf[65536];
    memset(msg, 'a', sizeof msg);
    double *due = calloc((size_t)n, sizeof(double)), t0 = now_ms();
    for (int i = 0; i < n; i++)
        due[i] = t0 + FRAME_MS * (double)i / n;
    double warm = t0 + 1000.0, end = warm + seconds * 1000.0, u0 = 0, s0 = 0, u1, s1;
    long moved = 0;
    int measuring = 0;
    struct epoll_event ev[256];
    for (;;) {
        double t = now_ms();
        if (!measuring && t >= warm) {
            cpu_of(pid, &u0, &s0);
            measuring = 1;
            moved = 0;
        }
        if (t >= end)
            break;
        double next = end;
        for (int i = 0; i < n; i++) {
            if (due[i] <= t) {
                send(dtw[i], msg, sizeof msg, 0);
                due[i] += FRAME_MS;
            }
            if (due[i] < next)
                next = due[i];
        }
        int wait = (int)(next - now_ms());
        int k = epoll_wait(ep, ev, 256, wait > 0 ? wait : 0);
        for (int j = 0; j < k; j++) {
            int i = (int)(ev[j].data.u64 / 2), from_echo = (int)(ev[j].data.u64 % 2);
            ssize_t r = recv(from_echo ? epv[i] : dtw[i], buf, sizeof buf, 0);
            if (r <= 0)
                continue;
            if (from_echo) {
                send(epv[i], buf, (size_t)r, 0); /* the provider's echo */
                moved++;
            } else if (r % MSG) {
                send(dtw[i], buf, (size_t)(r % MSG), 0); /* a mark comes back */
            }
        }
    }
    cpu_of(pid, &u1, &s1);
    close(ctl[1]); /* the relay exits on EOF of its control pipe */
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    double cs = (double)n * seconds;
    printf("metric floor.n%d.relay_cpu_user_per_call %.3f ms/s\n", n, (u1 - u0) / cs);
    printf("metric floor.n%d.relay_cpu_system_per_call %.3f ms/s\n", n, (s1 - s0) / cs);
    printf("metric floor.n%d.relay_cpu_total_per_call %.3f ms/s\n", n, (u1 - u0 + s1 - s0) / cs);
    printf("metric floor.n%d.frames_echoed_per_call_second %.1f frames\n", n, (double)moved / cs);
    printf("| %d | %.3f | %.3f | %.3f |\n", n, (u1 - u0) / cs, (s1 - s0) / cs,
           (u1 - u0 + s1 - s0) / cs);
    for (int i = 0; i < n; i++) {
        close(dtw[i]);
        close(rtw[i]);
        close(rpv[i]);
        close(epv[i]);
    }
    close(ltw);
    close(lpv);
    close(ep);
    close(ctl[0]);
    free(dtw), free(rtw), free(rpv), free(epv), free(due);
    return 0;
}

int main(int argc, char **argv)
{
    const char *calls = "100,300,500";
    double seconds = 6;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--calls") && i + 1 < argc)
            calls = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_floor [--calls N[,N...]] [--seconds S]\n");
            return 2;
        }
    }
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl)) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    printf("| N | relay CPU user (ms/s/call) | system | total |\n|---|---|---|---|\n");
    fflush(stdout);
    char *list = strdup(calls);
    int rc = 0;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int n = atoi(tok);
        if (n < 1 || run(n, seconds))
            rc = 1;
        fflush(stdout);
    }
    free(list);
    return rc;
}
