#ifndef IOTGW_CMICROHTTPD_SHIM_H
#define IOTGW_CMICROHTTPD_SHIM_H
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include <gnutls/gnutls.h>

/* A log sink Swift can implement: MHD's logger takes a va_list, which Swift
 * cannot format, so the trampoline below formats it first. */
typedef void (*iotgw_mhd_log_fn)(void *cls, const char *message);
struct iotgw_mhd_logger {
    iotgw_mhd_log_fn fn;
    void *cls;
};

static inline void iotgw_mhd_log_trampoline(void *cls, const char *fmt, va_list ap) {
    struct iotgw_mhd_logger *logger = (struct iotgw_mhd_logger *)cls;
    char buffer[512];
    vsnprintf(buffer, sizeof buffer, fmt, ap);
    logger->fn(logger->cls, buffer);
}

/* The unescape callback signature, named so Swift can pass a closure. */
typedef size_t (*iotgw_mhd_unescape_fn)(void *cls, struct MHD_Connection *c, char *s);

/* Limits that libmicrohttpd leaves unlimited by default. */
struct iotgw_mhd_limits {
    unsigned int thread_pool_size;
    unsigned int connection_limit;
    unsigned int per_ip_connection_limit;
    unsigned int connection_timeout;
    size_t connection_memory_limit;
    unsigned int listen_backlog;
};

/* What a TLS daemon adds (flag MHD_USE_TLS): PEM text, NUL-terminated, which
 * MHD keeps pointers to for the daemon's lifetime; trust_pem NULL: no client
 * certificates are asked for. notify runs when a connection opens and closes. */
struct iotgw_mhd_tls {
    const char *key_pem;
    const char *cert_pem;
    const char *trust_pem;
    MHD_NotifyConnectionCallback notify;
    void *notify_cls;
};

/* MHD_start_daemon is variadic, which Swift cannot call. tls: NULL for a
 * plain daemon; its options go in through MHD_OPTION_ARRAY, since a variadic
 * list cannot leave options out. */
static inline struct MHD_Daemon *iotgw_mhd_start(
    unsigned int flags,
    const struct sockaddr *address,
    MHD_AcceptPolicyCallback accept_policy, void *accept_policy_cls,
    MHD_AccessHandlerCallback handler, void *handler_cls,
    MHD_RequestCompletedCallback completed, void *completed_cls,
    iotgw_mhd_unescape_fn unescape, void *unescape_cls,
    struct iotgw_mhd_logger *logger,
    struct iotgw_mhd_limits limits,
    const struct iotgw_mhd_tls *tls)
{
    struct MHD_OptionItem tls_options[5];
    unsigned int count = 0;
    if (tls != NULL) {
        tls_options[count++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)tls->key_pem };
        tls_options[count++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)tls->cert_pem };
        if (tls->trust_pem != NULL) {
            tls_options[count++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0, (void *)tls->trust_pem };
        }
        tls_options[count++] = (struct MHD_OptionItem){
            MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)tls->notify, tls->notify_cls
        };
    }
    tls_options[count] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
    return MHD_start_daemon(
        flags, 0, accept_policy, accept_policy_cls, handler, handler_cls,
        /* First: MHD warns otherwise, and sends earlier messages to stderr. */
        MHD_OPTION_EXTERNAL_LOGGER, iotgw_mhd_log_trampoline, (void *)logger,
        MHD_OPTION_SOCK_ADDR, address,
        MHD_OPTION_NOTIFY_COMPLETED, completed, completed_cls,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, unescape_cls,
        /* A pool of 0 or 1 means none, yet MHD logs a warning for either:
         * then repeat a harmless option in its place. */
        limits.thread_pool_size > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_CONNECTION_LIMIT,
        limits.thread_pool_size > 1 ? limits.thread_pool_size : limits.connection_limit,
        MHD_OPTION_CONNECTION_LIMIT, limits.connection_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, limits.per_ip_connection_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, limits.connection_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, limits.connection_memory_limit,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, limits.listen_backlog,
        MHD_OPTION_ARRAY, tls_options,
        MHD_OPTION_END);
}

/* MHD_get_connection_info is variadic. */
static inline const struct sockaddr *iotgw_mhd_client_address(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return info == NULL ? NULL : info->client_addr;
}

/* MHD_get_connection_info is variadic; NULL on a plain daemon. */
static inline gnutls_session_t iotgw_mhd_tls_session(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    return info == NULL ? NULL : (gnutls_session_t)info->tls_session;
}

/* MHD_get_connection_info is variadic; what the notify callback stored. */
static inline void *iotgw_mhd_socket_context(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info == NULL ? NULL : info->socket_context;
}

/* MHD_get_daemon_info is variadic; the bound port matters when listening on port 0. */
static inline uint16_t iotgw_mhd_bound_port(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info == NULL ? 0 : info->port;
}

#endif
