/*
 * coap-bare: the baseline for bench/run's coap-con scenario. A libcoap 4.3.1
 * server that answers every POST, on any path, with 2.04 at once (piggybacked
 * on the ACK for a CON request) and does no other work.
 *
 *   coap-bare 127.0.0.1:PORT
 *
 * Prints "ready" on stdout once it listens; SIGTERM or SIGINT stops it.
 */
#include <coap3/coap.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t quit = 0;
static void on_signal(int signo) { (void)signo; quit = 1; }

static void post_handler(coap_resource_t *resource, coap_session_t *session, const coap_pdu_t *request,
                         const coap_string_t *query, coap_pdu_t *response) {
    (void)resource; (void)session; (void)request; (void)query;
    coap_pdu_set_code(response, COAP_RESPONSE_CODE_CHANGED);
}

int main(int argc, char **argv) {
    if (argc != 2 || !strchr(argv[1], ':')) {
        fprintf(stderr, "usage: %s IPv4:PORT\n", argv[0]);
        return 2;
    }
    char host[64];
    snprintf(host, sizeof host, "%.*s", (int)(strchr(argv[1], ':') - argv[1]), argv[1]);
    int port = atoi(strchr(argv[1], ':') + 1);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: the wait in coap_io_process returns */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    coap_startup();
    coap_set_log_level(LOG_WARNING);
    coap_context_t *context = coap_new_context(NULL);
    coap_address_t address;
    coap_address_init(&address);
    address.addr.sin.sin_family = AF_INET;
    address.addr.sin.sin_port = htons((uint16_t)port);
    if (!context || inet_pton(AF_INET, host, &address.addr.sin.sin_addr) != 1 ||
        !coap_new_endpoint(context, &address, COAP_PROTO_UDP)) {
        fprintf(stderr, "coap-bare: cannot listen on %s\n", argv[1]);
        return 1;
    }
    /* Every path: the unknown-resource handler, with POST registered on it. */
    coap_resource_t *resource = coap_resource_unknown_init2(post_handler, 0);
    coap_register_request_handler(resource, COAP_REQUEST_POST, post_handler);
    coap_add_resource(context, resource);

    printf("ready\n");
    fflush(stdout);
    while (!quit) {
        if (coap_io_process(context, 1000) < 0) break;
    }
    coap_free_context(context);
    coap_cleanup();
    return 0;
}
