#ifndef IOTGW_CMOSQUITTO_SHIM_H
#define IOTGW_CMOSQUITTO_SHIM_H
/* libmosquitto 2.0 (Debian 12). mqtt_protocol.h names the MQTT 5 properties
 * and reason codes. */
#include <mosquitto.h>
#include <sys/socket.h>
#include <mqtt_protocol.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>

/* Coalescing. libmosquitto hands each MQTT packet to SSL_write on its own,
 * so every PUBLISH became one TLS record and one send() (and a wake-up of
 * the broker); and OpenSSL read each PUBACK's record with two read()s, its
 * header and its body. Once the handshake is done, a buffering BIO goes
 * between the connection's SSL and its socket: the packets one
 * mosquitto_loop() call writes collect there, and the network loop flushes
 * them with one send() when the call returns. And read-ahead lets one read()
 * take every record that has arrived; records it buffers are invisible to
 * select(), so the network loop reads them itself (see
 * iotgw_mosq_unread_records). libmosquitto makes a new SSL for each
 * connection, so this is done again after each connect.
 *
 * Returns 1 when the buffer was put in place now, 0 when there is nothing to
 * do (no TLS, handshake not finished, already buffered), -1 on failure (the
 * connection then stays unbuffered, which is correct, only slower). */
static inline int iotgw_mosq_buffer_writes(struct mosquitto *mosq, int buffer_size) {
    SSL *ssl = (SSL *)mosquitto_ssl_get(mosq);
    if (ssl == NULL || !SSL_is_init_finished(ssl)) return 0;
    BIO *socket_bio = SSL_get_wbio(ssl);
    if (socket_bio == NULL || BIO_method_type(socket_bio) == BIO_TYPE_BUFFER) return 0;
    BIO *buffer = BIO_new(BIO_f_buffer());
    if (buffer == NULL) return -1;
    if (BIO_set_write_buffer_size(buffer, buffer_size) <= 0 || !BIO_up_ref(socket_bio)) {
        BIO_free(buffer);
        return -1;
    }
    BIO_push(buffer, socket_bio);
    /* Same rbio, new wbio: OpenSSL drops its write reference to the socket
     * BIO (the chain now holds the one taken above) and owns the buffer. */
    SSL_set_bio(ssl, SSL_get_rbio(ssl), buffer);
    SSL_set_read_ahead(ssl, 1);
    return 1;
}

/* Whether OpenSSL holds received bytes that select() cannot see. */
/* How far a connection attempt got, for a log line that says what stalled:
 * 0 no TCP connection yet, 1 TCP up but the TLS handshake unfinished,
 * 2 TLS up (so what is missing is the broker's CONNACK). */
static inline int iotgw_mosq_connect_stage(struct mosquitto *mosq) {
    int fd = mosquitto_socket(mosq);
    if (fd < 0) return 0;
    struct sockaddr_storage peer;
    socklen_t length = sizeof(peer);
    if (getpeername(fd, (struct sockaddr *)&peer, &length) != 0) return 0;
    SSL *ssl = (SSL *)mosquitto_ssl_get(mosq);
    if (ssl == NULL || !SSL_is_init_finished(ssl)) return 1;
    return 2;
}

static inline int iotgw_mosq_unread_records(struct mosquitto *mosq) {
    SSL *ssl = (SSL *)mosquitto_ssl_get(mosq);
    return ssl != NULL && SSL_has_pending(ssl);
}

/* Sends what the buffer holds. Returns 1 when it is empty (or there is no
 * buffer), 0 when the socket would block (call again once it is writable),
 * -1 on a socket error (libmosquitto will see it on its next read or write). */
static inline int iotgw_mosq_flush_writes(struct mosquitto *mosq) {
    SSL *ssl = (SSL *)mosquitto_ssl_get(mosq);
    if (ssl == NULL) return 1;
    BIO *bio = SSL_get_wbio(ssl);
    if (bio == NULL || BIO_method_type(bio) != BIO_TYPE_BUFFER || BIO_wpending(bio) == 0) return 1;
    if (BIO_flush(bio) > 0) return 1;
    return BIO_should_retry(bio) ? 0 : -1;
}
#endif
