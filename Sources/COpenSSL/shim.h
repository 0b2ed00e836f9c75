// OpenSSL (Debian's libssl-dev, 3.0), imported by the Redis module only: the TLS layer under the
// hiredis reader. The inline functions wrap OpenSSL's macros, which Swift cannot call, and give
// each TLS session a socket BIO that never raises SIGPIPE.
#ifndef TASK_STATUS_BRIDGE_COPENSSL_SHIM_H
#define TASK_STATUS_BRIDGE_COPENSSL_SHIM_H

#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static inline long tsb_ssl_ctx_set_min_tls12(SSL_CTX *context) {
    return SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
}

static inline long tsb_ssl_set_sni(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}

static inline long tsb_ssl_ctx_set_mode_partial_write(SSL_CTX *context) {
    return SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

// OpenSSL's own socket BIO writes with write(2), which raises SIGPIPE on a reset connection; this
// one sends with MSG_NOSIGNAL. A blocking socket's timeout (SO_RCVTIMEO, SO_SNDTIMEO) surfaces as
// a retry, which the caller reads as "timed out".
static inline int tsb_bio_write(BIO *bio, const char *data, int length) {
    int fd = (int)(intptr_t)BIO_get_data(bio);
    ssize_t written;
    do {
        written = send(fd, data, (size_t)length, MSG_NOSIGNAL);
    } while (written < 0 && errno == EINTR);
    BIO_clear_retry_flags(bio);
    if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_write(bio);
    return (int)written;
}

static inline int tsb_bio_read(BIO *bio, char *data, int length) {
    int fd = (int)(intptr_t)BIO_get_data(bio);
    ssize_t received;
    do {
        received = recv(fd, data, (size_t)length, 0);
    } while (received < 0 && errno == EINTR);
    BIO_clear_retry_flags(bio);
    if (received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_read(bio);
    return (int)received;
}

static inline long tsb_bio_ctrl(BIO *bio, int command, long number, void *pointer) {
    (void)bio;
    (void)number;
    (void)pointer;
    // FLUSH: sends are not buffered. Everything else (EOF checks, pending bytes) is unknown here.
    return command == BIO_CTRL_FLUSH ? 1 : 0;
}

static inline int tsb_bio_create(BIO *bio) {
    BIO_set_init(bio, 1);
    return 1;
}

/// The method table of ``tsb_bio_new_socket``; made once by the caller and kept for the process.
static inline BIO_METHOD *tsb_bio_method_new(void) {
    BIO_METHOD *method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "task-status-bridge socket");
    if (method == NULL) return NULL;
    BIO_meth_set_write(method, tsb_bio_write);
    BIO_meth_set_read(method, tsb_bio_read);
    BIO_meth_set_ctrl(method, tsb_bio_ctrl);
    BIO_meth_set_create(method, tsb_bio_create);
    return method;
}

/// A BIO over a socket that the caller keeps owning (the BIO never closes it).
static inline BIO *tsb_bio_new_socket(BIO_METHOD *method, int fd) {
    BIO *bio = BIO_new(method);
    if (bio != NULL) BIO_set_data(bio, (void *)(intptr_t)fd);
    return bio;
}

#endif
