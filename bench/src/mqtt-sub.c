/*
 * mqtt-sub: the subscriber of bench/run. Connects to an MQTT broker with
 * mutual TLS (libmosquitto), subscribes to one filter with a persistent
 * session (clean session off, fixed client ID), and counts what arrives.
 *
 * Payloads holding "seq":N are checked for duplicates (a bitmap of --max-seq
 * entries); payloads holding "t":NS (CLOCK_MONOTONIC of the sender, same
 * machine) give the latency from the device's send to this subscriber.
 *
 * Stops when --expect messages (unique) have arrived (a line on stdin holding
 * a number sets or replaces the expected count, for a caller that learns it
 * later), after --timeout
 * seconds, after --idle seconds without a message once one has arrived, or
 * on SIGTERM/SIGINT; then prints one JSON object on stdout. --slow-us N logs
 * each message slower than N microseconds to stderr. --register only
 * creates the session (connect, subscribe, disconnect), so a broker keeps
 * what is published for it while it is away.
 */
#define _GNU_SOURCE
#include <mosquitto.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct options {
    const char *host, *cafile, *cert, *key, *id, *topic, *ready_file;
    int port, qos, keepalive;
    uint64_t expect, max_seq, slow_us;
    double timeout, idle;
    bool reg, clean;
};

static struct options o;
static volatile sig_atomic_t interrupted = 0;
static bool subscribed = false;
static int connect_result = -1;
static uint64_t received, unique, duplicates, untracked, without_seq;
static uint64_t first_ns, last_ns;
static uint8_t *seen;
static uint64_t *latency;
static uint64_t latency_n, latency_cap;
static uint64_t connects, disconnects;

static void on_signal(int signo) { (void)signo; interrupted = 1; }

/* Reads "N\n" lines from stdin without blocking; the last one is the expected count. */
static void read_expected(void) {
    static bool closed = false;
    static char line[64];
    static size_t used = 0;
    if (closed) return;
    struct pollfd p = { .fd = 0, .events = POLLIN };
    while (poll(&p, 1, 0) == 1) {
        char c;
        ssize_t n = read(0, &c, 1);
        if (n <= 0) { closed = true; return; }
        if (c == '\n') {
            line[used] = 0;
            if (used > 0) o.expect = strtoull(line, NULL, 10);
            used = 0;
        } else if (used + 1 < sizeof line) {
            line[used++] = c;
        }
    }
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The number after "key": in a payload that is not necessarily NUL-terminated. */
static bool field(const char *payload, int length, const char *key, uint64_t *value) {
    size_t klen = strlen(key);
    const char *p = memmem(payload, (size_t)length, key, klen);
    if (!p) return false;
    p += klen;
    const char *end = payload + length;
    if (p >= end || *p < '0' || *p > '9') return false;
    uint64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') v = v * 10 + (uint64_t)(*p++ - '0');
    *value = v;
    return true;
}

static void on_connect(struct mosquitto *m, void *u, int rc) {
    (void)u;
    connect_result = rc;
    if (rc != 0) return;
    connects++;
    mosquitto_subscribe(m, NULL, o.topic, o.qos);
}

static void on_disconnect(struct mosquitto *m, void *u, int rc) { (void)m; (void)u; (void)rc; disconnects++; }

static void on_subscribe(struct mosquitto *m, void *u, int mid, int count, const int *granted) {
    (void)m; (void)u; (void)mid;
    if (count > 0 && granted[0] <= 2) subscribed = true;
    if (subscribed && o.ready_file) {
        FILE *f = fopen(o.ready_file, "w");
        if (f) fclose(f);
    }
}

static void on_message(struct mosquitto *m, void *u, const struct mosquitto_message *msg) {
    (void)m; (void)u;
    uint64_t now = now_ns();
    received++;
    if (!first_ns) first_ns = now;
    last_ns = now;
    uint64_t seq = 0, t = 0;
    const char *payload = msg->payload ? msg->payload : "";
    if (field(payload, msg->payloadlen, "\"seq\":", &seq)) {
        if (seq < o.max_seq) {
            uint8_t bit = (uint8_t)(1u << (seq & 7));
            if (seen[seq >> 3] & bit) duplicates++;
            else { seen[seq >> 3] |= bit; unique++; }
        } else {
            untracked++;
            unique++;
        }
    } else {
        without_seq++;
        unique++; /* nothing to tell duplicates by */
    }
    if (field(payload, msg->payloadlen, "\"t\":", &t) && t > 0 && t <= now) {
        if (latency_n == latency_cap) {
            latency_cap = latency_cap ? latency_cap * 2 : 65536;
            latency = realloc(latency, latency_cap * sizeof *latency);
            if (!latency) { fprintf(stderr, "mqtt-sub: out of memory\n"); exit(1); }
        }
        latency[latency_n++] = now - t;
        if (o.slow_us && now - t > o.slow_us * 1000)
            fprintf(stderr, "slow: seq %" PRIu64 " took %.1f ms (message %" PRIu64 ")\n", seq, (double)(now - t) / 1e6, received);
    }
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p) {
    if (latency_n == 0) return 0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)latency_n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > latency_n) rank = latency_n;
    return (double)latency[rank - 1] / 1000.0;
}

static void usage(const char *argv0) {
    fprintf(stderr,
        "usage: %s --port PORT --cafile CA --cert CERT --key KEY --id CLIENT_ID --topic FILTER\n"
        "          [--host localhost] [--qos 1] [--expect N] [--timeout S] [--idle S]\n"
        "          [--max-seq N] [--ready-file PATH] [--register] [--clean] [--slow-us US]\n", argv0);
    exit(2);
}

int main(int argc, char **argv) {
    o = (struct options){ .host = "localhost", .port = 0, .qos = 1, .keepalive = 30, .expect = 0,
        .max_seq = 1u << 24, .timeout = 60, .idle = 0 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE(name) (strcmp(a, name) == 0 && v && (i++, 1))
        if (TAKE("--host")) o.host = v;
        else if (TAKE("--port")) o.port = atoi(v);
        else if (TAKE("--cafile")) o.cafile = v;
        else if (TAKE("--cert")) o.cert = v;
        else if (TAKE("--key")) o.key = v;
        else if (TAKE("--id")) o.id = v;
        else if (TAKE("--topic")) o.topic = v;
        else if (TAKE("--qos")) o.qos = atoi(v);
        else if (TAKE("--expect")) o.expect = strtoull(v, NULL, 10);
        else if (TAKE("--timeout")) o.timeout = atof(v);
        else if (TAKE("--idle")) o.idle = atof(v);
        else if (TAKE("--max-seq")) o.max_seq = strtoull(v, NULL, 10);
        else if (TAKE("--slow-us")) o.slow_us = strtoull(v, NULL, 10);
        else if (TAKE("--ready-file")) o.ready_file = v;
        else if (strcmp(a, "--register") == 0) o.reg = true;
        else if (strcmp(a, "--clean") == 0) o.clean = true;
        else usage(argv[0]);
#undef TAKE
    }
    if (!o.port || !o.cafile || !o.cert || !o.key || !o.id || !o.topic || o.timeout <= 0) usage(argv[0]);
    seen = calloc((size_t)(o.max_seq / 8 + 1), 1);
    if (!seen) { fprintf(stderr, "mqtt-sub: out of memory\n"); return 1; }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    mosquitto_lib_init();
    struct mosquitto *m = mosquitto_new(o.id, o.clean, NULL);
    if (!m) { fprintf(stderr, "mqtt-sub: mosquitto_new failed\n"); return 1; }
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    /* No Nagle delay on PUBACKs / PUBLISHes: latency is what we measure. */
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    int rc = mosquitto_tls_set(m, o.cafile, NULL, o.cert, o.key, NULL);
    if (rc != MOSQ_ERR_SUCCESS) { fprintf(stderr, "mqtt-sub: TLS setup: %s\n", mosquitto_strerror(rc)); return 1; }
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_disconnect_callback_set(m, on_disconnect);
    mosquitto_subscribe_callback_set(m, on_subscribe);
    mosquitto_message_callback_set(m, on_message);

    uint64_t start = now_ns();
    uint64_t deadline = start + (uint64_t)(o.timeout * 1e9);
    const char *stop = "timeout";
    bool connected = false;
    uint64_t retry_at = 0;
    while (!interrupted) {
        read_expected();
        uint64_t now = now_ns();
        if (now >= deadline) { stop = "timeout"; break; }
        if (o.expect && unique >= o.expect) { stop = "expected"; break; }
        if (o.reg && subscribed) { stop = "registered"; break; }
        if (o.idle > 0 && last_ns && now - last_ns >= (uint64_t)(o.idle * 1e9)) { stop = "idle"; break; }
        if (!connected) {
            if (now < retry_at) { usleep(50000); continue; }
            /* Bounded by the deadline; the broker may still be starting. */
            rc = mosquitto_connect(m, o.host, o.port, o.keepalive);
            if (rc != MOSQ_ERR_SUCCESS) { retry_at = now + 100000000ULL; continue; }
            connected = true;
        }
        rc = mosquitto_loop(m, 50, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            connected = false;
            retry_at = now_ns() + 100000000ULL; /* reconnect (same session) on the next turn */
        }
        if (connect_result > 0) { stop = "refused"; break; }
    }
    if (interrupted) stop = "signal";
    if (connected) {
        /* Send the PUBACKs still queued, then leave cleanly (the session stays). */
        for (int i = 0; i < 5; i++) mosquitto_loop(m, 10, 1);
        mosquitto_disconnect(m);
        for (int i = 0; i < 5; i++) mosquitto_loop(m, 10, 1);
    }
    uint64_t end = now_ns();
    qsort(latency, latency_n, sizeof *latency, cmp_u64);
    double sum = 0;
    for (uint64_t i = 0; i < latency_n; i++) sum += (double)latency[i];
    double span = last_ns > first_ns ? (double)(last_ns - first_ns) / 1e9 : 0;
    printf("{\"stop\":\"%s\",\"expected\":%" PRIu64 ",\"subscribed\":%s,\"connect_result\":%d,\"connects\":%" PRIu64 ",\"disconnects\":%" PRIu64 ",",
           stop, o.expect, subscribed ? "true" : "false", connect_result, connects, disconnects);
    printf("\"received\":%" PRIu64 ",\"unique\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"untracked\":%" PRIu64 ",\"without_seq\":%" PRIu64 ",",
           received, unique, duplicates, untracked, without_seq);
    printf("\"start_ns\":%" PRIu64 ",\"end_ns\":%" PRIu64 ",\"first_ns\":%" PRIu64 ",\"last_ns\":%" PRIu64 ",\"span_s\":%.6f,\"rate_first_last\":%.1f,",
           start, end, first_ns, last_ns, span, span > 0 ? (double)(received - 1) / span : 0.0);
    printf("\"latency_us\":{\"n\":%" PRIu64 ",\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f}}\n",
           latency_n, pct(50), pct(90), pct(99), pct(99.9),
           latency_n ? (double)latency[latency_n - 1] / 1000.0 : 0.0, latency_n ? sum / (double)latency_n / 1000.0 : 0.0);
    fflush(stdout);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    return 0;
}
