// Fuzz target for JWT verification: arbitrary tokens, and well-signed tokens around arbitrary
// header and payload text (so the JSON and claim checks behind the signature are reached), plus
// JWKS parsing. Byte 0 picks the mode and the policy; the rest is the input.
#include <openssl/evp.h>

#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "filters/jwt.h"

using namespace wsb::jwt;

namespace {

constexpr int64_t kNow = 1700000000;

void check(bool ok) {
  if (!ok) abort();
}

struct Fixture {
  Key hmac;
  Key ec;
  KeySet keys;
  Policy open;
  Policy strict;
};

Key must(std::optional<Key> key) {
  check(key.has_value());
  return *key;
}

const Fixture& fixture() {
  static const Fixture f = [] {
    Key hmac = must(Key::fromSecret("fuzz-secret", nullptr));
    hmac.setKid("h");
    EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    Key ec = must(Key::fromEvp(pkey, nullptr));
    EVP_PKEY_free(pkey);
    ec.setKid("e");
    Policy open;
    open.algorithms = {Algorithm::HS256, Algorithm::HS384, Algorithm::HS512, Algorithm::RS256,
                       Algorithm::RS384, Algorithm::RS512, Algorithm::ES256, Algorithm::ES384};
    Policy strict = open;
    strict.issuer = "iss";
    strict.audiences = {"a", "b"};
    strict.leeway = std::chrono::seconds(30);
    strict.required_claims = {"sub"};
    return Fixture{hmac, ec, KeySet({hmac, ec}), open, strict};
  }();
  return f;
}

// Failures carry a reason in range and never quote the token back: messages come from a small
// fixed vocabulary (a leak would grow it with every input), and no long token appears in one.
// A short token may equal a message by chance, which is why length matters.
void checkResult(const Result<Claims>& result, std::string_view token) {
  if (result.ok()) return;
  const std::string& message = result.error().message;
  check(!message.empty());
  check(reasonName(result.error().reason) != "unknown");
  if (token.size() >= 64) check(message.find(token) == std::string::npos);
  static std::set<std::string> seen;
  seen.insert(message);
  check(seen.size() <= 64);
}

void checkBase64(std::string_view input) {
  std::string decoded;
  check(base64UrlDecode(base64UrlEncode(input), &decoded) && decoded == input);
  // Decoding is strict, so whatever decodes is the one encoding of its bytes.
  if (base64UrlDecode(input, &decoded)) check(base64UrlEncode(decoded) == input);
}

// A token whose signature is right: verification may fail only on what is inside it.
void checkSigned(const std::optional<std::string>& token, std::string_view payload,
                 const Policy& policy, bool header_is_ours) {
  if (!token) return;
  const Result<Claims> result = verify(*token, fixture().keys, policy, kNow);
  checkResult(result, *token);
  if (result.ok()) {
    check(result->json() == payload);
    for (const std::string& name : policy.required_claims) check(result->claim(name).has_value());
    return;
  }
  if (header_is_ours) {
    const Reason reason = result.error().reason;
    check(reason != Reason::BadSignature && reason != Reason::UnknownKey &&
          reason != Reason::AlgorithmNotAllowed && reason != Reason::UnsupportedAlgorithm);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  const Fixture& f = fixture();
  const Policy& policy = (mode & 4) != 0 ? f.strict : f.open;

  switch (mode & 3) {
    case 0:  // the input is the token
      checkResult(verify(input, f.keys, policy, kNow), input);
      break;
    case 1: {  // the input is the payload of a token signed by a known key
      const Key& key = (mode & 8) != 0 ? f.ec : f.hmac;
      const Algorithm alg = (mode & 8) != 0 ? Algorithm::ES256 : Algorithm::HS256;
      checkSigned(sign(alg, key, input), input, policy, true);
      break;
    }
    case 2: {  // header and payload, split at the first newline, signed by a known key
      const size_t split = input.find('\n');
      const std::string_view header = input.substr(0, split);
      const std::string_view payload =
          split == std::string_view::npos ? std::string_view() : input.substr(split + 1);
      checkSigned(signSegments(Algorithm::HS256, f.hmac, header, payload), payload, policy, false);
      break;
    }
    case 3: {  // the input is a JWKS
      std::string error;
      const auto keys = KeySet::fromJwks(input, &error);
      check(keys.has_value() == error.empty());
      if (keys) {
        check(!keys->keys().empty());
        const auto token = sign(Algorithm::HS256, f.hmac, R"({"sub":"x"})");
        check(token.has_value());
        checkResult(verify(*token, *keys, policy, kNow), *token);
      }
      break;
    }
  }
  checkBase64(input);
  return 0;
}
