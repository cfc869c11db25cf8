// SidSigner: HMAC-signed endpoint choice inside the Engine.IO sid.
#include "proxy/sticky_sid.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>

namespace wsb::proxy {

namespace {
constexpr size_t kTagBytes = 4;
constexpr size_t kMacBytes = 8;
constexpr size_t kSuffixChars = 16;  // base64url of 12 bytes, no padding

const std::string& processKey() {
  static const std::string key = [] {
    std::string k(32, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(k.data()), 32) != 1) __builtin_trap();
    return k;
  }();
  return key;
}

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string encode12(const uint8_t* in) {
  std::string out;
  for (size_t i = 0; i < 12; i += 3) {
    uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8) | in[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  return out;
}

bool decode12(std::string_view in, uint8_t* out) {
  if (in.size() != kSuffixChars) return false;
  auto value = [](char c) -> int {
    const char* p = std::strchr(kAlphabet, c);
    return (c == '\0' || p == nullptr) ? -1 : static_cast<int>(p - kAlphabet);
  };
  for (size_t i = 0, o = 0; i < kSuffixChars; i += 4, o += 3) {
    uint32_t v = 0;
    for (size_t j = 0; j < 4; ++j) {
      int d = value(in[i + j]);
      if (d < 0) return false;
      v = (v << 6) | static_cast<uint32_t>(d);
    }
    out[o] = static_cast<uint8_t>(v >> 16);
    out[o + 1] = static_cast<uint8_t>(v >> 8);
    out[o + 2] = static_cast<uint8_t>(v);
  }
  return true;
}
}  // namespace

SidSigner::SidSigner(std::string_view key) : key_(key.empty() ? processKey() : std::string(key)) {}

uint32_t SidSigner::endpointTag(std::string_view host_port) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (char c : host_port) {
    h ^= static_cast<uint8_t>(c);
    h *= 16777619u;
  }
  return h;
}

void SidSigner::mac(uint32_t tag, std::string_view upstream_sid, uint8_t out[8]) const {
  std::string input(kTagBytes, '\0');
  for (size_t i = 0; i < kTagBytes; ++i) input[i] = static_cast<char>(tag >> (24 - 8 * i));
  input.append(upstream_sid);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest, &len);
  std::memcpy(out, digest, kMacBytes);
}

std::string SidSigner::sign(std::string_view upstream_sid, uint32_t endpoint_tag) const {
  uint8_t raw[kTagBytes + kMacBytes];
  for (size_t i = 0; i < kTagBytes; ++i) raw[i] = static_cast<uint8_t>(endpoint_tag >> (24 - 8 * i));
  mac(endpoint_tag, upstream_sid, raw + kTagBytes);
  std::string out(upstream_sid);
  out += '.';
  out += encode12(raw);
  return out;
}

std::optional<SidSigner::Opened> SidSigner::open(std::string_view client_sid) const {
  if (client_sid.size() < kSuffixChars + 2 || client_sid[client_sid.size() - kSuffixChars - 1] != '.') {
    return std::nullopt;
  }
  std::string_view upstream = client_sid.substr(0, client_sid.size() - kSuffixChars - 1);
  uint8_t raw[kTagBytes + kMacBytes];
  if (!decode12(client_sid.substr(client_sid.size() - kSuffixChars), raw)) return std::nullopt;
  uint32_t tag = 0;
  for (size_t i = 0; i < kTagBytes; ++i) tag = (tag << 8) | raw[i];
  uint8_t expected[kMacBytes];
  mac(tag, upstream, expected);
  if (CRYPTO_memcmp(expected, raw + kTagBytes, kMacBytes) != 0) return std::nullopt;
  return Opened{std::string(upstream), tag};
}

}  // namespace wsb::proxy
