/*
 * coap-load: a CoAP POST load generator over raw UDP (RFC 7252), for bench/run.
 *
 * It keeps a window of outstanding requests spread over N source ports,
 * matches answers by token (and empty ACKs / RSTs by message ID), retransmits
 * CON requests with RFC 7252's timing (ACK_TIMEOUT 2 s x a random factor in
 * [1, 1.5], doubling, at most MAX_RETRANSMIT 4 retransmissions), acknowledges
 * separate (CON) responses, and counts every response code. With --rate it
 * sends at a fixed pace instead of as fast as the window allows.
 *
 * Every payload is {"seq":N,"t":NS,...}: a sequence number unique within the
 * run (plus --seq-base) and the CLOCK_MONOTONIC time of the first
 * transmission, so a subscriber can find losses, duplicates and latency.
 *
 * Bounded: stops issuing after --count requests or --duration seconds, then
 * waits at most --drain seconds for what is outstanding. Prints one JSON
 * object on stdout. Only sends to the address it is given (bench/run: 127.0.0.1).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { COAP_CON = 0, COAP_NON = 1, COAP_ACK = 2, COAP_RST = 3 };
enum { SLOT_FREE = 0, SLOT_WAIT_ACK, SLOT_WAIT_SEPARATE, SLOT_WAIT_NON };

#define ACK_TIMEOUT_NS 2000000000ULL
#define MAX_PDU 1152
#define TOKEN_LEN 8

struct options {
    const char *host;
    int port;
    const char *path;       /* e.g. /bench/run1; a final segment d<socket> is added */
    int sockets;
    int window;
    uint64_t count;
    double duration;         /* seconds; 0 = no time bound besides the hard cap */
    double drain;            /* seconds to wait for outstanding answers after the last send */
    double rate;             /* messages per second; 0 = closed loop (window) */
    bool non;
    int max_retransmit;
    double separate_timeout; /* seconds to wait for a separate response after the empty ACK */
    uint64_t seq_base;
    int payload_pad;         /* extra bytes of padding in the payload */
};

struct slot {
    int state;
    int sock;
    uint16_t mid;
    int retransmits;
    uint64_t seq;
    uint64_t first_sent;
    uint64_t deadline;
    uint64_t timeout;        /* current retransmission timeout */
    uint16_t len;
    uint8_t pdu[MAX_PDU];
};

struct stats {
    uint64_t issued, transmissions, retransmissions, completed;
    uint64_t piggybacked, empty_acks, separate, non_responses, rst;
    uint64_t timeouts, separate_timeouts, non_timeouts, unfinished;
    uint64_t unmatched, duplicate_separate, malformed, send_errors;
    uint64_t late_sends, max_lag_ns, window_full;
    uint64_t codes[256];
};

static volatile sig_atomic_t interrupted = 0;
static void on_signal(int signo) { (void)signo; interrupted = 1; }

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void usage(const char *argv0) {
    fprintf(stderr,
        "usage: %s --port PORT [--host 127.0.0.1] [--path /bench/x] [--sockets 50] [--window 64]\n"
        "          [--count N] [--duration S] [--drain S] [--rate MSG_PER_S] [--non]\n"
        "          [--max-retransmit 4] [--separate-timeout S] [--seq-base N] [--pad BYTES]\n", argv0);
    exit(2);
}

static void parse(int argc, char **argv, struct options *o) {
    *o = (struct options){ .host = "127.0.0.1", .port = 0, .path = "/bench", .sockets = 50, .window = 64,
        .count = 1000, .duration = 0, .drain = 20, .rate = 0, .non = false, .max_retransmit = 4,
        .separate_timeout = 30, .seq_base = 0, .payload_pad = 0 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE(name) (strcmp(a, name) == 0 && v && (i++, 1))
        if (TAKE("--host")) o->host = v;
        else if (TAKE("--port")) o->port = atoi(v);
        else if (TAKE("--path")) o->path = v;
        else if (TAKE("--sockets")) o->sockets = atoi(v);
        else if (TAKE("--window")) o->window = atoi(v);
        else if (TAKE("--count")) o->count = strtoull(v, NULL, 10);
        else if (TAKE("--duration")) o->duration = atof(v);
        else if (TAKE("--drain")) o->drain = atof(v);
        else if (TAKE("--rate")) o->rate = atof(v);
        else if (TAKE("--max-retransmit")) o->max_retransmit = atoi(v);
        else if (TAKE("--separate-timeout")) o->separate_timeout = atof(v);
        else if (TAKE("--seq-base")) o->seq_base = strtoull(v, NULL, 10);
        else if (TAKE("--pad")) o->payload_pad = atoi(v);
        else if (strcmp(a, "--non") == 0) o->non = true;
        else usage(argv[0]);
#undef TAKE
    }
    if (o->port <= 0 || o->sockets < 1 || o->window < 1 || o->window > 65535 || o->count == 0) usage(argv[0]);
    if (o->payload_pad < 0 || o->payload_pad > 900) usage(argv[0]);
}

/* --- CoAP encoding ------------------------------------------------------ */

/* Appends one option (delta-encoded against *last); returns the new length or 0. */
static size_t put_option(uint8_t *buf, size_t at, size_t cap, unsigned *last, unsigned number,
                         const uint8_t *value, size_t length) {
    unsigned delta = number - *last;
    uint8_t ext[4];
    size_t n = 0;
    unsigned d_nib, l_nib;
    if (delta < 13) d_nib = delta;
    else if (delta < 269) { d_nib = 13; ext[n++] = (uint8_t)(delta - 13); }
    else { d_nib = 14; ext[n++] = (uint8_t)((delta - 269) >> 8); ext[n++] = (uint8_t)(delta - 269); }
    if (length < 13) l_nib = (unsigned)length;
    else if (length < 269) { l_nib = 13; ext[n++] = (uint8_t)(length - 13); }
    else { l_nib = 14; ext[n++] = (uint8_t)((length - 269) >> 8); ext[n++] = (uint8_t)(length - 269); }
    if (at + 1 + n + length > cap) return 0;
    buf[at++] = (uint8_t)((d_nib << 4) | l_nib);
    memcpy(buf + at, ext, n); at += n;
    memcpy(buf + at, value, length); at += length;
    *last = number;
    return at;
}

/* A POST with Uri-Path segments of `path` plus "d<sock>", Content-Format 50. */
static size_t build_request(uint8_t *buf, const struct options *o, int type, uint16_t mid,
                            const uint8_t token[TOKEN_LEN], int sock, uint64_t seq, uint64_t t_ns) {
    size_t at = 0;
    unsigned last = 0;
    buf[at++] = (uint8_t)(0x40 | (type << 4) | TOKEN_LEN);
    buf[at++] = 0x02; /* 0.02 POST */
    buf[at++] = (uint8_t)(mid >> 8);
    buf[at++] = (uint8_t)mid;
    memcpy(buf + at, token, TOKEN_LEN); at += TOKEN_LEN;
    const char *p = o->path;
    while (*p) {
        while (*p == '/') p++;
        const char *end = p;
        while (*end && *end != '/') end++;
        if (end > p) {
            at = put_option(buf, at, MAX_PDU, &last, 11, (const uint8_t *)p, (size_t)(end - p));
            if (!at) return 0;
        }
        p = end;
    }
    char device[16];
    int dn = snprintf(device, sizeof device, "d%d", sock);
    at = put_option(buf, at, MAX_PDU, &last, 11, (const uint8_t *)device, (size_t)dn);
    if (!at) return 0;
    uint8_t json = 50;
    at = put_option(buf, at, MAX_PDU, &last, 12, &json, 1);
    if (!at || at + 1 + 64 + (size_t)o->payload_pad > MAX_PDU) return 0;
    buf[at++] = 0xFF;
    int n = snprintf((char *)buf + at, MAX_PDU - at, "{\"seq\":%" PRIu64 ",\"t\":%" PRIu64 ",\"v\":21.5", seq, t_ns);
    at += (size_t)n;
    if (o->payload_pad > 0) {
        memcpy(buf + at, ",\"pad\":\"", 8); at += 8;
        memset(buf + at, 'x', (size_t)o->payload_pad); at += (size_t)o->payload_pad;
        buf[at++] = '"';
    }
    buf[at++] = '}';
    return at;
}

static void encode_token(uint8_t token[TOKEN_LEN], uint32_t slot, uint64_t seq) {
    /* 2 bytes of slot index, 6 bytes of sequence: unique for the whole run. */
    token[0] = (uint8_t)(slot >> 8);
    token[1] = (uint8_t)slot;
    for (int i = 0; i < 6; i++) token[2 + i] = (uint8_t)(seq >> (8 * (5 - i)));
}

static bool decode_token(const uint8_t *token, size_t len, uint32_t *slot, uint64_t *seq) {
    if (len != TOKEN_LEN) return false;
    *slot = ((uint32_t)token[0] << 8) | token[1];
    *seq = 0;
    for (int i = 0; i < 6; i++) *seq = (*seq << 8) | token[2 + i];
    return true;
}

/* --- latency percentiles ----------------------------------------------- */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint64_t *sorted, uint64_t n, double p) {
    if (n == 0) return 0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)n + 0.999999); /* nearest-rank */
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return (double)sorted[rank - 1] / 1000.0;
}

/* --- the run ------------------------------------------------------------ */

struct run {
    struct options o;
    struct stats s;
    struct slot *slots;
    int *free_list;
    int free_count;
    int active;
    int *fds;
    uint16_t *next_mid;
    int next_sock;
    uint64_t *latency;       /* ns, for 2.xx answers */
    uint64_t latency_n, latency_cap;
    uint64_t start, first_send, last_done;
};

static double random_factor(void) { return 1.0 + 0.5 * ((double)random() / (double)RAND_MAX); }

static void transmit(struct run *r, struct slot *sl) {
    ssize_t n = send(r->fds[sl->sock], sl->pdu, sl->len, MSG_DONTWAIT);
    r->s.transmissions++;
    if (n < 0) r->s.send_errors++; /* lost like a datagram on the wire; retransmission covers CON */
}

static void finish(struct run *r, int index, uint64_t now) {
    struct slot *sl = &r->slots[index];
    sl->state = SLOT_FREE;
    r->free_list[r->free_count++] = index;
    r->active--;
    r->s.completed++;
    r->last_done = now;
}

static void answered(struct run *r, int index, uint8_t code, uint64_t now) {
    struct slot *sl = &r->slots[index];
    r->s.codes[code]++;
    if ((code >> 5) == 2 && r->latency_n < r->latency_cap) r->latency[r->latency_n++] = now - sl->first_sent;
    finish(r, index, now);
}

static void issue(struct run *r, uint64_t now) {
    int index = r->free_list[--r->free_count];
    struct slot *sl = &r->slots[index];
    sl->sock = r->next_sock;
    r->next_sock = (r->next_sock + 1) % r->o.sockets;
    sl->mid = r->next_mid[sl->sock]++;
    sl->seq = r->o.seq_base + r->s.issued;
    sl->retransmits = 0;
    sl->first_sent = now;
    uint8_t token[TOKEN_LEN];
    encode_token(token, (uint32_t)index, r->s.issued);
    sl->len = (uint16_t)build_request(sl->pdu, &r->o, r->o.non ? COAP_NON : COAP_CON, sl->mid, token, sl->sock, sl->seq, now);
    if (sl->len == 0) { fprintf(stderr, "coap-load: request does not fit in %d bytes\n", MAX_PDU); exit(1); }
    if (r->o.non) {
        sl->state = SLOT_WAIT_NON;
        sl->deadline = now + ACK_TIMEOUT_NS * 2; /* NON: no retransmission, wait a while */
    } else {
        sl->state = SLOT_WAIT_ACK;
        sl->timeout = (uint64_t)((double)ACK_TIMEOUT_NS * random_factor());
        sl->deadline = now + sl->timeout;
    }
    r->active++;
    r->s.issued++;
    if (r->first_send == 0) r->first_send = now;
    transmit(r, sl);
}

/* Timers: retransmit or give up. Returns the earliest deadline still pending. */
static uint64_t check_timers(struct run *r, uint64_t now) {
    uint64_t earliest = UINT64_MAX;
    for (int i = 0; i < r->o.window; i++) {
        struct slot *sl = &r->slots[i];
        if (sl->state == SLOT_FREE) continue;
        if (sl->deadline <= now) {
            if (sl->state == SLOT_WAIT_ACK && sl->retransmits < r->o.max_retransmit) {
                sl->retransmits++;
                r->s.retransmissions++;
                sl->timeout *= 2;
                sl->deadline = now + sl->timeout;
                transmit(r, sl);
            } else {
                if (sl->state == SLOT_WAIT_ACK) r->s.timeouts++;
                else if (sl->state == SLOT_WAIT_SEPARATE) r->s.separate_timeouts++;
                else r->s.non_timeouts++;
                finish(r, i, now);
                continue;
            }
        }
        if (sl->deadline < earliest) earliest = sl->deadline;
    }
    return earliest;
}

static int find_by_mid(struct run *r, int sock, uint16_t mid) {
    for (int i = 0; i < r->o.window; i++) {
        struct slot *sl = &r->slots[i];
        if (sl->state != SLOT_FREE && sl->sock == sock && sl->mid == mid) return i;
    }
    return -1;
}

static int find_by_token(struct run *r, const uint8_t *token, size_t len) {
    uint32_t index;
    uint64_t seq;
    if (!decode_token(token, len, &index, &seq) || index >= (uint32_t)r->o.window) return -1;
    struct slot *sl = &r->slots[index];
    if (sl->state == SLOT_FREE || ((sl->seq - r->o.seq_base) & 0xFFFFFFFFFFFFULL) != seq) return -1;
    return (int)index;
}

static void send_empty_ack(struct run *r, int sock, uint16_t mid) {
    uint8_t ack[4] = { 0x60, 0x00, (uint8_t)(mid >> 8), (uint8_t)mid };
    if (send(r->fds[sock], ack, sizeof ack, MSG_DONTWAIT) < 0) r->s.send_errors++;
}

static void on_datagram(struct run *r, int sock, const uint8_t *d, size_t n, uint64_t now) {
    if (n < 4 || (d[0] >> 6) != 1) { r->s.malformed++; return; }
    int type = (d[0] >> 4) & 3;
    size_t tkl = d[0] & 0x0F;
    uint8_t code = d[1];
    uint16_t mid = (uint16_t)((d[2] << 8) | d[3]);
    if (tkl > 8 || 4 + tkl > n) { r->s.malformed++; return; }
    const uint8_t *token = d + 4;
    int index;
    switch (type) {
    case COAP_ACK:
        index = find_by_mid(r, sock, mid);
        if (index < 0 || r->slots[index].state != SLOT_WAIT_ACK) { r->s.unmatched++; return; }
        if (code == 0) {
            /* Empty ACK: the answer follows as a separate response. */
            r->s.empty_acks++;
            r->slots[index].state = SLOT_WAIT_SEPARATE;
            r->slots[index].deadline = now + (uint64_t)(r->o.separate_timeout * 1e9);
        } else {
            r->s.piggybacked++;
            answered(r, index, code, now);
        }
        return;
    case COAP_CON:
        /* A separate response: acknowledge it whether or not we still wait for it. */
        send_empty_ack(r, sock, mid);
        if (code == 0) { r->s.malformed++; return; } /* a CON ping; the ACK above is its answer */
        index = find_by_token(r, token, tkl);
        if (index < 0 || r->slots[index].sock != sock) { r->s.duplicate_separate++; return; }
        r->s.separate++;
        answered(r, index, code, now);
        return;
    case COAP_NON:
        index = find_by_token(r, token, tkl);
        if (index < 0 || r->slots[index].sock != sock) { r->s.unmatched++; return; }
        r->s.non_responses++;
        answered(r, index, code, now);
        return;
    case COAP_RST:
        index = find_by_mid(r, sock, mid);
        if (index < 0) { r->s.unmatched++; return; }
        r->s.rst++;
        finish(r, index, now);
        return;
    }
}

static void print_json(struct run *r, uint64_t end) {
    struct stats *s = &r->s;
    qsort(r->latency, r->latency_n, sizeof r->latency[0], cmp_u64);
    uint64_t ok = 0, client_err = 0, server_err = 0;
    for (int c = 0; c < 256; c++) {
        if ((c >> 5) == 2) ok += s->codes[c];
        else if ((c >> 5) == 4) client_err += s->codes[c];
        else if ((c >> 5) == 5) server_err += s->codes[c];
    }
    double sum = 0;
    for (uint64_t i = 0; i < r->latency_n; i++) sum += (double)r->latency[i];
    uint64_t begin = r->first_send ? r->first_send : r->start;
    uint64_t last = r->last_done > begin ? r->last_done : end;
    double elapsed = (double)(last - begin) / 1e9;
    printf("{\"mode\":\"%s\",\"rate_target\":%g,\"sockets\":%d,\"window\":%d,\"count_target\":%" PRIu64 ",",
           r->o.non ? "non" : "con", r->o.rate, r->o.sockets, r->o.window, r->o.count);
    printf("\"sent\":%" PRIu64 ",\"transmissions\":%" PRIu64 ",\"retransmissions\":%" PRIu64 ",\"completed\":%" PRIu64 ",",
           s->issued, s->transmissions, s->retransmissions, s->completed);
    printf("\"ok\":%" PRIu64 ",\"client_errors\":%" PRIu64 ",\"server_errors\":%" PRIu64 ",\"codes\":{", ok, client_err, server_err);
    bool first = true;
    for (int c = 0; c < 256; c++) {
        if (!s->codes[c]) continue;
        printf("%s\"%d.%02d\":%" PRIu64, first ? "" : ",", c >> 5, c & 31, s->codes[c]);
        first = false;
    }
    printf("},\"piggybacked\":%" PRIu64 ",\"empty_acks\":%" PRIu64 ",\"separate\":%" PRIu64 ",\"non_responses\":%" PRIu64 ",\"rst\":%" PRIu64 ",",
           s->piggybacked, s->empty_acks, s->separate, s->non_responses, s->rst);
    printf("\"timeouts\":%" PRIu64 ",\"separate_timeouts\":%" PRIu64 ",\"non_timeouts\":%" PRIu64 ",\"unfinished\":%" PRIu64 ",",
           s->timeouts, s->separate_timeouts, s->non_timeouts, s->unfinished);
    printf("\"unmatched\":%" PRIu64 ",\"duplicate_separate\":%" PRIu64 ",\"malformed\":%" PRIu64 ",\"send_errors\":%" PRIu64 ",",
           s->unmatched, s->duplicate_separate, s->malformed, s->send_errors);
    printf("\"late_sends\":%" PRIu64 ",\"max_send_lag_us\":%.1f,\"window_full\":%" PRIu64 ",\"interrupted\":%s,",
           s->late_sends, (double)s->max_lag_ns / 1000.0, s->window_full, interrupted ? "true" : "false");
    printf("\"start_ns\":%" PRIu64 ",\"first_send_ns\":%" PRIu64 ",\"last_done_ns\":%" PRIu64 ",\"elapsed_s\":%.6f,\"ok_per_s\":%.1f,",
           r->start, r->first_send, r->last_done, elapsed, elapsed > 0 ? (double)ok / elapsed : 0.0);
    printf("\"latency_us\":{\"n\":%" PRIu64 ",\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f}}\n",
           r->latency_n, pct(r->latency, r->latency_n, 50), pct(r->latency, r->latency_n, 90),
           pct(r->latency, r->latency_n, 99), pct(r->latency, r->latency_n, 99.9),
           r->latency_n ? (double)r->latency[r->latency_n - 1] / 1000.0 : 0.0,
           r->latency_n ? sum / (double)r->latency_n / 1000.0 : 0.0);
    fflush(stdout);
}

int main(int argc, char **argv) {
    struct run r;
    memset(&r, 0, sizeof r);
    parse(argc, argv, &r.o);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    srandom((unsigned)now_ns());

    struct sockaddr_in server = { .sin_family = AF_INET, .sin_port = htons((uint16_t)r.o.port) };
    if (inet_pton(AF_INET, r.o.host, &server.sin_addr) != 1) { fprintf(stderr, "coap-load: bad --host\n"); return 2; }
    struct sockaddr_in local = { .sin_family = AF_INET, .sin_port = 0 };
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    r.fds = calloc((size_t)r.o.sockets, sizeof *r.fds);
    r.next_mid = calloc((size_t)r.o.sockets, sizeof *r.next_mid);
    for (int i = 0; i < r.o.sockets; i++) {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int size = 1 << 20;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        if (fd < 0 || bind(fd, (struct sockaddr *)&local, sizeof local) < 0 ||
            connect(fd, (struct sockaddr *)&server, sizeof server) < 0) {
            perror("coap-load: socket");
            return 1;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        r.fds[i] = fd;
        r.next_mid[i] = (uint16_t)random();
    }
    r.slots = calloc((size_t)r.o.window, sizeof *r.slots);
    r.free_list = calloc((size_t)r.o.window, sizeof *r.free_list);
    for (int i = r.o.window - 1; i >= 0; i--) r.free_list[r.free_count++] = i;
    r.latency_cap = r.o.count;
    r.latency = malloc(r.latency_cap * sizeof *r.latency);
    if (!r.slots || !r.free_list || !r.latency) { fprintf(stderr, "coap-load: out of memory\n"); return 1; }

    r.start = now_ns();
    /* Hard bounds: sending stops at count or duration; waiting stops after drain. */
    uint64_t send_until = r.o.duration > 0 ? r.start + (uint64_t)(r.o.duration * 1e9) : UINT64_MAX;
    uint64_t interval = r.o.rate > 0 ? (uint64_t)(1e9 / r.o.rate) : 0;
    uint64_t hard_end = UINT64_MAX;
    uint64_t next_scan = 0, earliest = UINT64_MAX;
    uint8_t buf[2048];
    struct epoll_event events[64];

    for (;;) {
        uint64_t now = now_ns();
        bool sending = !interrupted && r.s.issued < r.o.count && now < send_until;
        if (sending) {
            if (interval) {
                /* Paced: send everything due; a full window delays, and is counted. */
                uint64_t due;
                while (r.s.issued < r.o.count && (due = r.start + r.s.issued * interval) <= now) {
                    if (r.free_count == 0) { r.s.window_full++; break; }
                    uint64_t lag = now - due;
                    if (lag > 1000000) r.s.late_sends++;
                    if (lag > r.s.max_lag_ns) r.s.max_lag_ns = lag;
                    issue(&r, now);
                }
            } else {
                while (r.free_count > 0 && r.s.issued < r.o.count) issue(&r, now);
            }
        } else if (hard_end == UINT64_MAX) {
            hard_end = now + (uint64_t)(r.o.drain * 1e9);
        }
        if (!sending && (r.active == 0 || now >= hard_end)) break;

        if (now >= next_scan || earliest <= now) {
            earliest = check_timers(&r, now);
            next_scan = now + 1000000; /* timers are checked at most every millisecond */
        }

        /* Sleep until a datagram, the next paced send, or the next timer. */
        uint64_t wake = earliest < next_scan ? next_scan : earliest;
        if (sending && interval && r.free_count > 0) {
            uint64_t due = r.start + r.s.issued * interval;
            if (due < wake) wake = due;
        }
        if (!sending && hard_end < wake) wake = hard_end;
        if (sending && !interval && r.free_count > 0) wake = now;
        if (wake > now + 100000000ULL) wake = now + 100000000ULL;
        struct timespec timeout = { 0, 0 };
        if (wake > now) { uint64_t d = wake - now; timeout.tv_sec = (time_t)(d / 1000000000ULL); timeout.tv_nsec = (long)(d % 1000000000ULL); }
        int ready = epoll_pwait2(ep, events, 64, &timeout, NULL);
        if (ready < 0 && errno != EINTR) { perror("coap-load: epoll"); break; }
        for (int e = 0; e < ready; e++) {
            int sock = (int)events[e].data.u32;
            for (;;) {
                ssize_t n = recv(r.fds[sock], buf, sizeof buf, MSG_DONTWAIT);
                if (n < 0) break;
                on_datagram(&r, sock, buf, (size_t)n, now_ns());
            }
        }
    }
    uint64_t end = now_ns();
    r.s.unfinished = (uint64_t)r.active;
    print_json(&r, end);
    for (int i = 0; i < r.o.sockets; i++) close(r.fds[i]);
    return 0;
}
