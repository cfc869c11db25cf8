// TLS context construction for listeners and clusters.
#include "proxy/tls.h"

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

namespace wsb::proxy {

std::string sslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown TLS error" : out;
}

std::string sslErrors(bufferevent* bev) {
  std::string out;
  while (unsigned long e = bufferevent_get_openssl_error(bev)) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

namespace {
SSL_CTX* newContext(const SSL_METHOD* method) {
  SSL_CTX* ctx = SSL_CTX_new(method);
  if (ctx == nullptr) return nullptr;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // Idle connections give their TLS read/write buffers back (about 34 KiB each otherwise).
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return ctx;
}
}  // namespace

SslCtxPtr makeServerContext(const std::string& cert_file, const std::string& key_file,
                            std::string* error) {
  SslCtxPtr ctx(newContext(TLS_server_method()), SslCtxDeleter{});
  if (!ctx) {
    *error = sslErrors();
    return nullptr;
  }
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1) {
    *error = cert_file + ": cannot load certificate: " + sslErrors();
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    *error = key_file + ": cannot load private key: " + sslErrors();
    return nullptr;
  }
  return ctx;
}

SslCtxPtr makeClientContext(const std::string& ca_file, bool verify, std::string* error) {
  SslCtxPtr ctx(newContext(TLS_client_method()), SslCtxDeleter{});
  if (!ctx) {
    *error = sslErrors();
    return nullptr;
  }
  if (verify) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    int ok = ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx.get())
                             : SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr);
    if (ok != 1) {
      *error = (ca_file.empty() ? std::string("system CA store") : ca_file) +
               ": cannot load CA certificates: " + sslErrors();
      return nullptr;
    }
  } else {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  }
  return ctx;
}

}  // namespace wsb::proxy
