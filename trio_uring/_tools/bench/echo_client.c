/*
 * echo_client.c - closed-loop TCP echo load generator for the trio_uring
 * benchmarks.
 *
 * Single-threaded and epoll-based so that the load generator itself costs
 * as little CPU as possible and never becomes the bottleneck being measured
 * (the machine the benchmark runs on may only have two cores, one of which
 * belongs to the server under test).
 *
 * Every connection runs a closed loop: send SIZE bytes, wait until exactly
 * SIZE bytes have been echoed back, check them, record the latency, repeat.
 *
 * Build: gcc -O2 -Wall -Wextra -o echo_client echo_client.c
 *
 * Usage:
 *   echo_client --host 127.0.0.1 --port P --connections N --size BYTES
 *               --duration SECONDS --warmup SECONDS
 *               [--connect-timeout SECONDS] [--phase-marks]
 *
 * Prints one JSON object on stdout:
 *   {"round_trips": ..., "seconds": ..., "rps": ..., "p50_us": ...,
 *    "p99_us": ..., "connections": N, "size": BYTES, "errors": ...}
 *
 * Exit status: 0 on success, 1 if any connection failed during the run
 * (the JSON is still printed so the caller can see how far it got), 2 on
 * bad usage or setup failure, 3 if echoed bytes did not match the payload.
 *
 * --phase-marks writes "PHASE measure_start" / "PHASE measure_end" lines to
 * stderr at the edges of the measurement window, so a driver can sample the
 * server's CPU usage over exactly the window the round trips are counted in.
 */

#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Latency histogram                                                        */
/* ------------------------------------------------------------------------ */

/*
 * Log-linear histogram over nanoseconds, in the style of HdrHistogram:
 * values below 128 get one bucket each; above that, each power of two is
 * split into 64 linear sub-buckets. That bounds the relative error at
 * 1/64 (~1.6%) over the whole uint64 range with a fixed 30 KiB table, so
 * memory stays constant however long the run or however many samples.
 */
#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)          /* 64 */
#define HIST_LINEAR (2u * HIST_SUB)             /* 128 */
#define HIST_BUCKETS (HIST_LINEAR + (64u - HIST_SUB_BITS - 1u) * HIST_SUB)

static uint64_t hist[HIST_BUCKETS];
static uint64_t hist_count;

static unsigned hist_index(uint64_t v)
{
    unsigned msb;
    unsigned shift;

    if (v < HIST_LINEAR)
        return (unsigned)v;
    msb = 63u - (unsigned)__builtin_clzll(v);
    /* shift >= 1 here because v >= 128 means msb >= 7. */
    shift = msb - HIST_SUB_BITS;
    return HIST_LINEAR + (shift - 1u) * HIST_SUB +
           (unsigned)((v >> shift) - HIST_SUB);
}

/* Midpoint of a bucket, so the reported value is unbiased within it. */
static double hist_value(unsigned idx)
{
    unsigned shift;
    uint64_t mantissa;
    uint64_t lo;

    if (idx < HIST_LINEAR)
        return (double)idx;
    shift = (idx - HIST_LINEAR) / HIST_SUB + 1u;
    mantissa = (uint64_t)((idx - HIST_LINEAR) % HIST_SUB) + HIST_SUB;
    lo = mantissa << shift;
    return (double)lo + (double)(((uint64_t)1 << shift) - 1u) / 2.0;
}

static void hist_record(uint64_t ns)
{
    hist[hist_index(ns)]++;
    hist_count++;
}

/* Returns the q-quantile (0 < q <= 1) in microseconds, 0 if no samples. */
static double hist_quantile_us(double q)
{
    uint64_t rank;
    uint64_t seen = 0;
    unsigned i;

    if (hist_count == 0)
        return 0.0;
    /* Nearest-rank definition: the smallest value with >= q of samples
     * at or below it. */
    rank = (uint64_t)(q * (double)hist_count + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > hist_count)
        rank = hist_count;
    for (i = 0; i < HIST_BUCKETS; i++) {
        seen += hist[i];
        if (seen >= rank)
            return hist_value(i) / 1000.0;
    }
    return hist_value(HIST_BUCKETS - 1u) / 1000.0;
}

/* ------------------------------------------------------------------------ */
/* Connections                                                              */
/* ------------------------------------------------------------------------ */

struct conn {
    int fd;             /* -1 once the connection has failed and been closed */
    unsigned id;
    uint64_t seq;       /* round-trip counter, selects the payload variant */
    size_t sent;
    size_t recvd;
    int want_out;       /* EPOLLOUT currently registered */
    uint64_t start_ns;  /* when the current round trip's send began */
};

/*
 * Payload bytes come from one shared pattern buffer of size + 256 bytes;
 * each round trip sends a window starting at a different offset. That
 * needs no per-connection payload memory (1000 connections x 1 MiB would
 * otherwise be a lot), while still making stale, duplicated or cross-wired
 * echo data fail verification: consecutive round trips on a connection, and
 * concurrent ones on different connections, mostly use different windows.
 */
#define PATTERN_VARIANTS 251u

static unsigned char *pattern;
static size_t payload_size;

static const unsigned char *payload_for(const struct conn *c)
{
    size_t off = (size_t)(((uint64_t)c->id * 17u + c->seq) % PATTERN_VARIANTS);
    return pattern + off;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(long ms)
{
    struct timespec ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Global run state, shared by the event handlers. */
static int epfd = -1;
static uint64_t measure_start_ns;
static uint64_t measure_end_ns;
static uint64_t round_trips;
static uint64_t errors;
static unsigned live_conns;

static void conn_fail(struct conn *c, const char *what, int err)
{
    fprintf(stderr, "echo_client: connection %u: %s: %s\n", c->id, what,
            err ? strerror(err) : "unexpected end of stream");
    errors++;
    /* close() also removes the fd from the epoll set. */
    close(c->fd);
    c->fd = -1;
    live_conns--;
}

static int set_interest(struct conn *c, int want_out)
{
    struct epoll_event ev;

    if (c->want_out == want_out)
        return 0;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0u);
    ev.data.ptr = c;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        conn_fail(c, "epoll_ctl", errno);
        return -1;
    }
    c->want_out = want_out;
    return 0;
}

/* Pushes as much of the current payload as the socket accepts. */
static void conn_write(struct conn *c)
{
    const unsigned char *p = payload_for(c);

    while (c->sent < payload_size) {
        ssize_t n = send(c->fd, p + c->sent, payload_size - c->sent,
                         MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* Only ask for EPOLLOUT while actually blocked; keeping it on
             * permanently would make every epoll_wait return at once. */
            set_interest(c, 1);
            return;
        }
        conn_fail(c, "send", n < 0 ? errno : 0);
        return;
    }
    set_interest(c, 0);
}

static void conn_begin_round(struct conn *c, uint64_t now)
{
    c->sent = 0;
    c->recvd = 0;
    c->start_ns = now;
    conn_write(c);
}

static unsigned char scratch[256 * 1024];

/* Drains echoed bytes, verifies them, and completes round trips. */
static void conn_read(struct conn *c)
{
    for (;;) {
        size_t want = payload_size - c->recvd;
        ssize_t n;

        if (want > sizeof scratch)
            want = sizeof scratch;
        /* Never read past the end of this round trip: any extra bytes
         * belong to no request and will be caught by verification at the
         * start of the next round, whose payload window differs. */
        n = recv(c->fd, scratch, want, 0);
        if (n > 0) {
            const unsigned char *expect = payload_for(c) + c->recvd;
            if (c->recvd + (size_t)n > c->sent) {
                fprintf(stderr,
                        "echo_client: connection %u: received %zu bytes but "
                        "only %zu were sent\n",
                        c->id, c->recvd + (size_t)n, c->sent);
                exit(3);
            }
            if (memcmp(scratch, expect, (size_t)n) != 0) {
                fprintf(stderr,
                        "echo_client: connection %u: echoed bytes %zu..%zu "
                        "of round trip %llu do not match the payload\n",
                        c->id, c->recvd, c->recvd + (size_t)n,
                        (unsigned long long)c->seq);
                exit(3);
            }
            c->recvd += (size_t)n;
            if (c->recvd == payload_size) {
                uint64_t t = now_ns();
                if (t >= measure_start_ns && t < measure_end_ns) {
                    round_trips++;
                    hist_record(t - c->start_ns);
                }
                c->seq++;
                conn_begin_round(c, t);
                /* Go back to epoll rather than keep reading here: the echo
                 * of the new payload cannot have arrived yet, and other
                 * connections are waiting. */
                return;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        conn_fail(c, "recv", n < 0 ? errno : 0);
        return;
    }
}

/*
 * Blocking connect with a bounded retry, because the driver starts us as
 * soon as the server reports ready and the server may still be slow to
 * accept (or, when run by hand, may not be listening yet).
 */
static int open_conn(const struct addrinfo *ai, uint64_t deadline_ns)
{
    for (;;) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        int err;

        if (fd < 0) {
            fprintf(stderr, "echo_client: socket: %s\n", strerror(errno));
            return -1;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            return fd;
        err = errno;
        close(fd);
        if ((err == ECONNREFUSED || err == EAGAIN || err == ETIMEDOUT ||
             err == EINTR) && now_ns() < deadline_ns) {
            sleep_ms(50);
            continue;
        }
        fprintf(stderr, "echo_client: connect: %s\n", strerror(err));
        return -1;
    }
}

static int setup_socket(int fd)
{
    int one = 1;
    int flags;

    /* Small request/response messages: Nagle would hold back the next
     * send waiting for an ACK and wreck latency. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        return -1;
    flags = fcntl(fd, F_GETFL, 0);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
        return -1;
    return 0;
}

/* Lets one process hold ~1000 sockets even where the soft limit is 1024. */
static int raise_nofile(rlim_t needed)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return -1;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < needed) {
        fprintf(stderr,
                "echo_client: need %llu file descriptors, hard limit is "
                "%llu\n",
                (unsigned long long)needed, (unsigned long long)rl.rlim_cur);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Command line                                                             */
/* ------------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: echo_client --host HOST --port PORT --connections N "
            "--size BYTES --duration SECONDS --warmup SECONDS\n"
            "                   [--connect-timeout SECONDS] "
            "[--phase-marks]\n");
    exit(2);
}

static double parse_double(const char *s, const char *name)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= 0.0)) {
        fprintf(stderr, "echo_client: bad value for %s: %s\n", name, s);
        exit(2);
    }
    return v;
}

static long parse_long(const char *s, const char *name, long lo, long hi)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "echo_client: bad value for %s: %s\n", name, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    const char *host = NULL;
    const char *port = NULL;
    long nconns = -1;
    long size = -1;
    double duration = -1.0;
    double warmup = -1.0;
    double connect_timeout = 10.0;
    int phase_marks = 0;
    struct addrinfo hints;
    struct addrinfo *ai = NULL;
    struct conn *conns;
    struct epoll_event *events;
    int maxevents;
    uint64_t t0;
    uint64_t deadline;
    int in_measure = 0;
    long i;
    int rc;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--phase-marks") == 0) {
            phase_marks = 1;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        if (strcmp(a, "--host") == 0)
            host = argv[++i];
        else if (strcmp(a, "--port") == 0)
            port = argv[++i];
        else if (strcmp(a, "--connections") == 0)
            nconns = parse_long(argv[++i], a, 1, 1000000);
        else if (strcmp(a, "--size") == 0)
            size = parse_long(argv[++i], a, 1, 1L << 30);
        else if (strcmp(a, "--duration") == 0)
            duration = parse_double(argv[++i], a);
        else if (strcmp(a, "--warmup") == 0)
            warmup = parse_double(argv[++i], a);
        else if (strcmp(a, "--connect-timeout") == 0)
            connect_timeout = parse_double(argv[++i], a);
        else
            usage();
    }
    if (!host || !port || nconns < 1 || size < 1 || duration <= 0.0 ||
        warmup < 0.0)
        usage();
    parse_long(port, "--port", 1, 65535);
    payload_size = (size_t)size;

    /* Headroom for stdio, the epoll fd and the like. */
    if (raise_nofile((rlim_t)nconns + 32u) != 0)
        return 2;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "echo_client: %s: %s\n", host, gai_strerror(rc));
        return 2;
    }

    pattern = malloc(payload_size + PATTERN_VARIANTS);
    conns = calloc((size_t)nconns, sizeof *conns);
    maxevents = nconns < 1024 ? (int)nconns : 1024;
    events = calloc((size_t)maxevents, sizeof *events);
    if (!pattern || !conns || !events) {
        fprintf(stderr, "echo_client: out of memory\n");
        return 2;
    }
    for (i = 0; i < (long)(payload_size + PATTERN_VARIANTS); i++) {
        /* 7 is odd, hence invertible mod 256, so windows at different
         * offsets below 256 already differ in their first byte. */
        unsigned long u = (unsigned long)i;
        pattern[i] = (unsigned char)(u * 7u + (u >> 8));
    }

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        fprintf(stderr, "echo_client: epoll_create1: %s\n", strerror(errno));
        return 2;
    }

    deadline = now_ns() + (uint64_t)(connect_timeout * 1e9);
    for (i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        struct epoll_event ev;

        c->id = (unsigned)i;
        c->fd = open_conn(ai, deadline);
        if (c->fd < 0) {
            fprintf(stderr, "echo_client: could not open connection %ld\n",
                    i);
            return 2;
        }
        if (setup_socket(c->fd) != 0) {
            fprintf(stderr, "echo_client: socket setup: %s\n",
                    strerror(errno));
            return 2;
        }
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
            fprintf(stderr, "echo_client: epoll_ctl: %s\n", strerror(errno));
            return 2;
        }
        live_conns++;
    }
    freeaddrinfo(ai);

    /* The clock starts only once every connection is up, so connection
     * setup time never eats into warmup or measurement. */
    t0 = now_ns();
    measure_start_ns = t0 + (uint64_t)(warmup * 1e9);
    measure_end_ns = measure_start_ns + (uint64_t)(duration * 1e9);
    for (i = 0; i < nconns; i++)
        conn_begin_round(&conns[i], t0);

    for (;;) {
        uint64_t now = now_ns();
        uint64_t next;
        int timeout_ms;
        int n;
        int k;

        if (!in_measure && now >= measure_start_ns) {
            in_measure = 1;
            if (phase_marks) {
                fputs("PHASE measure_start\n", stderr);
                fflush(stderr);
            }
        }
        if (now >= measure_end_ns)
            break;
        if (live_conns == 0) {
            fprintf(stderr, "echo_client: all connections failed\n");
            break;
        }
        next = in_measure ? measure_end_ns : measure_start_ns;
        /* Round up so we do not wake a hair early and spin. */
        timeout_ms = (int)((next - now + 999999u) / 1000000u);

        n = epoll_wait(epfd, events, maxevents, timeout_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "echo_client: epoll_wait: %s\n", strerror(errno));
            return 2;
        }
        for (k = 0; k < n; k++) {
            struct conn *c = events[k].data.ptr;
            uint32_t ev = events[k].events;

            if (c->fd < 0)
                continue;
            /* On ERR/HUP, recv() reports the actual error or EOF. */
            if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
                conn_read(c);
            if (c->fd >= 0 && (ev & EPOLLOUT))
                conn_write(c);
        }
    }
    if (phase_marks) {
        fputs("PHASE measure_end\n", stderr);
        fflush(stderr);
    }

    {
        double seconds = (double)(measure_end_ns - measure_start_ns) / 1e9;
        printf("{\"round_trips\": %llu, \"seconds\": %.6f, \"rps\": %.2f, "
               "\"p50_us\": %.2f, \"p99_us\": %.2f, \"connections\": %ld, "
               "\"size\": %ld, \"errors\": %llu}\n",
               (unsigned long long)round_trips, seconds,
               (double)round_trips / seconds, hist_quantile_us(0.50),
               hist_quantile_us(0.99), nconns, size,
               (unsigned long long)errors);
        fflush(stdout);
    }

    for (i = 0; i < nconns; i++)
        if (conns[i].fd >= 0)
            close(conns[i].fd);
    close(epfd);
    free(events);
    free(conns);
    free(pattern);
    return errors > 0 ? 1 : 0;
}
