// OpenSSL contexts: one server context per TLS listener, one client context per TLS cluster.
#pragma once

#include <memory>
#include <string>

#include <event2/bufferevent.h>
#include <openssl/ssl.h>

namespace wsb::proxy {

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::shared_ptr<SSL_CTX>;

// TLS 1.2+, the certificate chain and key from PEM files. Null + `error` on failure.
SslCtxPtr makeServerContext(const std::string& cert_file, const std::string& key_file,
                            std::string* error);
// TLS 1.2+; verifies the peer against `ca_file` (or the system store when empty) unless
// `verify` is false.
SslCtxPtr makeClientContext(const std::string& ca_file, bool verify, std::string* error);

// The OpenSSL error queue as one line (and cleared).
std::string sslErrors();
// The OpenSSL errors libevent kept for one TLS bufferevent (it takes them off the thread's
// queue), as one line, cleared; empty when there are none (a plain socket error or EOF).
std::string sslErrors(bufferevent* bev);

}  // namespace wsb::proxy
