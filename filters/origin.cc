// The origin filter: allow-list patterns parsed once at config load, matched without allocating.
#include "filters/origin.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <memory>

#include "codec/http1.h"
#include "config/table_reader.h"

namespace wsb::filters {

namespace {

// The pieces of "scheme://host:port"; views into the text.
struct OriginParts {
  std::string_view scheme;  // empty when the text has none
  std::string_view host;    // IPv6 hosts keep their brackets
  std::optional<uint16_t> port;
};

bool isSchemeChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
}

bool isHostChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

std::optional<OriginParts> splitOrigin(std::string_view text, bool scheme_required) {
  OriginParts parts;
  std::string_view rest = text;
  if (size_t sep = text.find("://"); sep != std::string_view::npos) {
    parts.scheme = text.substr(0, sep);
    if (parts.scheme.empty() || !std::isalpha(static_cast<unsigned char>(parts.scheme[0])) ||
        !std::all_of(parts.scheme.begin(), parts.scheme.end(), isSchemeChar))
      return std::nullopt;
    rest = text.substr(sep + 3);
  } else if (scheme_required) {
    return std::nullopt;
  }
  std::string_view after;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos || close == 1) return std::nullopt;
    std::string_view inside = rest.substr(1, close - 1);
    if (!std::all_of(inside.begin(), inside.end(), [](char c) {
          return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
        }))
      return std::nullopt;
    parts.host = rest.substr(0, close + 1);
    after = rest.substr(close + 1);
  } else {
    size_t colon = rest.find(':');
    parts.host = rest.substr(0, colon);
    after = colon == std::string_view::npos ? std::string_view() : rest.substr(colon);
    if (parts.host.empty() || !std::all_of(parts.host.begin(), parts.host.end(), isHostChar))
      return std::nullopt;
  }
  if (!after.empty()) {
    if (after[0] != ':' || after.size() < 2 || after.size() > 6) return std::nullopt;
    unsigned port = 0;
    auto [end, ec] = std::from_chars(after.data() + 1, after.data() + after.size(), port);
    if (ec != std::errc() || end != after.data() + after.size() || port == 0 || port > 65535)
      return std::nullopt;
    parts.port = static_cast<uint16_t>(port);
  }
  return parts;
}

std::optional<uint16_t> defaultPort(std::string_view scheme) {
  if (http::iequals(scheme, "http") || http::iequals(scheme, "ws")) return 80;
  if (http::iequals(scheme, "https") || http::iequals(scheme, "wss")) return 443;
  return std::nullopt;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class OriginFilter final : public Filter {
 public:
  OriginFilter(std::shared_ptr<const std::vector<OriginPattern>> allow, bool require,
               FilterCallbacks& callbacks)
      : allow_(std::move(allow)), require_(require), callbacks_(callbacks) {}

  Status onHandshake(HandshakeContext& context) override {
    const std::string* origin = context.request.header("Origin");
    if (origin == nullptr ? !require_ : allowed(*origin)) return Status::Continue;
    callbacks_.reject(403, "origin not allowed");
    return Status::Stop;
  }

 private:
  bool allowed(std::string_view origin) const {
    return std::any_of(allow_->begin(), allow_->end(),
                       [&](const OriginPattern& p) { return originMatches(p, origin); });
  }

  std::shared_ptr<const std::vector<OriginPattern>> allow_;
  bool require_;
  FilterCallbacks& callbacks_;
};

class OriginFactory final : public FilterFactory {
 public:
  OriginFactory(std::vector<OriginPattern> allow, bool require)
      : allow_(std::make_shared<const std::vector<OriginPattern>>(std::move(allow))),
        require_(require) {}
  std::unique_ptr<Filter> create(FilterCallbacks& callbacks) const override {
    return std::make_unique<OriginFilter>(allow_, require_, callbacks);
  }

 private:
  std::shared_ptr<const std::vector<OriginPattern>> allow_;
  bool require_;
};

}  // namespace

std::optional<OriginPattern> parseOriginPattern(std::string_view text) {
  OriginPattern pattern;
  if (text == "*") {
    pattern.any = true;
    return pattern;
  }
  // Take the wildcard off so that the rest parses as an ordinary origin.
  std::string plain(text);
  size_t host_begin = plain.find("://");
  host_begin = host_begin == std::string::npos ? 0 : host_begin + 3;
  if (plain.compare(host_begin, 2, "*.") == 0) {
    pattern.wildcard = true;
    plain.erase(host_begin, 1);  // "*.example.com" -> ".example.com"
  }
  std::optional<OriginParts> parts = splitOrigin(plain, false);
  if (!parts) return std::nullopt;
  std::string_view host = parts->host;
  if (pattern.wildcard ? host.size() < 2 || host[1] == '.' : host[0] == '.') return std::nullopt;
  if (host.back() == '.') return std::nullopt;
  pattern.scheme = lower(parts->scheme);
  pattern.host = lower(host);
  pattern.port = parts->port;
  return pattern;
}

bool originMatches(const OriginPattern& pattern, std::string_view origin) {
  if (pattern.any) return true;
  std::optional<OriginParts> parts = splitOrigin(origin, true);
  if (!parts) return false;
  if (!pattern.scheme.empty() && !http::iequals(pattern.scheme, parts->scheme)) return false;
  std::optional<uint16_t> default_port = defaultPort(parts->scheme);
  if (pattern.port) {
    if (parts->port.value_or(default_port.value_or(0)) != *pattern.port) return false;
  } else if (parts->port && parts->port != default_port) {
    return false;
  }
  std::string_view host = parts->host;
  if (!pattern.wildcard) return http::iequals(host, pattern.host);
  return host.size() > pattern.host.size() &&
         http::iequals(host.substr(host.size() - pattern.host.size()), pattern.host);
}

FactoryPtr buildOriginFactory(const config::FilterSpec& spec, std::vector<std::string>* errors) {
  size_t before = errors->size();
  config::TableReader reader(*spec.table, "[filter." + spec.name + "]", spec.pos.file, errors);
  reader.markRead("type");
  std::vector<const toml::node*> nodes;
  std::vector<std::string> allow = reader.strings("allow", &nodes);
  if (!reader.has("allow"))
    reader.error(nullptr, "missing required key 'allow' in " + reader.context());
  std::vector<OriginPattern> patterns;
  for (size_t i = 0; i < allow.size(); ++i) {
    if (std::optional<OriginPattern> pattern = parseOriginPattern(allow[i])) {
      patterns.push_back(std::move(*pattern));
    } else {
      reader.error(nodes[i], "'" + allow[i] +
                                 "' is not an origin pattern (such as "
                                 "\"https://app.example.com\", \"*.example.com\" or \"*\")");
    }
  }
  bool require = reader.boolean("require", false);
  reader.finish();
  if (errors->size() != before) return nullptr;
  return std::make_shared<OriginFactory>(std::move(patterns), require);
}

}  // namespace wsb::filters
