// The origin filter: refuses a handshake whose Origin header is not on the allow list (403).
//
// Patterns: "https://app.example.com" (scheme, host and port must match), "app.example.com"
// (any scheme), "*.example.com" (any subdomain at any depth, not example.com itself),
// "https://*.example.com", "http://localhost:3000" and "*" (anything). Without a port a pattern
// matches only the scheme's default port (80 for http/ws, 443 for https/wss). Hosts compare
// case-insensitively. The opaque origin "null" never matches, except "*".
//
// A request without an Origin header comes from a non-browser client (browsers always send it
// on WebSocket handshakes), which the header cannot protect against anyway: it passes unless
// `require = true`.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "filters/filter.h"

namespace wsb::filters {

struct OriginPattern {
  bool any = false;    // "*"
  std::string scheme;  // lower case; empty = any scheme
  std::string host;    // lower case; for a wildcard the suffix with its dot, ".example.com"
  bool wildcard = false;
  std::optional<uint16_t> port;
};

// Parses one allow-list entry; nullopt when it is not a valid pattern.
std::optional<OriginPattern> parseOriginPattern(std::string_view text);
// Whether an Origin header value matches the pattern.
bool originMatches(const OriginPattern& pattern, std::string_view origin);

// Reads [filter.NAME] with type = "origin".
FactoryPtr buildOriginFactory(const config::FilterSpec& spec, std::vector<std::string>* errors);

}  // namespace wsb::filters
