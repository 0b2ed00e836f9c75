// OpenSSL (Debian's libssl-dev, 3.0), imported by the Redis module only: the TLS layer under the
// hiredis reader. The inline functions wrap OpenSSL's macros, which Swift cannot call.
#ifndef TASK_STATUS_BRIDGE_COPENSSL_SHIM_H
#define TASK_STATUS_BRIDGE_COPENSSL_SHIM_H

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

static inline long tsb_ssl_set_mode_partial_write(SSL *ssl) {
    return SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE);
}

#endif
