#ifndef IOTGW_CCOAP_SHIM_H
#define IOTGW_CCOAP_SHIM_H
/* libcoap 4.3.1 (Debian 12) built against OpenSSL. Everything here imports
 * directly; the only helpers are for function-like macros Swift cannot see. */
#include <coap3/coap.h>
/* Swift's Glibc module leaves out sys/eventfd.h; the CoAP loop is woken through one. */
#include <sys/eventfd.h>

/* COAP_RESPONSE_CODE is a function-like macro. */
static inline coap_pdu_code_t iotgw_coap_response_code(unsigned int n) {
    return (coap_pdu_code_t)COAP_RESPONSE_CODE(n);
}

/* The CoAP loop drives libcoap's epoll set itself (coap_io_process would
 * re-arm libcoap's timer and wait once per datagram). epoll_event is a
 * packed struct, so it stays on this side. */
#include <sys/epoll.h>

/* Handles what is ready in libcoap's epoll set without waiting (about one
 * datagram per ready socket). Returns how many ready entries were sockets,
 * not libcoap's timer: 0 means nothing more to read now. */
static inline int iotgw_coap_io_drain_once(coap_context_t *context) {
    struct epoll_event events[16];
    int count = epoll_wait(coap_context_get_coap_fd(context), events, 16, 0);
    if (count <= 0) return 0;
    int sockets = 0;
    for (int i = 0; i < count; i++) {
        if (events[i].data.ptr != NULL) sockets++;
    }
    coap_io_do_epoll(context, events, (size_t)count);
    return sockets;
}

/* Runs libcoap's timed work (retransmissions, session expiry), re-arms its
 * timer, and returns the milliseconds until it is next due (0: nothing due). */
static inline unsigned int iotgw_coap_io_timers(coap_context_t *context) {
    coap_tick_t now;
    coap_ticks(&now);
    return coap_io_prepare_epoll(context, now);
}

#endif
