// Text forms of the small config value types: printing them, and parsing durations, sizes and
// addresses as the config file writes them.
#include "config/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cctype>
#include <limits>

#include "config/loader.h"

namespace wsb::config {

std::string SourcePos::str() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string Address::str() const {
  // A colon in the host means IPv6, which needs brackets to keep the port apart.
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

bool isLoopbackHost(std::string_view host) {
  std::string h(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  std::string folded = h;
  for (char& c : folded) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (folded == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isAlnum(char c) { return isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// "12" or "1.5" scaled by `unit`, exactly: nullopt when the result is not a whole number of
// units or does not fit. Consumes the number from the front of `text`.
std::optional<uint64_t> scaledNumber(std::string_view& text, uint64_t unit_numerator) {
  constexpr uint64_t kMax = std::numeric_limits<int64_t>::max();  // fits Duration::rep too
  size_t i = 0;
  uint64_t whole = 0;
  while (i < text.size() && isDigit(text[i])) {
    uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (whole > (kMax - digit) / 10) return std::nullopt;
    whole = whole * 10 + digit;
    ++i;
  }
  if (i == 0) return std::nullopt;
  uint64_t fraction = 0;
  uint64_t fraction_scale = 1;
  if (i < text.size() && text[i] == '.') {
    size_t begin = ++i;
    while (i < text.size() && isDigit(text[i])) {
      // Digits beyond 1e-12 of a unit cannot matter for ms or bytes unless nonzero.
      if (fraction_scale >= 1000000000000ULL) {
        if (text[i] != '0') return std::nullopt;
      } else {
        fraction = fraction * 10 + static_cast<uint64_t>(text[i] - '0');
        fraction_scale *= 10;
      }
      ++i;
    }
    if (i == begin) return std::nullopt;
  }
  text.remove_prefix(i);
  if (whole > kMax / unit_numerator) return std::nullopt;
  uint64_t total = whole * unit_numerator;
  if (fraction != 0) {
    // unit <= 2^40 and fraction < 1e12 could overflow, so split the product.
    unsigned __int128 part = static_cast<unsigned __int128>(fraction) * unit_numerator;
    if (part % fraction_scale != 0) return std::nullopt;
    uint64_t add = static_cast<uint64_t>(part / fraction_scale);
    if (add > kMax - total) return std::nullopt;
    total += add;
  }
  return total;
}

}  // namespace

std::optional<Duration> parseDuration(std::string_view text) {
  if (text == "0") return Duration{0};
  struct Unit {
    std::string_view name;
    uint64_t ms;
  };
  // "ms" before "m" so the longer suffix wins.
  static constexpr Unit kUnits[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
  uint64_t total = 0;
  if (text.empty()) return std::nullopt;
  while (!text.empty()) {
    // Scan the unit first: the number must be scaled by it exactly.
    size_t digits = 0;
    while (digits < text.size() && (isDigit(text[digits]) || text[digits] == '.')) ++digits;
    std::string_view rest = text.substr(digits);
    const Unit* unit = nullptr;
    for (const Unit& candidate : kUnits) {
      if (rest.starts_with(candidate.name)) {
        unit = &candidate;
        break;
      }
    }
    if (unit == nullptr) return std::nullopt;
    std::string_view number = text.substr(0, digits);
    std::optional<uint64_t> ms = scaledNumber(number, unit->ms);
    if (!ms || !number.empty()) return std::nullopt;
    if (*ms > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - total)
      return std::nullopt;
    total += *ms;
    text.remove_prefix(digits + unit->name.size());
  }
  return Duration{static_cast<Duration::rep>(total)};
}

std::optional<uint64_t> parseSize(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && (isDigit(text[digits]) || text[digits] == '.')) ++digits;
  std::string_view unit = text.substr(digits);
  while (unit.starts_with(' ')) unit.remove_prefix(1);
  struct Unit {
    std::string_view name;
    uint64_t bytes;
  };
  static constexpr Unit kUnits[] = {{"", 1},
                                    {"B", 1},
                                    {"KB", 1000ULL},
                                    {"MB", 1000000ULL},
                                    {"GB", 1000000000ULL},
                                    {"TB", 1000000000000ULL},
                                    {"KiB", 1ULL << 10},
                                    {"MiB", 1ULL << 20},
                                    {"GiB", 1ULL << 30},
                                    {"TiB", 1ULL << 40}};
  for (const Unit& candidate : kUnits) {
    if (unit != candidate.name) continue;
    std::string_view number = text.substr(0, digits);
    std::optional<uint64_t> bytes = scaledNumber(number, candidate.bytes);
    if (!bytes || !number.empty()) return std::nullopt;
    return bytes;
  }
  return std::nullopt;
}

namespace {

// A dotted quad, each part 0..255 without leading zeros.
bool isIpv4(std::string_view host) {
  int parts = 0;
  while (true) {
    size_t end = host.find('.');
    std::string_view part = host.substr(0, end);
    if (part.empty() || part.size() > 3 || (part.size() > 1 && part[0] == '0')) return false;
    unsigned value = 0;
    for (char c : part) {
      if (!isDigit(c)) return false;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 255) return false;
    ++parts;
    if (end == std::string_view::npos) break;
    host.remove_prefix(end + 1);
  }
  return parts == 4;
}

// An IPv6 literal with an optional %zone (an interface name or number).
bool isIpv6(std::string_view host) {
  size_t zone = host.find('%');
  if (zone != std::string_view::npos) {
    std::string_view name = host.substr(zone + 1);
    if (name.empty()) return false;
    for (char c : name)
      if (!isAlnum(c) && c != '_' && c != '-' && c != '.') return false;
    host = host.substr(0, zone);
  }
  if (host.empty() || host.size() >= INET6_ADDRSTRLEN) return false;
  char literal[INET6_ADDRSTRLEN];
  host.copy(literal, host.size());
  literal[host.size()] = '\0';
  in6_addr parsed;
  return inet_pton(AF_INET6, literal, &parsed) == 1;
}

bool isHostname(std::string_view host) {
  if (host.empty() || host.size() > 253 || host.front() == '-' || host.front() == '.') return false;
  bool numeric = true;
  for (char c : host) {
    if (!isAlnum(c) && c != '-' && c != '.' && c != '_') return false;
    if (!isDigit(c) && c != '.') numeric = false;
  }
  return !numeric || isIpv4(host);  // "1.2.3" or "300.1.1.1" are typos, not names
}

}  // namespace

std::optional<Address> parseAddress(std::string_view text) {
  Address address;
  std::string_view port;
  if (text.starts_with('[')) {
    size_t close = text.find(']');
    if (close == std::string_view::npos || text.substr(close + 1, 1) != ":") return std::nullopt;
    std::string_view host = text.substr(1, close - 1);
    if (!isIpv6(host)) return std::nullopt;
    address.host = host;
    port = text.substr(close + 2);
  } else {
    size_t colon = text.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    std::string_view host = text.substr(0, colon);
    if (!isHostname(host)) return std::nullopt;
    address.host = host;
    port = text.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (char c : port) {
    if (!isDigit(c)) return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return std::nullopt;
  address.port = static_cast<uint16_t>(value);
  return address;
}

}  // namespace wsb::config
