// Connections still in their HTTP handshake (accepted, first request not yet complete), counted
// by listener and client address across every worker: the `[[listener]] max_handshakes_per_ip`
// cap that keeps one source from taking every descriptor with requests it never finishes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

struct sockaddr;

namespace wsb::proxy {

// One connection's place in a HandshakeCounts slot; gives it back when released or destroyed.
// Empty (holds nothing) when the listener has no cap.
class HandshakeSlot {
 public:
  HandshakeSlot() = default;
  explicit HandshakeSlot(std::atomic<uint32_t>* count) : count_(count) {}
  HandshakeSlot(HandshakeSlot&& other) noexcept : count_(other.count_) { other.count_ = nullptr; }
  HandshakeSlot& operator=(HandshakeSlot&& other) noexcept;
  HandshakeSlot(const HandshakeSlot&) = delete;
  HandshakeSlot& operator=(const HandshakeSlot&) = delete;
  ~HandshakeSlot() { release(); }

  // The handshake is over (request complete, or the connection ended); later calls do nothing.
  void release();
  bool held() const { return count_ != nullptr; }

 private:
  std::atomic<uint32_t>* count_ = nullptr;
};

// Why one table shared by the workers rather than a count per worker: SO_REUSEPORT spreads one
// source's connections over the workers by a hash of the 4-tuple, so a per-worker count would
// have to enforce cap / workers on each, and with many workers a legitimate source with a few
// handshakes in flight would be refused whenever two of them landed on the same worker. The
// shared table holds relaxed atomics: one fetch_add at accept and one fetch_sub at the end of
// the handshake, no lock, and the workers meet on a cache line only when they take connections
// from the same source. No ordering with other memory is needed: the count is the only datum.
//
// The table is a fixed array of counters indexed by a keyed hash of (listener name, address),
// never resized and never freed while the process runs, so a HandshakeSlot stays valid across
// reloads. Two sources whose keys land in the same counter share its count: with 65,536
// counters and a per-process random seed, a source collides with one busy attacker with
// probability 1/65,536, and an attacker cannot choose addresses that land on a victim's counter
// without first probing the table with many addresses of its own. The hash is not a
// cryptographic PRF; that is the strength claimed.
class HandshakeCounts {
 public:
  static constexpr size_t kCounters = 1 << 16;

  HandshakeCounts();                        // seeded from the OS's random source
  explicit HandshakeCounts(uint64_t seed);  // deterministic, for tests
  HandshakeCounts(const HandshakeCounts&) = delete;
  HandshakeCounts& operator=(const HandshakeCounts&) = delete;

  // Counts a new connection from `source` (see sourceKey) on `listener`: a slot when the source
  // has fewer than `cap` connections in the handshake there (an empty one when `cap` is 0: not
  // counted), nullopt when it has `cap` already (refuse the connection).
  std::optional<HandshakeSlot> admit(std::string_view listener, std::string_view source,
                                     uint32_t cap);
  // Connections counted now for `source` on `listener` (and any key sharing its counter).
  uint32_t count(std::string_view listener, std::string_view source) const;

 private:
  size_t indexOf(std::string_view listener, std::string_view source) const;

  uint64_t seed_;
  std::unique_ptr<std::atomic<uint32_t>[]> counters_;
};

// The bytes a client address is counted by: the 4 bytes of an IPv4 address, and the first 8
// (the /64) of an IPv6 one, since one host or one site is routinely handed a whole /64 and a
// per-address cap would not bind it. An IPv4-mapped IPv6 address counts as its IPv4 address.
// Empty for other families (not counted).
std::string_view sourceKey(const sockaddr* addr);

}  // namespace wsb::proxy
