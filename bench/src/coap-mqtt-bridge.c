/*
 * coap-mqtt-bridge: the baseline of bench/run's egress scenario. A bare
 * CoAP-to-MQTT bridge with nothing in between: a libcoap 4.3.1 server that
 * answers every POST (CON or NON, any path) with 2.04 at once and publishes
 * its payload at QoS 1 over one mutual-TLS connection (libmosquitto). Nothing
 * is stored: a message not yet acknowledged by the broker lives only in
 * libmosquitto's memory.
 *
 *   coap-mqtt-bridge 127.0.0.1:PORT --port MQTT_PORT --cafile CA --cert CERT --key KEY
 *                    [--host localhost] [--id ID] [--topic-prefix dt] [--window 20]
 *                    [--qos 1] [--timeout S] [--drain S] [--store FILE [--sync normal|full]]
 *                    [--psk-file FILE | --https-cert PEM --https-key PEM [--threads 2]]
 *
 * The ceilings of the dtls-psk and https-post scenarios are this bridge with
 * a secure front end instead, still answering at once, storing nothing and
 * checking nothing beyond the handshake:
 * --psk-file FILE listens for CoAP over DTLS with a pre-shared key per
 *   identity, FILE holding "IDENTITY KEY" lines (the key's text is the key,
 *   as for coap-dtls-load and coap-server-openssl -i).
 * --https-cert/--https-key listen for HTTPS with libmicrohttpd (GnuTLS), set up as
 *   mhd-bare is (a pool of --threads threads, epoll): every POST is answered
 *   202 and its body published; the topic is --topic-prefix then the URL path.
 *   No Authorization header is read. With --store, the pool's threads queue
 *   their inserts in turn; each PUBACK deletes the oldest row, which keeps
 *   the count of work the same though not always the very row.
 *
 * The topic is --topic-prefix, then the request's Uri-Path segments, each
 * after a "/": /bench/R/d3 -> dt/bench/R/d3, as the gateway's bench mapping
 * /bench/{run}/{device} -> dt/bench/{run}/{device} makes it, so a subscriber
 * sees the same topics and payloads from either.
 *
 * --window N is libmosquitto's own in-flight limit
 * (mosquitto_max_inflight_messages_set), as the gateway sets it from
 * upstream.max_inflight (default 20): past N unacknowledged, libmosquitto
 * queues the message and sends it when a PUBACK frees a slot. The CoAP server
 * runs on the main thread and publishes from there; libmosquitto's network
 * runs on its own thread (mosquitto_loop_start) and reconnects by itself.
 *
 * --store FILE makes it the durable floor of the same path: every message is
 * also inserted into an SQLite table in WAL mode (synchronous NORMAL or FULL
 * per --sync) and deleted at its PUBACK, both in group commits on a writer
 * thread of its own, as the gateway's outbox does. It still answers 2.04 and
 * publishes at once, without waiting for the commit, so it does less than a
 * store-and-forward gateway must (which answers after the commit and
 * publishes what was committed): its figure bounds from above what any
 * gateway that stores each message in SQLite can carry here.
 *
 * Prints "ready" on stdout once connected to the broker (CONNACK) and
 * listening. On SIGTERM or SIGINT, or after --timeout seconds, it stops
 * taking requests, waits at most --drain seconds for the PUBACKs still due,
 * and prints one JSON object with its counts on stdout (a summary on stderr).
 */
#define _GNU_SOURCE
#include <coap3/coap.h>
#include <mosquitto.h>
#include <microhttpd.h>
#include <sqlite3.h>
#include <arpa/inet.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_TOPIC 512

static volatile sig_atomic_t quit = 0;
static void on_signal(int signo) { (void)signo; quit = 1; }

static struct mosquitto *mosq;
static const char *prefix = "dt";
static int qos = 1;

/* Counted on the CoAP thread (received, published, ...) and on libmosquitto's (the rest). */
static atomic_uint_fast64_t received, published, publish_errors, long_topics, acked;
static atomic_uint_fast64_t connects, disconnects;
static atomic_int connect_result = -1;
static atomic_uint_fast64_t first_request_ns, last_request_ns, last_ack_ns;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void count_request(void) {
    uint64_t at = now_ns();
    if (atomic_fetch_add(&received, 1) == 0) atomic_store(&first_request_ns, at);
    atomic_store(&last_request_ns, at);
}

/* --store: the writer thread and what the serving and MQTT threads hand it. */
struct stored { char *topic; uint8_t *payload; size_t length; int64_t received_ms; };
static struct {
    bool on;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool waiting, stop;
    struct stored *rows;   /* inserts not yet taken by the writer */
    size_t count, capacity;
    uint64_t acks;         /* PUBACKs whose rows are not yet deleted */
    sqlite3 *db;
    sqlite3_stmt *insert, *delete;
    int64_t next_delete;   /* rows are deleted in publish order, one statement each */
    uint64_t inserted, deleted, commits, failures;
} store = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .next_delete = 1};

static void store_signal_locked(void) {
    if (store.waiting) pthread_cond_signal(&store.wake);
}

static bool exec_sql(const char *sql) {
    char *error = NULL;
    if (sqlite3_exec(store.db, sql, NULL, NULL, &error) == SQLITE_OK) return true;
    fprintf(stderr, "coap-mqtt-bridge: %s: %s\n", sql, error ? error : "?");
    sqlite3_free(error);
    return false;
}

static bool store_open(const char *path, bool full) {
    if (sqlite3_open(path, &store.db) != SQLITE_OK) {
        fprintf(stderr, "coap-mqtt-bridge: cannot open %s\n", path);
        return false;
    }
    if (!exec_sql("PRAGMA journal_mode = WAL") || !exec_sql(full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL") ||
        !exec_sql("CREATE TABLE IF NOT EXISTS message (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, "
                  "payload BLOB NOT NULL, received_at INTEGER NOT NULL)") ||
        !exec_sql("DELETE FROM message"))
        return false;
    if (sqlite3_prepare_v2(store.db, "INSERT INTO message (id, topic, payload, received_at) VALUES (?, ?, ?, ?)", -1,
                           &store.insert, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(store.db, "DELETE FROM message WHERE id = ?", -1, &store.delete, NULL) != SQLITE_OK) {
        fprintf(stderr, "coap-mqtt-bridge: prepare: %s\n", sqlite3_errmsg(store.db));
        return false;
    }
    store.on = true;
    return true;
}

static bool step(sqlite3_stmt *statement) {
    int rc = sqlite3_step(statement);
    sqlite3_reset(statement);
    return rc == SQLITE_DONE;
}

/* One transaction per turn: everything handed over since the last one. */
static void *store_writer(void *unused) {
    (void)unused;
    struct stored *rows = NULL;
    size_t capacity = 0;
    int64_t next_id = 1;
    for (;;) {
        pthread_mutex_lock(&store.lock);
        while (store.count == 0 && store.acks == 0 && !store.stop) {
            store.waiting = true;
            pthread_cond_wait(&store.wake, &store.lock);
            store.waiting = false;
        }
        if (store.count == 0 && store.acks == 0 && store.stop) {
            pthread_mutex_unlock(&store.lock);
            break;
        }
        /* Swap the buffers: the CoAP thread fills the other one meanwhile. */
        struct stored *taken = store.rows;
        size_t count = store.count, taken_capacity = store.capacity;
        store.rows = rows;
        store.capacity = capacity;
        store.count = 0;
        uint64_t acks = store.acks;
        store.acks = 0;
        pthread_mutex_unlock(&store.lock);
        rows = taken;
        capacity = taken_capacity;

        bool ok = exec_sql("BEGIN IMMEDIATE");
        for (size_t i = 0; ok && i < count; i++) {
            sqlite3_bind_int64(store.insert, 1, next_id++);
            sqlite3_bind_text(store.insert, 2, rows[i].topic, -1, SQLITE_STATIC);
            sqlite3_bind_blob(store.insert, 3, rows[i].length ? (const void *)rows[i].payload : "", (int)rows[i].length,
                              SQLITE_STATIC);
            sqlite3_bind_int64(store.insert, 4, rows[i].received_ms);
            ok = step(store.insert);
            if (ok) store.inserted++;
        }
        for (uint64_t i = 0; ok && i < acks; i++) {
            sqlite3_bind_int64(store.delete, 1, store.next_delete++);
            ok = step(store.delete);
            if (ok && sqlite3_changes(store.db) > 0) store.deleted++;
        }
        ok = ok && exec_sql("COMMIT");
        if (ok) store.commits++;
        else {
            store.failures++;
            sqlite3_exec(store.db, "ROLLBACK", NULL, NULL, NULL);
        }
        for (size_t i = 0; i < count; i++) {
            free(rows[i].topic);
            free(rows[i].payload);
        }
    }
    free(rows);
    return NULL;
}

/* Hands one message to the writer (copies: libcoap owns the request). */
static void store_insert(const char *topic, const uint8_t *data, size_t length) {
    struct stored row = {strdup(topic), length ? malloc(length) : NULL, length, 0};
    if (length) memcpy(row.payload, data, length);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    row.received_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    pthread_mutex_lock(&store.lock);
    if (store.count == store.capacity) {
        store.capacity = store.capacity ? 2 * store.capacity : 256;
        store.rows = realloc(store.rows, store.capacity * sizeof *store.rows);
    }
    store.rows[store.count++] = row;
    store_signal_locked();
    pthread_mutex_unlock(&store.lock);
}

static void on_connect(struct mosquitto *m, void *u, int rc) {
    (void)m; (void)u;
    atomic_store(&connect_result, rc);
    if (rc == 0) atomic_fetch_add(&connects, 1);
}

static void on_disconnect(struct mosquitto *m, void *u, int rc) {
    (void)m; (void)u; (void)rc;
    atomic_fetch_add(&disconnects, 1);
}

static void on_publish(struct mosquitto *m, void *u, int mid) {
    (void)m; (void)u; (void)mid;
    atomic_fetch_add(&acked, 1);
    atomic_store(&last_ack_ns, now_ns());
    if (store.on) {
        pthread_mutex_lock(&store.lock);
        store.acks++;
        store_signal_locked();
        pthread_mutex_unlock(&store.lock);
    }
}

/* prefix + "/" + each Uri-Path segment; false when it does not fit. */
static bool topic_of(const coap_pdu_t *request, char *topic, size_t size) {
    size_t at = (size_t)snprintf(topic, size, "%s", prefix);
    if (at >= size) return false;
    coap_opt_filter_t filter;
    coap_option_filter_clear(&filter);
    coap_option_filter_set(&filter, COAP_OPTION_URI_PATH);
    coap_opt_iterator_t iterator;
    coap_option_iterator_init(request, &iterator, &filter);
    coap_opt_t *option;
    while ((option = coap_option_next(&iterator))) {
        size_t length = coap_opt_length(option);
        if (at + 1 + length >= size) return false;
        topic[at++] = '/';
        memcpy(topic + at, coap_opt_value(option), length);
        at += length;
    }
    topic[at] = '\0';
    return true;
}

static void post_handler(coap_resource_t *resource, coap_session_t *session, const coap_pdu_t *request,
                         const coap_string_t *query, coap_pdu_t *response) {
    (void)resource; (void)session; (void)query;
    count_request();
    /* 2.04 at once: libcoap sends it (piggybacked on the ACK of a CON) when we return. */
    coap_pdu_set_code(response, COAP_RESPONSE_CODE_CHANGED);
    char topic[MAX_TOPIC];
    if (!topic_of(request, topic, sizeof topic)) {
        atomic_fetch_add(&long_topics, 1);
        return;
    }
    size_t length = 0;
    const uint8_t *data = NULL;
    if (!coap_get_data(request, &length, &data)) length = 0;
    /* Queued for its insert before it is published, so the writer has the
     * row by the time it sees the PUBACK that deletes it. */
    if (store.on) store_insert(topic, data, length);
    /* Beyond --window in flight, libmosquitto queues it (not an error). */
    int rc = mosquitto_publish(mosq, NULL, topic, (int)length, data, qos, false);
    if (rc == MOSQ_ERR_SUCCESS) atomic_fetch_add(&published, 1);
    else atomic_fetch_add(&publish_errors, 1);
}

/* --psk-file: each identity's key; looked up at each handshake (few). */
static struct psk_device { coap_bin_const_t identity, key; } *psk_devices;
static size_t psk_count;

static void load_psk_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) { perror("coap-mqtt-bridge: --psk-file"); exit(2); }
    char line[600], identity[256], key[256];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || sscanf(line, "%255s %255s", identity, key) != 2) continue;
        psk_devices = realloc(psk_devices, (psk_count + 1) * sizeof *psk_devices);
        char *id_copy = strdup(identity), *key_copy = strdup(key);
        psk_devices[psk_count].identity = (coap_bin_const_t){strlen(id_copy), (const uint8_t *)id_copy};
        psk_devices[psk_count].key = (coap_bin_const_t){strlen(key_copy), (const uint8_t *)key_copy};
        psk_count++;
    }
    fclose(f);
    if (psk_count == 0) { fprintf(stderr, "coap-mqtt-bridge: no identities in %s\n", path); exit(2); }
}

static const coap_bin_const_t *psk_for(coap_bin_const_t *identity, coap_session_t *session, void *arg) {
    (void)session; (void)arg;
    for (size_t i = 0; i < psk_count; i++)
        if (psk_devices[i].identity.length == identity->length &&
            memcmp(psk_devices[i].identity.s, identity->s, identity->length) == 0)
            return &psk_devices[i].key;
    return NULL; /* unknown identity: the handshake fails */
}

/* --https: one request's body, gathered over MHD's upload calls. */
#define MAX_BODY 4096
struct upload { size_t length; bool too_long; uint8_t data[MAX_BODY]; };
static struct MHD_Response *http_accepted, *http_refused;

static enum MHD_Result on_http(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_data_size,
                               void **request_state) {
    (void)cls; (void)version;
    struct upload *body = *request_state;
    if (!body) { /* headers only: take the body next */
        body = calloc(1, sizeof *body);
        if (!body) return MHD_NO;
        *request_state = body;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (body->length + *upload_data_size > MAX_BODY) body->too_long = true;
        else memcpy(body->data + body->length, upload_data, *upload_data_size);
        body->length += *upload_data_size;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0 || body->too_long)
        return MHD_queue_response(connection, MHD_HTTP_BAD_REQUEST, http_refused);
    count_request();
    char topic[MAX_TOPIC];
    if ((size_t)snprintf(topic, sizeof topic, "%s%s", prefix, url) >= sizeof topic) {
        atomic_fetch_add(&long_topics, 1);
        return MHD_queue_response(connection, MHD_HTTP_BAD_REQUEST, http_refused);
    }
    /* As on the CoAP side: queued for its insert before it is published. */
    if (store.on) store_insert(topic, body->data, body->length);
    int rc = mosquitto_publish(mosq, NULL, topic, (int)body->length, body->data, qos, false);
    if (rc == MOSQ_ERR_SUCCESS) atomic_fetch_add(&published, 1);
    else atomic_fetch_add(&publish_errors, 1);
    return MHD_queue_response(connection, MHD_HTTP_ACCEPTED, http_accepted);
}

static void on_http_done(void *cls, struct MHD_Connection *connection, void **request_state,
                         enum MHD_RequestTerminationCode code) {
    (void)cls; (void)connection; (void)code;
    free(*request_state);
    *request_state = NULL;
}

/* The whole of a (small) PEM file, NUL-terminated, as MHD_OPTION_HTTPS_MEM_* want it. */
static char *read_pem(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    size_t cap = 1 << 16;
    char *text = malloc(cap);
    if (!text) exit(1);
    size_t n = fread(text, 1, cap - 1, f);
    fclose(f);
    text[n] = 0;
    return text;
}

static struct MHD_Daemon *start_https(const char *host, int port, const char *cert_file, const char *key_file,
                                      unsigned threads) {
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &address.sin_addr) != 1) return NULL;
    http_accepted = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    http_refused = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    return MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_TLS, 0,
                            NULL, NULL, on_http, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&address,
                            threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_CONNECTION_LIMIT,
                            threads > 1 ? threads : 1024u, MHD_OPTION_CONNECTION_LIMIT, 1024u,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                            MHD_OPTION_NOTIFY_COMPLETED, on_http_done, NULL,
                            MHD_OPTION_HTTPS_MEM_CERT, read_pem(cert_file), MHD_OPTION_HTTPS_MEM_KEY,
                            read_pem(key_file), MHD_OPTION_END);
}

static void usage(const char *name) {
    fprintf(stderr,
            "usage: %s IPv4:PORT --port MQTT_PORT --cafile CA --cert CERT --key KEY\n"
            "          [--host localhost] [--id ID] [--topic-prefix dt] [--window 20] [--qos 1]\n"
            "          [--timeout 600] [--drain 5] [--store FILE [--sync normal|full]]\n"
            "          [--psk-file FILE | --https-cert PEM --https-key PEM [--threads 2]]\n", name);
}

int main(int argc, char **argv) {
    const char *store_path = NULL, *sync_mode = "normal", *psk_file = NULL, *https_cert = NULL, *https_key = NULL;
    int threads = 2;
    const char *bind_to = NULL, *host = "localhost", *cafile = NULL, *cert = NULL, *key = NULL, *id = "bench-bridge";
    int port = 0, window = 20;
    double timeout = 600, drain = 5;
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
        else if (TAKE("--window")) window = atoi(v);
        else if (TAKE("--qos")) qos = atoi(v);
        else if (TAKE("--timeout")) timeout = atof(v);
        else if (TAKE("--drain")) drain = atof(v);
        else if (TAKE("--store")) store_path = v;
        else if (TAKE("--sync")) sync_mode = v;
        else if (TAKE("--psk-file")) psk_file = v;
        else if (TAKE("--https-cert")) https_cert = v;
        else if (TAKE("--https-key")) https_key = v;
        else if (TAKE("--threads")) threads = atoi(v);
        else if (a[0] != '-' && !bind_to) bind_to = a;
        else { usage(argv[0]); return 2; }
#undef TAKE
    }
    if (!bind_to || !strchr(bind_to, ':') || !port || !cafile || !cert || !key || window < 1 || qos < 0 || qos > 2 ||
        timeout <= 0 || drain < 0 || (strcmp(sync_mode, "normal") != 0 && strcmp(sync_mode, "full") != 0) ||
        (!https_cert) != (!https_key) || (psk_file && https_cert) || threads < 1) {
        usage(argv[0]);
        return 2;
    }
    char coap_host[64];
    snprintf(coap_host, sizeof coap_host, "%.*s", (int)(strchr(bind_to, ':') - bind_to), bind_to);
    int coap_port = atoi(strchr(bind_to, ':') + 1);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: the wait in coap_io_process returns */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    uint64_t deadline = now_ns() + (uint64_t)(timeout * 1e9);

    pthread_t writer;
    if (store_path) {
        if (!store_open(store_path, strcmp(sync_mode, "full") == 0)) return 1;
        pthread_create(&writer, NULL, store_writer, NULL);
    }

    /* The MQTT side first, set up as the gateway sets up its connection. */
    mosquitto_lib_init();
    mosq = mosquitto_new(id, false, NULL); /* a persistent session, like the gateway's */
    if (!mosq) { fprintf(stderr, "coap-mqtt-bridge: mosquitto_new failed\n"); return 1; }
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_max_inflight_messages_set(mosq, (unsigned)window);
    int rc = mosquitto_tls_set(mosq, cafile, NULL, cert, key, NULL);
    if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_tls_opts_set(mosq, 1, "tlsv1.2", NULL);
    if (rc != MOSQ_ERR_SUCCESS) { fprintf(stderr, "coap-mqtt-bridge: TLS setup: %s\n", mosquitto_strerror(rc)); return 1; }
    mosquitto_connect_callback_set(mosq, on_connect);
    mosquitto_disconnect_callback_set(mosq, on_disconnect);
    mosquitto_publish_callback_set(mosq, on_publish);
    rc = mosquitto_connect(mosq, host, port, 60);
    if (rc != MOSQ_ERR_SUCCESS) { fprintf(stderr, "coap-mqtt-bridge: connect: %s\n", mosquitto_strerror(rc)); return 1; }
    rc = mosquitto_loop_start(mosq);
    if (rc != MOSQ_ERR_SUCCESS) { fprintf(stderr, "coap-mqtt-bridge: loop_start: %s\n", mosquitto_strerror(rc)); return 1; }
    uint64_t connect_deadline = now_ns() + 30000000000ULL;
    while (atomic_load(&connect_result) < 0 && !quit && now_ns() < connect_deadline) usleep(1000);
    if (atomic_load(&connect_result) != 0) {
        fprintf(stderr, "coap-mqtt-bridge: no CONNACK (result %d)\n", atomic_load(&connect_result));
        return 1;
    }

    coap_context_t *context = NULL;
    struct MHD_Daemon *daemon = NULL;
    if (https_cert) {
        daemon = start_https(coap_host, coap_port, https_cert, https_key, (unsigned)threads);
        if (!daemon) {
            fprintf(stderr, "coap-mqtt-bridge: cannot listen for HTTPS on %s\n", bind_to);
            return 1;
        }
    } else {
        coap_startup();
        coap_set_log_level(LOG_WARNING);
        context = coap_new_context(NULL);
        if (context && psk_file) {
            load_psk_file(psk_file);
            coap_dtls_spsk_t psk;
            memset(&psk, 0, sizeof psk);
            psk.version = COAP_DTLS_SPSK_SETUP_VERSION;
            psk.validate_id_call_back = psk_for;
            if (!coap_dtls_is_supported() || !coap_context_set_psk2(context, &psk)) {
                fprintf(stderr, "coap-mqtt-bridge: libcoap took no DTLS PSK setup\n");
                return 1;
            }
        }
        coap_address_t address;
        coap_address_init(&address);
        address.addr.sin.sin_family = AF_INET;
        address.addr.sin.sin_port = htons((uint16_t)coap_port);
        if (!context || inet_pton(AF_INET, coap_host, &address.addr.sin.sin_addr) != 1 ||
            !coap_new_endpoint(context, &address, psk_file ? COAP_PROTO_DTLS : COAP_PROTO_UDP)) {
            fprintf(stderr, "coap-mqtt-bridge: cannot listen on %s\n", bind_to);
            return 1;
        }
        /* Every path: the unknown-resource handler, with POST registered on it. */
        coap_resource_t *resource = coap_resource_unknown_init2(post_handler, 0);
        coap_register_request_handler(resource, COAP_REQUEST_POST, post_handler);
        coap_add_resource(context, resource);
    }

    printf("ready\n");
    fflush(stdout);
    const char *stop = "signal";
    while (!quit) {
        if (now_ns() >= deadline) { stop = "timeout"; break; }
        if (daemon) usleep(50000); /* libmicrohttpd's own threads serve */
        else if (coap_io_process(context, 1000) < 0) { stop = "coap_error"; break; }
    }
    if (daemon) MHD_stop_daemon(daemon);
    else {
        coap_free_context(context);
        coap_cleanup();
    }

    /* What is still due from the broker, bounded by --drain. */
    uint64_t drain_deadline = now_ns() + (uint64_t)(drain * 1e9);
    while (atomic_load(&acked) < atomic_load(&published) && now_ns() < drain_deadline) usleep(1000);
    uint64_t n_received = atomic_load(&received), n_published = atomic_load(&published),
             n_acked = atomic_load(&acked), n_errors = atomic_load(&publish_errors),
             n_disconnects = atomic_load(&disconnects); /* before our own disconnect below */
    mosquitto_disconnect(mosq);
    mosquitto_loop_stop(mosq, false);
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    int64_t left = -1;
    if (store.on) {
        pthread_mutex_lock(&store.lock);
        store.stop = true;
        store_signal_locked();
        pthread_mutex_unlock(&store.lock);
        pthread_join(writer, NULL);
        sqlite3_stmt *counting;
        if (sqlite3_prepare_v2(store.db, "SELECT count(*) FROM message", -1, &counting, NULL) == SQLITE_OK &&
            sqlite3_step(counting) == SQLITE_ROW)
            left = sqlite3_column_int64(counting, 0);
        sqlite3_finalize(counting);
        sqlite3_finalize(store.insert);
        sqlite3_finalize(store.delete);
        sqlite3_close(store.db);
    }

    uint64_t first = atomic_load(&first_request_ns), last = atomic_load(&last_ack_ns);
    double span = last > first ? (double)(last - first) / 1e9 : 0;
    printf("{\"stop\":\"%s\",\"window\":%d,\"qos\":%d,\"received\":%" PRIu64 ",\"published\":%" PRIu64
           ",\"acked\":%" PRIu64 ",\"publish_errors\":%" PRIu64 ",\"long_topics\":%" PRIu64 ",\"unacked\":%" PRIu64
           ",\"connects\":%" PRIu64 ",\"disconnects\":%" PRIu64 ",\"first_request_ns\":%" PRIu64
           ",\"last_request_ns\":%" PRIu64 ",\"last_ack_ns\":%" PRIu64 ",\"acked_per_s\":%.1f"
           ",\"stored\":%s,\"inserted\":%" PRIu64 ",\"deleted\":%" PRIu64 ",\"commits\":%" PRIu64
           ",\"store_failures\":%" PRIu64 ",\"rows_left\":%" PRId64 "}\n",
           stop, window, qos, n_received, n_published, n_acked, n_errors, (uint64_t)atomic_load(&long_topics),
           n_published > n_acked ? n_published - n_acked : 0, (uint64_t)atomic_load(&connects),
           n_disconnects, first, (uint64_t)atomic_load(&last_request_ns), last,
           span > 0 ? (double)n_acked / span : 0.0, store.on ? "true" : "false", store.inserted, store.deleted,
           store.commits, store.failures, left);
    fflush(stdout);
    fprintf(stderr, "coap-mqtt-bridge: %" PRIu64 " received, %" PRIu64 " published, %" PRIu64 " acked, %" PRIu64
                    " publish errors (%s)\n", n_received, n_published, n_acked, n_errors, stop);
    bool stored_ok = !store.on || (store.failures == 0 && left == 0);
    return n_acked == n_published && n_errors == 0 && stored_ok ? 0 : 1;
}
