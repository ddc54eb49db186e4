/*
 * mqtt-pub: the baseline of bench/run's drain scenario. Publishes --count
 * QoS 1 messages over one mutual-TLS connection (libmosquitto) as fast as an
 * in-flight window of --window unacknowledged messages allows (the gateway
 * drains with upstream.max_inflight: the bench runs its default, 20, and 100,
 * each against this tool with the same window), and reports when the last
 * PUBACK came back.
 *
 * Topics are PREFIX/d<i mod --devices>; payloads are {"seq":N,"t":NS,...}
 * like coap-load's, so mqtt-sub sees the same messages either way.
 * Bounded by --timeout. Prints one JSON object on stdout.
 */
#define _GNU_SOURCE
#include <mosquitto.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int inflight = 0;
static uint64_t acked = 0;
static int connect_result = -1;
static uint64_t disconnects = 0;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void on_connect(struct mosquitto *m, void *u, int rc) {
    (void)m; (void)u;
    pthread_mutex_lock(&lock);
    connect_result = rc;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void on_disconnect(struct mosquitto *m, void *u, int rc) {
    (void)m; (void)u; (void)rc;
    pthread_mutex_lock(&lock);
    disconnects++;
    pthread_mutex_unlock(&lock);
}

static void on_publish(struct mosquitto *m, void *u, int mid) {
    (void)m; (void)u; (void)mid;
    pthread_mutex_lock(&lock);
    inflight--;
    acked++;
    pthread_cond_signal(&changed);
    pthread_mutex_unlock(&lock);
}

/* Waits on `changed` until `done` holds or the deadline passes. */
static bool wait_until(bool (*done)(void *), void *arg, uint64_t deadline_ns) {
    struct timespec ts;
    for (;;) {
        if (done(arg)) return true;
        uint64_t now = now_ns();
        if (now >= deadline_ns) return false;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t wait = deadline_ns - now;
        if (wait > 100000000ULL) wait = 100000000ULL;
        ts.tv_nsec += (long)(wait % 1000000000ULL);
        ts.tv_sec += (time_t)(wait / 1000000000ULL) + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&changed, &lock, &ts);
    }
}

static bool is_connected(void *arg) { (void)arg; return connect_result >= 0; }
static bool has_room(void *arg) { return inflight < *(int *)arg; }
static bool all_acked(void *arg) { (void)arg; return inflight == 0; }

int main(int argc, char **argv) {
    const char *host = "localhost", *cafile = NULL, *cert = NULL, *key = NULL, *id = "bench-pub", *prefix = "dt/bench/pub";
    int port = 0, window = 100, devices = 50, qos = 1;
    uint64_t count = 1000;
    double timeout = 120;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE(name) (strcmp(a, name) == 0 && v && (i++, 1))
        if (TAKE("--host")) host = v;
        else if (TAKE("--port")) port = atoi(v);
        else if (TAKE("--cafile")) cafile = v;
        else if (TAKE("--cert")) cert = v;
        else if (TAKE("--key")) key = v;
        else if (TAKE("--id")) id = v;
        else if (TAKE("--topic-prefix")) prefix = v;
        else if (TAKE("--count")) count = strtoull(v, NULL, 10);
        else if (TAKE("--window")) window = atoi(v);
        else if (TAKE("--devices")) devices = atoi(v);
        else if (TAKE("--qos")) qos = atoi(v);
        else if (TAKE("--timeout")) timeout = atof(v);
        else {
            fprintf(stderr, "usage: %s --port PORT --cafile CA --cert CERT --key KEY [--host localhost] [--id ID]\n"
                            "          [--topic-prefix P] [--count N] [--window 100] [--devices 50] [--qos 1] [--timeout S]\n", argv[0]);
            return 2;
        }
#undef TAKE
    }
    if (!port || !cafile || !cert || !key || window < 1 || devices < 1 || qos < 1 || qos > 2) {
        fprintf(stderr, "mqtt-pub: --port, --cafile, --cert, --key are required; --qos 1 or 2\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    mosquitto_lib_init();
    struct mosquitto *m = mosquitto_new(id, true, NULL);
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    /* No Nagle delay on PUBACKs / PUBLISHes: latency is what we measure. */
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    int rc = mosquitto_tls_set(m, cafile, NULL, cert, key, NULL);
    if (rc != MOSQ_ERR_SUCCESS) { fprintf(stderr, "mqtt-pub: TLS setup: %s\n", mosquitto_strerror(rc)); return 1; }
    /* libmosquitto's own window too, as the gateway sets it. */
    mosquitto_max_inflight_messages_set(m, (unsigned)window);
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_disconnect_callback_set(m, on_disconnect);
    mosquitto_publish_callback_set(m, on_publish);
    uint64_t deadline = now_ns() + (uint64_t)(timeout * 1e9);
    rc = mosquitto_connect(m, host, port, 60);
    if (rc != MOSQ_ERR_SUCCESS) { fprintf(stderr, "mqtt-pub: connect: %s\n", mosquitto_strerror(rc)); return 1; }
    mosquitto_loop_start(m);

    pthread_mutex_lock(&lock);
    bool ok = wait_until(is_connected, NULL, deadline) && connect_result == 0;
    pthread_mutex_unlock(&lock);
    if (!ok) { fprintf(stderr, "mqtt-pub: no CONNACK (result %d)\n", connect_result); return 1; }

    char topic[256], payload[128];
    uint64_t start = now_ns(), sent = 0, errors = 0;
    for (uint64_t i = 0; i < count; i++) {
        pthread_mutex_lock(&lock);
        bool room = wait_until(has_room, &window, deadline);
        if (room) inflight++;
        pthread_mutex_unlock(&lock);
        if (!room) break;
        snprintf(topic, sizeof topic, "%s/d%d", prefix, (int)(i % (uint64_t)devices));
        int n = snprintf(payload, sizeof payload, "{\"seq\":%" PRIu64 ",\"t\":%" PRIu64 ",\"v\":21.5}", i, now_ns());
        rc = mosquitto_publish(m, NULL, topic, n, payload, qos, false);
        if (rc != MOSQ_ERR_SUCCESS) {
            errors++;
            pthread_mutex_lock(&lock);
            inflight--;
            pthread_mutex_unlock(&lock);
            continue;
        }
        sent++;
    }
    uint64_t sent_ns = now_ns();
    pthread_mutex_lock(&lock);
    bool drained = wait_until(all_acked, NULL, deadline);
    uint64_t acked_now = acked, lost_connections = disconnects;
    pthread_mutex_unlock(&lock);
    uint64_t end = now_ns();
    mosquitto_disconnect(m);
    mosquitto_loop_stop(m, false);
    double elapsed = (double)(end - start) / 1e9;
    printf("{\"count_target\":%" PRIu64 ",\"sent\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"window\":%d,"
           "\"drained\":%s,\"disconnects\":%" PRIu64 ",\"start_ns\":%" PRIu64 ",\"sent_ns\":%" PRIu64 ",\"end_ns\":%" PRIu64 ","
           "\"elapsed_s\":%.6f,\"acked_per_s\":%.1f}\n",
           count, sent, acked_now, errors, window, drained ? "true" : "false", lost_connections, start, sent_ns, end,
           elapsed, elapsed > 0 ? (double)acked_now / elapsed : 0.0);
    fflush(stdout);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    return drained ? 0 : 1;
}
