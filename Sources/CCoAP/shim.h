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

/* COAP_IO_NO_WAIT is a cast macro that Swift does not import. */
static inline uint32_t iotgw_coap_io_no_wait(void) {
    return COAP_IO_NO_WAIT;
}

#endif
