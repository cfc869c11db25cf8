// HandshakeCounts: a fixed table of relaxed atomic counters, one fetch_add per accept and one
// fetch_sub per handshake end.
#include "proxy/handshake_counts.h"

#include <netinet/in.h>
#include <openssl/rand.h>
#include <sys/socket.h>

#include <random>

namespace wsb::proxy {

namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;

uint64_t randomSeed() {
  uint64_t seed = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&seed), sizeof seed) == 1) return seed;
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

// FNV-1a from a secret offset basis, then MurmurHash3's finaliser so that every input bit
// reaches the low bits the table index takes.
uint64_t keyedHash(uint64_t seed, std::string_view a, std::string_view b) {
  uint64_t h = seed;
  auto eat = [&h](std::string_view bytes) {
    for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ULL;
  };
  eat(a);
  h = (h ^ 0xff) * 0x100000001b3ULL;  // a separator: ("ab", "c") and ("a", "bc") differ
  eat(b);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}
}  // namespace

HandshakeSlot& HandshakeSlot::operator=(HandshakeSlot&& other) noexcept {
  if (this != &other) {
    release();
    count_ = other.count_;
    other.count_ = nullptr;
  }
  return *this;
}

void HandshakeSlot::release() {
  if (count_ == nullptr) return;
  count_->fetch_sub(1, kRelaxed);
  count_ = nullptr;
}

HandshakeCounts::HandshakeCounts() : HandshakeCounts(randomSeed()) {}

HandshakeCounts::HandshakeCounts(uint64_t seed)
    : seed_(seed), counters_(std::make_unique<std::atomic<uint32_t>[]>(kCounters)) {}

size_t HandshakeCounts::indexOf(std::string_view listener, std::string_view source) const {
  return keyedHash(seed_, listener, source) & (kCounters - 1);
}

std::optional<HandshakeSlot> HandshakeCounts::admit(std::string_view listener,
                                                    std::string_view source, uint32_t cap) {
  if (cap == 0 || source.empty()) return HandshakeSlot();
  std::atomic<uint32_t>& counter = counters_[indexOf(listener, source)];
  // Add first, then look: two workers admitting the same source at once cannot both pass the
  // last place (the one that went over gives it back).
  if (counter.fetch_add(1, kRelaxed) >= cap) {
    counter.fetch_sub(1, kRelaxed);
    return std::nullopt;
  }
  return HandshakeSlot(&counter);
}

uint32_t HandshakeCounts::count(std::string_view listener, std::string_view source) const {
  return counters_[indexOf(listener, source)].load(kRelaxed);
}

std::string_view sourceKey(const sockaddr* addr) {
  if (addr->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(addr);
    return {reinterpret_cast<const char*>(&v4->sin_addr), 4};
  }
  if (addr->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(addr);
    const char* bytes = reinterpret_cast<const char*>(&v6->sin6_addr);
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) return {bytes + 12, 4};
    return {bytes, 8};
  }
  return {};
}

}  // namespace wsb::proxy
