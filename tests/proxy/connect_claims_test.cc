#include "proxy/connect_claims.h"

#include <catch2/catch.hpp>

using wsb::proxy::recallConnectAttributes;
using wsb::proxy::rememberConnectAttributes;

TEST_CASE("a session's later request recalls what its CONNECT earned") {
  rememberConnectAttributes("sid-alice", {{"jwt.sub", "alice"}, {"jwt.role", "admin"}});
  rememberConnectAttributes("sid-bob", {{"jwt.sub", "bob"}});
  CHECK(recallConnectAttributes("sid-alice") ==
        wsb::filters::Attributes{{"jwt.sub", "alice"}, {"jwt.role", "admin"}});
  CHECK(recallConnectAttributes("sid-bob") == wsb::filters::Attributes{{"jwt.sub", "bob"}});
  // Recalling does not consume: every later request of the session gets them.
  CHECK(recallConnectAttributes("sid-bob").at("jwt.sub") == "bob");
}

TEST_CASE("an unknown sid recalls nothing, and empty attributes are not recorded") {
  CHECK(recallConnectAttributes("sid-nobody").empty());
  rememberConnectAttributes("sid-anonymous", {});
  CHECK(recallConnectAttributes("sid-anonymous").empty());
}

TEST_CASE("a second CONNECT of the session replaces the attributes") {
  rememberConnectAttributes("sid-carol", {{"jwt.sub", "carol"}});
  rememberConnectAttributes("sid-carol", {{"jwt.sub", "carol2"}});
  CHECK(recallConnectAttributes("sid-carol") == wsb::filters::Attributes{{"jwt.sub", "carol2"}});
}
