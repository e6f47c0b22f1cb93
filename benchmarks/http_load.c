/*
 * http_load.c - a small closed-loop HTTP/1.1 load generator that checks
 * every response, for the hypercorn test (tests/test_hypercorn.py) on
 * machines without wrk.
 *
 * One thread per connection, each a closed loop over one keep-alive
 * connection: send "GET PATH", read the status line and headers, read
 * exactly Content-Length bytes of body, compare status and body with what
 * is expected, repeat. Simple on purpose: it is a correctness driver under
 * load, not a benchmark of the generator.
 *
 * Build: gcc -O2 -Wall -Wextra -pthread -o http_load http_load.c
 *
 * Usage: http_load HOST PORT PATH CONNECTIONS REQUESTS_PER_CONNECTION EXPECTED_BODY
 *
 * Prints one line: "requests=N ok=N bad_status=N bad_body=N errors=N".
 * Exit status: 0 if every request got status 200 and the expected body,
 * 1 otherwise, 2 on bad usage.
 */

#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static const char *host, *path, *expected;
static int port, requests;
static long total_ok, total_status, total_body, total_errors;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

struct conn {
    int fd;
    char buf[65536];
    size_t len; /* bytes buffered, not yet consumed */
};

/* Read more into c->buf; 0 on EOF or error. */
static int fill(struct conn *c)
{
    ssize_t n;

    if (c->len == sizeof c->buf)
        return 0; /* a response head larger than we accept */
    do
        n = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return 0;
    c->len += (size_t)n;
    return 1;
}

static void consume(struct conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* One request/response. Returns 0 ok, 1 bad status, 2 bad body, -1 error. */
static int exchange(struct conn *c, const char *request, size_t request_len)
{
    size_t sent = 0, want = strlen(expected), head_len, body_len;
    char *end, *cl;
    int status;
    long content_length = -1;

    while (sent < request_len) {
        ssize_t n = write(c->fd, request + sent, request_len - sent);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        sent += (size_t)n;
    }
    for (;;) {
        c->buf[c->len < sizeof c->buf ? c->len : sizeof c->buf - 1] = '\0';
        end = strstr(c->buf, "\r\n\r\n");
        if (end != NULL)
            break;
        if (!fill(c))
            return -1;
    }
    head_len = (size_t)(end - c->buf) + 4;
    if (sscanf(c->buf, "HTTP/1.1 %d", &status) != 1)
        return -1;
    *end = '\0';
    for (cl = c->buf; (cl = strchr(cl, '\n')) != NULL; cl++) {
        if (strncasecmp(cl + 1, "content-length:", 15) == 0) {
            content_length = strtol(cl + 16, NULL, 10);
            break;
        }
    }
    if (content_length < 0 || (size_t)content_length > sizeof c->buf - head_len)
        return -1;
    body_len = (size_t)content_length;
    while (c->len < head_len + body_len)
        if (!fill(c))
            return -1;
    {
        int result = 0;
        if (status != 200)
            result = 1;
        else if (body_len != want || memcmp(c->buf + head_len, expected, want) != 0)
            result = 2;
        consume(c, head_len + body_len);
        return result;
    }
}

static void *worker(void *arg)
{
    struct conn *c = calloc(1, sizeof *c);
    struct sockaddr_in sa;
    struct timeval tv = {30, 0}; /* a server that hangs fails the run */
    char request[1024];
    int i, n, result;
    long ok = 0, bad_status = 0, bad_body = 0, errors = 0;

    (void)arg;
    n = snprintf(request, sizeof request,
                 "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", path, host, port);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    inet_pton(AF_INET, host, &sa.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        errors = requests;
    } else {
        for (i = 0; i < requests; i++) {
            result = exchange(c, request, (size_t)n);
            if (result < 0) {
                errors += requests - i; /* the connection is unusable now */
                break;
            }
            if (result == 0)
                ok++;
            else if (result == 1)
                bad_status++;
            else
                bad_body++;
        }
    }
    close(c->fd);
    free(c);
    pthread_mutex_lock(&lock);
    total_ok += ok;
    total_status += bad_status;
    total_body += bad_body;
    total_errors += errors;
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(int argc, char **argv)
{
    int connections, i;
    pthread_t *threads;

    if (argc != 7) {
        fprintf(stderr, "usage: %s HOST PORT PATH CONNECTIONS REQUESTS EXPECTED_BODY\n", argv[0]);
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    path = argv[3];
    connections = atoi(argv[4]);
    requests = atoi(argv[5]);
    expected = argv[6];
    if (port <= 0 || connections <= 0 || requests <= 0)
        return 2;
    threads = calloc((size_t)connections, sizeof *threads);
    for (i = 0; i < connections; i++)
        pthread_create(&threads[i], NULL, worker, NULL);
    for (i = 0; i < connections; i++)
        pthread_join(threads[i], NULL);
    printf("requests=%ld ok=%ld bad_status=%ld bad_body=%ld errors=%ld\n",
           (long)connections * requests, total_ok, total_status, total_body, total_errors);
    return total_ok == (long)connections * requests ? 0 : 1;
}
