/*
 * coap-dtls-load: a CoAP-over-DTLS (PSK) POST load generator on libcoap
 * 4.3.1's client (OpenSSL build), for bench/run's dtls-psk and
 * dtls-handshakes scenarios.
 *
 * Load mode (default): opens --sessions DTLS sessions, each from its own
 * source port and with its own PSK identity and key (session i is device
 * i mod the number of devices in --psk-file), waits until every handshake is
 * done, and only then starts the clock: each session keeps one CON POST
 * outstanding (libcoap's NSTART is 1; a session never has a second request
 * queued behind the first), and sends the next as soon as the answer is in.
 * The rate is that of requests over established sessions.
 *
 * Handshake mode (--handshakes): --parallel slots, each of which opens a
 * session, completes the handshake and one POST, closes the session
 * (close_notify) and starts over with the next device, as fast as that goes.
 * The rate is that of complete cycles.
 *
 * Every payload is {"seq":N,"t":NS,"v":21.5}: a sequence number unique
 * within the run (plus --seq-base) and the CLOCK_MONOTONIC time the request
 * was handed to libcoap, so a subscriber can find losses and duplicates. The
 * Uri-Path comes from --path with {device} replaced by the session's PSK
 * identity (e.g. /bench/run1/{device}).
 *
 * Retransmission is libcoap's (RFC 7252: ACK_TIMEOUT 2 s x [1, 1.5],
 * MAX_RETRANSMIT 4); libcoap does not report retransmissions, so answers
 * that took at least ACK_TIMEOUT are counted instead (slow_answers).
 *
 * Bounded: stops issuing after --count requests (or handshakes) or
 * --duration seconds, then waits at most --drain seconds for what is
 * outstanding; the handshakes of load mode are bounded by --connect-timeout.
 * Prints one JSON object on stdout. Only sends to the address it is given
 * (bench/run: 127.0.0.1).
 *
 *   coap-dtls-load --port P --psk-file F [--host 127.0.0.1] [--path /bench/x/{device}]
 *                  [--sessions 50] [--count N] [--duration S] [--drain S]
 *                  [--connect-timeout S] [--seq-base N]
 *   coap-dtls-load --port P --psk-file F --handshakes [--parallel 8] [--count N] [--duration S]
 *
 * --psk-file holds one device a line: "IDENTITY KEY" (the key as text, the
 * bytes of which are the PSK; '#' starts a comment). --identity ID --key K
 * gives a single device instead.
 */
#define _GNU_SOURCE
#include <coap3/coap.h>
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SEGMENTS 16
#define ACK_TIMEOUT_NS 2000000000ULL

struct device {
    char *identity;
    uint8_t *key;
    size_t key_len;
};

struct options {
    const char *host;
    int port;
    const char *path;
    const char *psk_file;
    const char *identity;
    const char *key;
    int sessions;
    uint64_t count;
    double duration;
    double drain;
    double connect_timeout;
    uint64_t seq_base;
    bool handshakes;
    int parallel;
};

/* One client session (load mode) or one slot of --parallel (handshake mode). */
struct slot {
    int index;
    coap_session_t *session;
    struct device *device;
    int segments;
    char *segment[MAX_SEGMENTS];
    bool connected;          /* COAP_EVENT_DTLS_CONNECTED seen */
    bool failed;             /* the DTLS session broke (error, closed, TLS nack) */
    bool busy;               /* a request is outstanding */
    bool answered;           /* handshake mode: the request is over (answer or nack) */
    bool ok;                 /* handshake mode: ... and its answer was 2.xx */
    uint8_t token[8];
    size_t token_len;
    uint64_t seq;
    uint64_t sent_ns;
    uint64_t opened_ns;
    uint64_t connected_ns;
};

struct samples {
    uint64_t *v;
    uint64_t n, cap;
};

struct stats {
    uint64_t issued, completed, send_errors, unmatched, slow_answers;
    uint64_t nack_retries, nack_undeliverable, nack_rst, nack_tls, nack_icmp;
    uint64_t dtls_connected, dtls_closed, dtls_errors, session_failures;
    uint64_t handshakes_started, handshakes_ok, handshake_failures, handshake_timeouts;
    uint64_t codes[256];
};

static struct options o;
static struct stats s;
static struct device *devices;
static int device_count;
static struct slot *slots;
static int slot_count;
static int outstanding;
static struct samples latency, handshake_latency, cycle_latency;
static coap_address_t server;
static uint64_t first_send_ns, last_done_ns;

static volatile sig_atomic_t interrupted = 0;
static void on_signal(int signo) { (void)signo; interrupted = 1; }

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void usage(const char *argv0) {
    fprintf(stderr,
        "usage: %s --port PORT (--psk-file FILE | --identity ID --key KEY) [--host 127.0.0.1]\n"
        "          [--path /bench/x/{device}] [--sessions 50] [--count N] [--duration S] [--drain S]\n"
        "          [--connect-timeout S] [--seq-base N] [--handshakes [--parallel 8]]\n", argv0);
    exit(2);
}

static void parse(int argc, char **argv) {
    o = (struct options){ .host = "127.0.0.1", .path = "/bench/{device}", .sessions = 50, .count = 1000,
        .duration = 0, .drain = 20, .connect_timeout = 30, .parallel = 8 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE(name) (strcmp(a, name) == 0 && v && (i++, 1))
        if (TAKE("--host")) o.host = v;
        else if (TAKE("--port")) o.port = atoi(v);
        else if (TAKE("--path")) o.path = v;
        else if (TAKE("--psk-file")) o.psk_file = v;
        else if (TAKE("--identity")) o.identity = v;
        else if (TAKE("--key")) o.key = v;
        else if (TAKE("--sessions")) o.sessions = atoi(v);
        else if (TAKE("--count")) o.count = strtoull(v, NULL, 10);
        else if (TAKE("--duration")) o.duration = atof(v);
        else if (TAKE("--drain")) o.drain = atof(v);
        else if (TAKE("--connect-timeout")) o.connect_timeout = atof(v);
        else if (TAKE("--seq-base")) o.seq_base = strtoull(v, NULL, 10);
        else if (TAKE("--parallel")) o.parallel = atoi(v);
        else if (strcmp(a, "--handshakes") == 0) o.handshakes = true;
        else usage(argv[0]);
#undef TAKE
    }
    if (o.port <= 0 || o.sessions < 1 || o.parallel < 1 || o.count == 0) usage(argv[0]);
    if (!o.psk_file && !(o.identity && o.key)) usage(argv[0]);
}

static void add_device(const char *identity, const char *key) {
    devices = realloc(devices, (size_t)(device_count + 1) * sizeof *devices);
    if (!devices) { fprintf(stderr, "coap-dtls-load: out of memory\n"); exit(1); }
    devices[device_count].identity = strdup(identity);
    devices[device_count].key = (uint8_t *)strdup(key);
    devices[device_count].key_len = strlen(key);
    device_count++;
}

static void load_devices(void) {
    if (!o.psk_file) { add_device(o.identity, o.key); return; }
    FILE *f = fopen(o.psk_file, "r");
    if (!f) { perror("coap-dtls-load: --psk-file"); exit(2); }
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char identity[256], key[256];
        if (line[0] == '#') continue;
        if (sscanf(line, "%255s %255s", identity, key) == 2) add_device(identity, key);
    }
    fclose(f);
    if (device_count == 0) { fprintf(stderr, "coap-dtls-load: no devices in %s\n", o.psk_file); exit(2); }
}

/* --path with {device} replaced, split into Uri-Path segments. */
static void set_path(struct slot *sl) {
    for (int i = 0; i < sl->segments; i++) free(sl->segment[i]);
    sl->segments = 0;
    char path[512];
    const char *p = o.path;
    size_t at = 0;
    while (*p && at < sizeof path - 1) {
        if (strncmp(p, "{device}", 8) == 0) {
            at += (size_t)snprintf(path + at, sizeof path - at, "%s", sl->device->identity);
            if (at >= sizeof path) at = sizeof path - 1;
            p += 8;
        } else {
            path[at++] = *p++;
        }
    }
    path[at] = 0;
    char *save = NULL;
    for (char *seg = strtok_r(path, "/", &save); seg && sl->segments < MAX_SEGMENTS; seg = strtok_r(NULL, "/", &save))
        sl->segment[sl->segments++] = strdup(seg);
}

static void sample(struct samples *x, uint64_t value) {
    if (x->n < x->cap) x->v[x->n++] = value;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const struct samples *x, double p) {
    if (x->n == 0) return 0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)x->n + 0.999999); /* nearest-rank */
    if (rank < 1) rank = 1;
    if (rank > x->n) rank = x->n;
    return (double)x->v[rank - 1] / 1000.0;
}

static void print_samples(const char *name, struct samples *x, bool comma) {
    qsort(x->v, x->n, sizeof x->v[0], cmp_u64);
    double sum = 0;
    for (uint64_t i = 0; i < x->n; i++) sum += (double)x->v[i];
    printf("\"%s\":{\"n\":%" PRIu64 ",\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f}%s",
           name, x->n, pct(x, 50), pct(x, 90), pct(x, 99), pct(x, 99.9),
           x->n ? (double)x->v[x->n - 1] / 1000.0 : 0.0, x->n ? sum / (double)x->n / 1000.0 : 0.0, comma ? "," : "");
}

/* --- libcoap ------------------------------------------------------------- */

static bool open_session(coap_context_t *ctx, struct slot *sl) {
    coap_dtls_cpsk_t setup;
    memset(&setup, 0, sizeof setup);
    setup.version = COAP_DTLS_CPSK_SETUP_VERSION;
    setup.psk_info.identity.s = (const uint8_t *)sl->device->identity;
    setup.psk_info.identity.length = strlen(sl->device->identity);
    setup.psk_info.key.s = sl->device->key;
    setup.psk_info.key.length = sl->device->key_len;
    sl->connected = sl->failed = sl->busy = sl->answered = sl->ok = false;
    sl->opened_ns = now_ns();
    sl->connected_ns = 0;
    /* No local address: libcoap gives every client session its own socket,
     * so its own source port. */
    sl->session = coap_new_client_session_psk2(ctx, NULL, &server, COAP_PROTO_DTLS, &setup);
    if (!sl->session) return false;
    coap_session_set_app_data(sl->session, sl);
    return true;
}

static void close_session(struct slot *sl) {
    if (!sl->session) return;
    coap_session_set_app_data(sl->session, NULL); /* events from the release are not this slot's */
    coap_session_release(sl->session);              /* sends close_notify when established */
    sl->session = NULL;
}

static bool issue(struct slot *sl) {
    coap_session_t *session = sl->session;
    coap_pdu_t *pdu = coap_pdu_init(COAP_MESSAGE_CON, COAP_REQUEST_CODE_POST, coap_new_message_id(session),
                                    coap_session_max_pdu_size(session));
    if (!pdu) { s.send_errors++; return false; }
    coap_session_new_token(session, &sl->token_len, sl->token);
    coap_add_token(pdu, sl->token_len, sl->token);
    for (int i = 0; i < sl->segments; i++)
        coap_add_option(pdu, COAP_OPTION_URI_PATH, strlen(sl->segment[i]), (const uint8_t *)sl->segment[i]);
    uint8_t format[4];
    coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT, coap_encode_var_safe(format, sizeof format, COAP_MEDIATYPE_APPLICATION_JSON), format);
    uint64_t now = now_ns();
    sl->seq = o.seq_base + s.issued;
    char payload[96];
    int n = snprintf(payload, sizeof payload, "{\"seq\":%" PRIu64 ",\"t\":%" PRIu64 ",\"v\":21.5}", sl->seq, now);
    coap_add_data(pdu, (size_t)n, (const uint8_t *)payload);
    s.issued++;
    sl->sent_ns = now;
    if (!first_send_ns) first_send_ns = now;
    if (coap_send(session, pdu) == COAP_INVALID_MID) { /* coap_send frees the PDU either way */
        s.send_errors++;
        return false;
    }
    sl->busy = true;
    outstanding++;
    return true;
}

static void done(struct slot *sl, uint64_t now) {
    sl->busy = false;
    outstanding--;
    s.completed++;
    last_done_ns = now;
}

static coap_response_t on_response(coap_session_t *session, const coap_pdu_t *sent, const coap_pdu_t *received,
                                   const coap_mid_t mid) {
    (void)sent; (void)mid;
    uint64_t now = now_ns();
    struct slot *sl = coap_session_get_app_data(session);
    coap_bin_const_t token = coap_pdu_get_token(received);
    if (!sl || !sl->busy || token.length != sl->token_len || memcmp(token.s, sl->token, token.length) != 0) {
        s.unmatched++;
        return COAP_RESPONSE_OK;
    }
    uint8_t code = (uint8_t)coap_pdu_get_code(received);
    s.codes[code]++;
    uint64_t took = now - sl->sent_ns;
    if (took >= ACK_TIMEOUT_NS) s.slow_answers++;
    if ((code >> 5) == 2) {
        sample(&latency, took);
        if (o.handshakes) {
            s.handshakes_ok++;
            sl->ok = true;
            sample(&cycle_latency, now - sl->opened_ns);
        }
    }
    sl->answered = true;
    done(sl, now);
    return COAP_RESPONSE_OK;
}

static void on_nack(coap_session_t *session, const coap_pdu_t *sent, const coap_nack_reason_t reason, const coap_mid_t mid) {
    (void)sent; (void)mid;
    switch (reason) {
    case COAP_NACK_TOO_MANY_RETRIES: s.nack_retries++; break;
    case COAP_NACK_NOT_DELIVERABLE: s.nack_undeliverable++; break;
    case COAP_NACK_RST: s.nack_rst++; break;
    case COAP_NACK_TLS_FAILED: s.nack_tls++; break;
    case COAP_NACK_ICMP_ISSUE: s.nack_icmp++; break;
    }
    struct slot *sl = coap_session_get_app_data(session);
    if (!sl) return;
    if (reason == COAP_NACK_TLS_FAILED) sl->failed = true;
    if (sl->busy) {
        sl->answered = true; /* with no answer: the slot moves on */
        done(sl, now_ns());
    }
}

static int on_event(coap_session_t *session, const coap_event_t event) {
    struct slot *sl = coap_session_get_app_data(session);
    switch (event) {
    case COAP_EVENT_DTLS_CONNECTED:
        s.dtls_connected++;
        if (sl && !sl->connected) {
            sl->connected = true;
            sl->connected_ns = now_ns();
            if (o.handshakes) sample(&handshake_latency, sl->connected_ns - sl->opened_ns);
        }
        break;
    case COAP_EVENT_DTLS_CLOSED:
        if (sl) { s.dtls_closed++; sl->failed = true; }
        break;
    case COAP_EVENT_DTLS_ERROR:
        s.dtls_errors++;
        if (sl) sl->failed = true;
        break;
    default:
        break;
    }
    return 0;
}

/* One pass of libcoap's I/O, waiting at most wait_ms (never 0: that is COAP_IO_WAIT). */
static void pump(coap_context_t *ctx, uint64_t wait_ns) {
    uint32_t wait_ms = (uint32_t)(wait_ns / 1000000ULL);
    if (wait_ms < 1) wait_ms = 1;
    if (wait_ms > 100) wait_ms = 100;
    coap_io_process(ctx, wait_ms);
}

/* --- the runs ------------------------------------------------------------ */

static uint64_t start_ns, connected_all_ns;

static void run_load(coap_context_t *ctx) {
    slot_count = o.sessions;
    slots = calloc((size_t)slot_count, sizeof *slots);
    for (int i = 0; i < slot_count; i++) {
        slots[i].index = i;
        slots[i].device = &devices[i % device_count];
        set_path(&slots[i]);
        if (!open_session(ctx, &slots[i])) { fprintf(stderr, "coap-dtls-load: cannot create session %d\n", i); s.session_failures++; }
    }
    /* Every handshake first (bounded): the clock starts on established sessions. */
    uint64_t deadline = start_ns + (uint64_t)(o.connect_timeout * 1e9);
    for (;;) {
        int connected = 0, pending = 0;
        for (int i = 0; i < slot_count; i++) {
            if (slots[i].connected) connected++;
            else if (slots[i].session && !slots[i].failed) pending++;
        }
        if (pending == 0 || interrupted || now_ns() >= deadline) break;
        pump(ctx, 100000000ULL);
    }
    connected_all_ns = now_ns();

    uint64_t begin = now_ns();
    uint64_t send_until = o.duration > 0 ? begin + (uint64_t)(o.duration * 1e9) : UINT64_MAX;
    uint64_t hard_end = UINT64_MAX;
    for (;;) {
        uint64_t now = now_ns();
        bool sending = !interrupted && s.issued < o.count && now < send_until;
        if (sending) {
            for (int i = 0; i < slot_count && s.issued < o.count; i++) {
                struct slot *sl = &slots[i];
                if (sl->session && sl->connected && !sl->failed && !sl->busy) issue(sl);
            }
        } else if (hard_end == UINT64_MAX) {
            hard_end = now + (uint64_t)(o.drain * 1e9);
        }
        if (!sending && (outstanding == 0 || now >= hard_end || interrupted)) break;
        if (sending && outstanding == 0) break; /* no session can send: every one failed */
        uint64_t wake = sending ? send_until : hard_end;
        pump(ctx, wake > now ? wake - now : 0);
    }
}

static void run_handshakes(coap_context_t *ctx) {
    slot_count = o.parallel;
    slots = calloc((size_t)slot_count, sizeof *slots);
    uint64_t send_until = o.duration > 0 ? start_ns + (uint64_t)(o.duration * 1e9) : UINT64_MAX;
    uint64_t hard_end = UINT64_MAX;
    int next_device = 0;
    for (int i = 0; i < slot_count; i++) slots[i].index = i;
    for (;;) {
        uint64_t now = now_ns();
        bool sending = !interrupted && s.handshakes_started < o.count && now < send_until;
        for (int i = 0; i < slot_count; i++) {
            struct slot *sl = &slots[i];
            if (sl->session) {
                /* Over: answered (or nacked), broken, or no handshake within --connect-timeout. */
                bool late = now - sl->opened_ns > (uint64_t)(o.connect_timeout * 1e9);
                if (sl->answered || sl->failed || late) {
                    if (late && !sl->answered && !sl->failed) s.handshake_timeouts++;
                    if (sl->busy) done(sl, now);
                    if (!sl->ok) s.handshake_failures++;
                    close_session(sl);
                }
            }
            if (!sl->session && sending && s.handshakes_started < o.count) {
                sl->device = &devices[next_device++ % device_count];
                set_path(sl);
                s.handshakes_started++;
                if (!open_session(ctx, sl)) { s.session_failures++; continue; }
                /* The request waits in libcoap until the handshake is done. */
                if (!issue(sl)) { sl->failed = true; }
            }
        }
        if (!sending && hard_end == UINT64_MAX) hard_end = now + (uint64_t)(o.drain * 1e9);
        int open = 0;
        for (int i = 0; i < slot_count; i++) if (slots[i].session) open++;
        if (!sending && (open == 0 || now >= hard_end || interrupted)) break;
        uint64_t wake = sending ? send_until : hard_end;
        pump(ctx, wake > now ? wake - now : 0);
    }
}

static void print_json(uint64_t end) {
    uint64_t ok = 0, client_err = 0, server_err = 0;
    for (int c = 0; c < 256; c++) {
        if ((c >> 5) == 2) ok += s.codes[c];
        else if ((c >> 5) == 4) client_err += s.codes[c];
        else if ((c >> 5) == 5) server_err += s.codes[c];
    }
    int connected = 0;
    for (int i = 0; i < slot_count; i++) if (slots[i].connected) connected++;
    uint64_t begin = first_send_ns ? first_send_ns : start_ns;
    uint64_t last = last_done_ns > begin ? last_done_ns : end;
    if (o.handshakes) begin = start_ns;
    double elapsed = (double)(last - begin) / 1e9;
    printf("{\"mode\":\"%s\",\"sessions\":%d,\"devices\":%d,\"count_target\":%" PRIu64 ",",
           o.handshakes ? "handshakes" : "load", o.handshakes ? o.parallel : o.sessions, device_count, o.count);
    if (!o.handshakes)
        printf("\"sessions_connected\":%d,\"connect_s\":%.6f,", connected, (double)(connected_all_ns - start_ns) / 1e9);
    printf("\"sent\":%" PRIu64 ",\"completed\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"client_errors\":%" PRIu64 ",\"server_errors\":%" PRIu64 ",\"codes\":{",
           s.issued, s.completed, ok, client_err, server_err);
    bool first = true;
    for (int c = 0; c < 256; c++) {
        if (!s.codes[c]) continue;
        printf("%s\"%d.%02d\":%" PRIu64, first ? "" : ",", c >> 5, c & 31, s.codes[c]);
        first = false;
    }
    printf("},\"timeouts\":%" PRIu64 ",\"undeliverable\":%" PRIu64 ",\"rst\":%" PRIu64 ",\"tls_failed\":%" PRIu64 ",\"icmp\":%" PRIu64 ",",
           s.nack_retries, s.nack_undeliverable, s.nack_rst, s.nack_tls, s.nack_icmp);
    printf("\"unfinished\":%d,\"unmatched\":%" PRIu64 ",\"send_errors\":%" PRIu64 ",\"slow_answers\":%" PRIu64 ",",
           outstanding, s.unmatched, s.send_errors, s.slow_answers);
    printf("\"dtls_connected\":%" PRIu64 ",\"dtls_closed\":%" PRIu64 ",\"dtls_errors\":%" PRIu64 ",\"session_failures\":%" PRIu64 ",",
           s.dtls_connected, s.dtls_closed, s.dtls_errors, s.session_failures);
    if (o.handshakes) {
        printf("\"parallel\":%d,\"handshakes_started\":%" PRIu64 ",\"handshakes\":%" PRIu64 ",\"handshake_failures\":%" PRIu64 ",\"handshake_timeouts\":%" PRIu64 ",\"handshakes_per_s\":%.1f,",
               o.parallel, s.handshakes_started, s.handshakes_ok, s.handshake_failures, s.handshake_timeouts, elapsed > 0 ? (double)s.handshakes_ok / elapsed : 0.0);
        print_samples("handshake_us", &handshake_latency, true);
        print_samples("cycle_us", &cycle_latency, true);
    }
    printf("\"interrupted\":%s,\"start_ns\":%" PRIu64 ",\"first_send_ns\":%" PRIu64 ",\"last_done_ns\":%" PRIu64 ",\"elapsed_s\":%.6f,\"ok_per_s\":%.1f,",
           interrupted ? "true" : "false", start_ns, first_send_ns, last_done_ns, elapsed, elapsed > 0 ? (double)ok / elapsed : 0.0);
    print_samples("latency_us", &latency, false);
    printf("}\n");
    fflush(stdout);
}

int main(int argc, char **argv) {
    parse(argc, argv);
    load_devices();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: the wait in coap_io_process returns */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    coap_startup();
    coap_set_log_level(LOG_ERR);
    coap_dtls_set_log_level(LOG_ERR);
    if (!coap_dtls_is_supported()) { fprintf(stderr, "coap-dtls-load: this libcoap has no DTLS\n"); return 1; }
    coap_address_init(&server);
    server.addr.sin.sin_family = AF_INET;
    server.addr.sin.sin_port = htons((uint16_t)o.port);
    if (inet_pton(AF_INET, o.host, &server.addr.sin.sin_addr) != 1) { fprintf(stderr, "coap-dtls-load: bad --host\n"); return 2; }
    coap_context_t *ctx = coap_new_context(NULL);
    if (!ctx) { fprintf(stderr, "coap-dtls-load: no libcoap context\n"); return 1; }
    coap_register_response_handler(ctx, on_response);
    coap_register_nack_handler(ctx, on_nack);
    coap_register_event_handler(ctx, on_event);

    latency.cap = cycle_latency.cap = handshake_latency.cap = o.count;
    latency.v = malloc(o.count * sizeof(uint64_t));
    cycle_latency.v = malloc(o.count * sizeof(uint64_t));
    handshake_latency.v = malloc(o.count * sizeof(uint64_t));
    if (!latency.v || !cycle_latency.v || !handshake_latency.v) { fprintf(stderr, "coap-dtls-load: out of memory\n"); return 1; }

    start_ns = now_ns();
    if (o.handshakes) run_handshakes(ctx);
    else run_load(ctx);
    uint64_t end = now_ns();
    print_json(end);
    for (int i = 0; i < slot_count; i++) close_session(&slots[i]);
    coap_io_process(ctx, COAP_IO_NO_WAIT); /* let the close_notify alerts go out */
    coap_free_context(ctx);
    coap_cleanup();
    return 0;
}
