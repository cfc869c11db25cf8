// HandshakeCounts: the per-source cap on connections in the handshake, its slots' release on
// every path (explicit, destruction, move), and the source key of each address family.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "proxy/handshake_counts.h"

using namespace wsb::proxy;

namespace {

constexpr uint64_t kSeed = 0x5eed;

sockaddr_in v4(const char* ip) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

sockaddr_in6 v6(const char* ip) {
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  inet_pton(AF_INET6, ip, &a.sin6_addr);
  return a;
}

template <typename Addr>
std::string keyOf(const Addr& addr) {
  return std::string(sourceKey(reinterpret_cast<const sockaddr*>(&addr)));
}

}  // namespace

TEST_CASE("a source gets cap slots on a listener and the next is refused until one is released") {
  HandshakeCounts counts(kSeed);
  const std::string ip = keyOf(v4("127.0.0.1"));
  std::vector<HandshakeSlot> held;
  for (int i = 0; i < 3; ++i) {
    std::optional<HandshakeSlot> slot = counts.admit("public", ip, 3);
    REQUIRE(slot);
    CHECK(slot->held());
    held.push_back(std::move(*slot));
  }
  CHECK(counts.count("public", ip) == 3);
  CHECK_FALSE(counts.admit("public", ip, 3));
  CHECK(counts.count("public", ip) == 3);  // a refusal leaves the count as it was

  held[1].release();
  CHECK(counts.count("public", ip) == 2);
  held[1].release();  // a second release does nothing
  CHECK(counts.count("public", ip) == 2);
  std::optional<HandshakeSlot> again = counts.admit("public", ip, 3);
  REQUIRE(again);
  CHECK(counts.count("public", ip) == 3);
}

TEST_CASE("a slot is given back when destroyed, and once only when moved") {
  HandshakeCounts counts(kSeed);
  const std::string ip = keyOf(v4("10.1.2.3"));
  {
    std::optional<HandshakeSlot> slot = counts.admit("public", ip, 2);
    REQUIRE(slot);
    HandshakeSlot moved(std::move(*slot));
    CHECK_FALSE(slot->held());
    CHECK(moved.held());
    HandshakeSlot assigned;
    assigned = std::move(moved);
    CHECK(counts.count("public", ip) == 1);
    slot.reset();  // the moved-from slot holds nothing to give back
    CHECK(counts.count("public", ip) == 1);
  }
  CHECK(counts.count("public", ip) == 0);

  // Assigning over a held slot gives back what it held.
  std::optional<HandshakeSlot> a = counts.admit("public", ip, 2);
  std::optional<HandshakeSlot> b = counts.admit("public", ip, 2);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(counts.count("public", ip) == 2);
  *a = std::move(*b);
  CHECK(counts.count("public", ip) == 1);
}

TEST_CASE("cap 0 counts nothing: every connection is admitted with an empty slot") {
  HandshakeCounts counts(kSeed);
  const std::string ip = keyOf(v4("127.0.0.1"));
  for (int i = 0; i < 1000; ++i) {
    std::optional<HandshakeSlot> slot = counts.admit("public", ip, 0);
    REQUIRE(slot);
    CHECK_FALSE(slot->held());
  }
  CHECK(counts.count("public", ip) == 0);
}

TEST_CASE("other sources and other listeners count apart") {
  HandshakeCounts counts(kSeed);
  const std::string a = keyOf(v4("127.0.0.1"));
  const std::string b = keyOf(v4("127.0.0.2"));
  std::optional<HandshakeSlot> full = counts.admit("public", a, 1);
  REQUIRE(full);
  CHECK_FALSE(counts.admit("public", a, 1));
  std::optional<HandshakeSlot> other_ip = counts.admit("public", b, 1);
  std::optional<HandshakeSlot> other_listener = counts.admit("internal", a, 1);
  CHECK(other_ip);
  CHECK(other_listener);
}

TEST_CASE("the source key: IPv4 address, IPv6 /64, IPv4-mapped as IPv4, nothing for others") {
  CHECK(keyOf(v4("192.0.2.7")) == std::string("\xc0\x00\x02\x07", 4));
  // One /64: one key, whatever the interface identifier.
  CHECK(keyOf(v6("2001:db8:1:2::1")) == keyOf(v6("2001:db8:1:2:ffff:eeee:dddd:cccc")));
  CHECK(keyOf(v6("2001:db8:1:2::1")).size() == 8);
  CHECK(keyOf(v6("2001:db8:1:2::1")) != keyOf(v6("2001:db8:1:3::1")));
  CHECK(keyOf(v6("::ffff:192.0.2.7")) == keyOf(v4("192.0.2.7")));
  sockaddr unix_like{};
  unix_like.sa_family = AF_UNIX;
  CHECK(sourceKey(&unix_like).empty());
  // An address without a key is not counted.
  HandshakeCounts counts(kSeed);
  std::optional<HandshakeSlot> slot = counts.admit("public", "", 1);
  REQUIRE(slot);
  CHECK_FALSE(slot->held());
}

TEST_CASE("workers admitting one source at once never hold more than the cap") {
  HandshakeCounts counts(kSeed);
  const std::string ip = keyOf(v4("127.0.0.1"));
  // Below what one thread wants (40): the cap binds even when the threads happen to run one
  // after another (a loaded machine), so refusals are certain, not a matter of timing.
  constexpr uint32_t kCap = 32;
  constexpr int kThreads = 4;
  // Slots held over all threads: counted up after an admit and down before the release, so it
  // never runs ahead of the table's own count.
  std::atomic<uint32_t> live{0};
  std::atomic<uint32_t> peak{0};
  std::atomic<uint64_t> admitted{0};
  std::atomic<uint64_t> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      std::vector<HandshakeSlot> held;
      for (int round = 0; round < 5000; ++round) {
        if (std::optional<HandshakeSlot> slot = counts.admit("public", ip, kCap)) {
          held.push_back(std::move(*slot));
          admitted.fetch_add(1);
          uint32_t now = live.fetch_add(1) + 1;
          uint32_t seen = peak.load();
          while (now > seen && !peak.compare_exchange_weak(seen, now)) {
          }
        } else {
          refused.fetch_add(1);
        }
        // Each thread wants up to 40 (160 in all).
        if (held.size() >= 40 || (round % 7 == 0 && !held.empty())) {
          live.fetch_sub(1);
          held.pop_back();
        }
      }
      live.fetch_sub(static_cast<uint32_t>(held.size()));
    });
  }
  for (auto& t : threads) t.join();
  CHECK(admitted.load() > kCap);
  CHECK(refused.load() > 0);
  CHECK(peak.load() <= kCap);
  CHECK(counts.count("public", ip) == 0);
}
