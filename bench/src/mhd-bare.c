/*
 * mhd-bare: the baseline for bench/run's http-post scenario. A libmicrohttpd
 * server that reads each request's body and answers POST with 202 (empty
 * body), any other method with 405, and does no other work. It runs like the
 * gateway's HTTP ingress: internal polling thread, epoll, a pool of THREADS
 * threads (the gateway's default http.threads is 2) and the same connection
 * limits as the gateway's defaults.
 *
 *   mhd-bare 127.0.0.1:PORT [THREADS]
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

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3 || !strchr(argv[1], ':')) {
        fprintf(stderr, "usage: %s IPv4:PORT [THREADS]\n", argv[0]);
        return 2;
    }
    char host[64];
    snprintf(host, sizeof host, "%.*s", (int)(strchr(argv[1], ':') - argv[1]), argv[1]);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(strchr(argv[1], ':') + 1)) };
    if (inet_pton(AF_INET, host, &address.sin_addr) != 1) { fprintf(stderr, "mhd-bare: bad address\n"); return 2; }
    unsigned threads = argc == 3 ? (unsigned)atoi(argv[2]) : 2;

    accepted = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    not_allowed = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL); /* MHD's threads inherit it; main waits for it below */

    struct MHD_Daemon *daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        on_request, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&address,
        threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_CONNECTION_LIMIT, threads > 1 ? threads : 1024u,
        MHD_OPTION_CONNECTION_LIMIT, 1024u,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, 64u,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        MHD_OPTION_END);
    if (!daemon) { fprintf(stderr, "mhd-bare: cannot listen on %s\n", argv[1]); return 1; }
    printf("ready\n");
    fflush(stdout);
    int signo;
    sigwait(&stop, &signo);
    MHD_stop_daemon(daemon);
    MHD_destroy_response(accepted);
    MHD_destroy_response(not_allowed);
    return 0;
}
