// Sticky Socket.IO sessions without cookies: the Engine.IO sid handed to the client names the
// upstream endpoint and carries an HMAC, so any wsbridge instance with the same key routes every
// later request of the session to the same endpoint, and no client can forge a route.
//
// client sid = <upstream sid> "." base64url(endpoint tag (4 bytes) || HMAC-SHA256 (8 bytes))
// where the tag is a hash of the endpoint's "host:port" and the MAC covers tag || upstream sid.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wsb::proxy {

class SidSigner {
 public:
  // An empty key means one random key for this process (shared by every route without one).
  explicit SidSigner(std::string_view key);

  static uint32_t endpointTag(std::string_view host_port);

  std::string sign(std::string_view upstream_sid, uint32_t endpoint_tag) const;

  struct Opened {
    std::string upstream_sid;
    uint32_t endpoint_tag;
  };
  // Nullopt when the sid is malformed or its MAC does not verify.
  std::optional<Opened> open(std::string_view client_sid) const;

 private:
  void mac(uint32_t tag, std::string_view upstream_sid, uint8_t out[8]) const;
  std::string key_;
};

}  // namespace wsb::proxy
