/*
 * mhd-bare: the baseline for bench/run's http-post scenario. A libmicrohttpd
 * server that reads each request's body and answers POST with 202 (empty
 * body), any other method with 405, and does no other work. It runs like the
 * gateway's HTTP ingress: internal polling thread, epoll, a pool of THREADS
 * threads (the gateway's default http.threads is 2) and the same connection
 * limits as the gateway's defaults.
 *
 * With --cert and --key (PEM files) it speaks HTTPS instead (MHD_USE_TLS,
 * libmicrohttpd's GnuTLS, its default priorities): the baseline of the
 * https-post scenario. It reads no Authorization header; the load sends the
 * same requests, bearer tokens included, to it and to the gateway.
 *
 *   mhd-bare 127.0.0.1:PORT [THREADS] [--cert server.pem --key server.key]
 *
 * Prints "ready" on stdout once it listens; SIGTERM or SIGINT stops it.
 */
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct MHD_Response *accepted;
static struct MHD_Response *not_allowed;
static int request_marker;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **request_state) {
    (void)cls; (void)url; (void)version; (void)upload_data;
    if (*request_state == NULL) {          /* headers only: ask for the body */
        *request_state = &request_marker;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {          /* a piece of the body: discard it */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_POST) == 0) return MHD_queue_response(connection, 202, accepted);
    return MHD_queue_response(connection, MHD_HTTP_METHOD_NOT_ALLOWED, not_allowed);
}

/* The whole of a (small) PEM file, NUL-terminated, as MHD_OPTION_HTTPS_MEM_* want it. */
static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    size_t cap = 1 << 16, n;
    char *text = malloc(cap);
    if (!text) exit(1);
    n = fread(text, 1, cap - 1, f);
    fclose(f);
    text[n] = 0;
    return text;
}

static void usage(const char *argv0) {
    fprintf(stderr, "usage: %s IPv4:PORT [THREADS] [--cert PEM --key PEM]\n", argv0);
    exit(2);
}

int main(int argc, char **argv) {
    const char *listen = NULL, *cert_file = NULL, *key_file = NULL;
    unsigned threads = 2;
    int positional = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc) cert_file = argv[++i];
        else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) key_file = argv[++i];
        else if (argv[i][0] == '-') usage(argv[0]);
        else if (positional == 0) { listen = argv[i]; positional++; }
        else if (positional == 1) { threads = (unsigned)atoi(argv[i]); positional++; }
        else usage(argv[0]);
    }
    if (!listen || !strchr(listen, ':') || threads < 1 || (!cert_file) != (!key_file)) usage(argv[0]);
    char host[64];
    snprintf(host, sizeof host, "%.*s", (int)(strchr(listen, ':') - listen), listen);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(strchr(listen, ':') + 1)) };
    if (inet_pton(AF_INET, host, &address.sin_addr) != 1) { fprintf(stderr, "mhd-bare: bad address\n"); return 2; }
    char *cert = cert_file ? read_file(cert_file) : NULL;
    char *key = key_file ? read_file(key_file) : NULL;

    accepted = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    not_allowed = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL); /* MHD's threads inherit it; main waits for it below */

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (cert ? MHD_USE_TLS : 0);
    /* The TLS options last: with a NULL key MHD_OPTION_END comes first and ends the list. */
    struct MHD_Daemon *daemon = MHD_start_daemon(
        flags, 0, NULL, NULL,
        on_request, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&address,
        threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_CONNECTION_LIMIT, threads > 1 ? threads : 1024u,
        MHD_OPTION_CONNECTION_LIMIT, 1024u,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, 64u,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cert,
        MHD_OPTION_HTTPS_MEM_KEY, key,
        MHD_OPTION_END);
    if (!daemon) { fprintf(stderr, "mhd-bare: cannot listen on %s%s\n", listen, cert ? " (TLS)" : ""); return 1; }
    printf("ready\n");
    fflush(stdout);
    int signo;
    sigwait(&stop, &signo);
    MHD_stop_daemon(daemon);
    MHD_destroy_response(accepted);
    MHD_destroy_response(not_allowed);
    return 0;
}
