// Signed sticky sids: round trip, tampering, keys.
#include "proxy/sticky_sid.h"

#include <catch2/catch.hpp>

using wsb::proxy::SidSigner;

TEST_CASE("a signed sid opens to the upstream sid and endpoint tag") {
  SidSigner signer("secret");
  uint32_t tag = SidSigner::endpointTag("127.0.0.1:9000");
  std::string sid = signer.sign("lv_VI97HAXpY6yYWAAAC", tag);
  CHECK(sid.size() == 20 + 1 + 16);
  CHECK(sid.rfind("lv_VI97HAXpY6yYWAAAC.", 0) == 0);
  auto opened = signer.open(sid);
  REQUIRE(opened);
  CHECK(opened->upstream_sid == "lv_VI97HAXpY6yYWAAAC");
  CHECK(opened->endpoint_tag == tag);
}

TEST_CASE("the same key on another instance opens the sid; another key does not") {
  std::string sid = SidSigner("k1").sign("abc", 7);
  CHECK(SidSigner("k1").open(sid));
  CHECK_FALSE(SidSigner("k2").open(sid));
}

TEST_CASE("a tampered sid is refused") {
  SidSigner signer("secret");
  std::string sid = signer.sign("abc", SidSigner::endpointTag("10.0.0.1:1"));
  for (size_t i = 0; i < sid.size(); ++i) {
    std::string bad = sid;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    CHECK_FALSE(signer.open(bad));
  }
  CHECK_FALSE(signer.open(""));
  CHECK_FALSE(signer.open("abc"));
  CHECK_FALSE(signer.open("lv_VI97HAXpY6yYWAAAC"));  // an upstream sid as is
}

TEST_CASE("endpoint tags differ for different endpoints") {
  CHECK(SidSigner::endpointTag("127.0.0.1:9000") != SidSigner::endpointTag("127.0.0.1:9001"));
}
