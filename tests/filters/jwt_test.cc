// Tests for JWT verification: every algorithm, the claim checks, key confusion, JWKS rotation.
#include "filters/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>

using namespace wsb::jwt;

namespace {

constexpr int64_t kNow = 1700000000;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

// Key generation is slow for RSA, so each test key is made once per run.
EVP_PKEY* rsaPair() {
  static Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
  return key.get();
}
EVP_PKEY* rsaPair2() {
  static Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
  return key.get();
}
EVP_PKEY* p256Pair() {
  static Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  return key.get();
}
EVP_PKEY* p384Pair() {
  static Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  return key.get();
}

Key keyOf(EVP_PKEY* pkey) {
  std::string error;
  auto key = Key::fromEvp(pkey, &error);
  INFO(error);
  REQUIRE(key);
  return *key;
}

Key secretKey(std::string_view secret) {
  std::string error;
  auto key = Key::fromSecret(secret, &error);
  INFO(error);
  REQUIRE(key);
  return *key;
}

std::string publicPem(EVP_PKEY* pkey) {
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PUBKEY(bio, pkey) == 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, size_t(len));
  BIO_free(bio);
  return pem;
}

std::string privatePem(EVP_PKEY* pkey) {
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PrivateKey(bio, pkey, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, size_t(len));
  BIO_free(bio);
  return pem;
}

std::string certificatePem(EVP_PKEY* pkey) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, pkey);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("test"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  REQUIRE(X509_sign(cert, pkey, EVP_sha256()) > 0);
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_X509(bio, cert) == 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, size_t(len));
  BIO_free(bio);
  X509_free(cert);
  return pem;
}

std::string bnParam(EVP_PKEY* pkey, const char* name, int width = 0) {
  BIGNUM* bn = nullptr;
  REQUIRE(EVP_PKEY_get_bn_param(pkey, name, &bn) == 1);
  std::string out(size_t(width > 0 ? width : BN_num_bytes(bn)), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), int(out.size()));
  BN_free(bn);
  return base64UrlEncode(out);
}

std::string rsaJwk(EVP_PKEY* pkey, std::string_view kid, std::string_view extra = "") {
  return "{\"kty\":\"RSA\",\"kid\":\"" + std::string(kid) + "\",\"n\":\"" +
         bnParam(pkey, OSSL_PKEY_PARAM_RSA_N) + "\",\"e\":\"" +
         bnParam(pkey, OSSL_PKEY_PARAM_RSA_E) + "\"" + std::string(extra) + "}";
}

std::string ecJwk(EVP_PKEY* pkey, std::string_view crv, int width, std::string_view kid) {
  return "{\"kty\":\"EC\",\"crv\":\"" + std::string(crv) + "\",\"kid\":\"" + std::string(kid) +
         "\",\"x\":\"" + bnParam(pkey, OSSL_PKEY_PARAM_EC_PUB_X, width) + "\",\"y\":\"" +
         bnParam(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, width) + "\"}";
}

std::string mint(Algorithm alg, const Key& key, std::string_view payload) {
  std::string error;
  auto token = sign(alg, key, payload, &error);
  INFO(error);
  REQUIRE(token);
  return *token;
}

std::string mintWithHeader(Algorithm alg, const Key& key, std::string_view header,
                           std::string_view payload) {
  std::string error;
  auto token = signSegments(alg, key, header, payload, &error);
  INFO(error);
  REQUIRE(token);
  return *token;
}

Policy policyFor(std::vector<Algorithm> algorithms) {
  Policy policy;
  policy.algorithms = std::move(algorithms);
  return policy;
}

// The failure has `reason` and its message quotes no part of the token.
void expectFailure(const Result<Claims>& result, Reason reason, std::string_view token) {
  REQUIRE_FALSE(result.ok());
  INFO(result.error().message);
  CHECK(reasonName(result.error().reason) == reasonName(reason));
  CHECK_FALSE(result.error().message.empty());
  size_t start = 0;
  while (start <= token.size()) {
    size_t dot = token.find('.', start);
    if (dot == std::string_view::npos) dot = token.size();
    const std::string_view part = token.substr(start, dot - start);
    if (part.size() >= 4) CHECK(result.error().message.find(part) == std::string::npos);
    start = dot + 1;
  }
}

std::string flipMiddle(std::string token) {
  // A character in the middle of the signature: always a real change to its bytes.
  const size_t dot = token.rfind('.');
  char& c = token[dot + (token.size() - dot) / 2];
  c = c == 'A' ? 'B' : 'A';
  return token;
}

struct TempDir {
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "jwt_test.XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string write(const std::string& name, std::string_view text) const {
    const std::string file = (path / name).string();
    std::ofstream(file, std::ios::binary) << text;
    return file;
  }
  std::filesystem::path path;
};

// One signing key per algorithm, and the key a verifier holds for it.
struct AlgorithmCase {
  Algorithm alg;
  Key signer;
  Key verifier;
};

AlgorithmCase caseFor(Algorithm alg) {
  switch (alg) {
    case Algorithm::HS256:
    case Algorithm::HS384:
    case Algorithm::HS512: return {alg, secretKey("s3cret"), secretKey("s3cret")};
    case Algorithm::RS256:
    case Algorithm::RS384:
    case Algorithm::RS512: {
      std::string error;
      auto pub = Key::fromPem(publicPem(rsaPair()), &error);
      REQUIRE(pub);
      return {alg, keyOf(rsaPair()), *pub};
    }
    case Algorithm::ES256: {
      std::string error;
      auto pub = Key::fromPem(publicPem(p256Pair()), &error);
      REQUIRE(pub);
      return {alg, keyOf(p256Pair()), *pub};
    }
    case Algorithm::ES384: {
      std::string error;
      auto pub = Key::fromPem(publicPem(p384Pair()), &error);
      REQUIRE(pub);
      return {alg, keyOf(p384Pair()), *pub};
    }
  }
  FAIL("unreachable");
  return {alg, secretKey("x"), secretKey("x")};
}

}  // namespace

TEST_CASE("base64url encodes without padding and decodes strictly") {
  CHECK(base64UrlEncode("") == "");
  CHECK(base64UrlEncode("f") == "Zg");
  CHECK(base64UrlEncode("fo") == "Zm8");
  CHECK(base64UrlEncode("foo") == "Zm9v");
  CHECK(base64UrlEncode("foob") == "Zm9vYg");
  CHECK(base64UrlEncode(std::string("\xfb\xff\xfe", 3)) == "-__-");

  std::string out;
  CHECK(base64UrlDecode("Zm9vYg", &out));
  CHECK(out == "foob");
  CHECK(base64UrlDecode("-__-", &out));
  CHECK(out == std::string("\xfb\xff\xfe", 3));
  CHECK(base64UrlDecode("", &out));
  CHECK(out.empty());
  CHECK_FALSE(base64UrlDecode("Zg==", &out));   // padding
  CHECK_FALSE(base64UrlDecode("+//+", &out));   // the other alphabet
  CHECK_FALSE(base64UrlDecode("Zm9vY", &out));  // a dangling character
  CHECK_FALSE(base64UrlDecode("Zh", &out));     // non-zero unused bits: not canonical
  CHECK_FALSE(base64UrlDecode("Zm 9v", &out));
}

TEST_CASE("the RFC 7515 A.1 HS256 example verifies and exposes its claims") {
  const std::string token =
      "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
      "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0"
      "cnVlfQ."
      "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  std::string error;
  const std::string k =
      "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
  auto keys = KeySet::fromJwks(R"({"keys":[{"kty":"oct","k":")" + k + R"("}]})", &error);
  INFO(error);
  REQUIRE(keys);
  Policy policy = policyFor({Algorithm::HS256});
  policy.issuer = "joe";

  auto result = verify(token, *keys, policy, 1300819379);
  REQUIRE(result.ok());
  CHECK(result->algorithm() == Algorithm::HS256);
  CHECK_FALSE(result->kid());
  CHECK(result->claim("iss") == "joe");
  CHECK(result->claim("exp") == "1300819380");
  CHECK(result->claim("http://example.com/is_root") == "true");
  CHECK_FALSE(result->claim("sub"));
  CHECK(result->json() ==
        "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}");

  expectFailure(verify(token, *keys, policy, 1300819380), Reason::Expired, token);
}

TEST_CASE("sign makes the well-known HS256 token byte for byte") {
  auto token = sign(Algorithm::HS256, secretKey("your-256-bit-secret"),
                    R"({"sub":"1234567890","name":"John Doe","iat":1516239022})");
  REQUIRE(token);
  CHECK(*token ==
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c");
}

TEST_CASE("every algorithm verifies its tokens and applies the claim checks") {
  const Algorithm alg =
      GENERATE(Algorithm::HS256, Algorithm::HS384, Algorithm::HS512, Algorithm::RS256,
               Algorithm::RS384, Algorithm::RS512, Algorithm::ES256, Algorithm::ES384);
  INFO(algorithmName(alg));
  const AlgorithmCase c = caseFor(alg);
  const KeySet keys({c.verifier});
  Policy policy = policyFor({alg});
  policy.issuer = "https://issuer.example";
  policy.audiences = {"chat"};

  const std::string good = mint(alg, c.signer,
                                R"({"sub":"u1","iss":"https://issuer.example","aud":"chat",)"
                                R"("exp":1700000060,"nbf":1699999990,"iat":1699999990})");

  SECTION("valid") {
    auto result = verify(good, keys, policy, kNow);
    INFO((result.ok() ? "" : result.error().message));
    REQUIRE(result.ok());
    CHECK(result->algorithm() == alg);
    CHECK(result->claim("sub") == "u1");
  }
  SECTION("expired at exp, valid a second before, and within the leeway") {
    expectFailure(verify(good, keys, policy, 1700000060), Reason::Expired, good);
    CHECK(verify(good, keys, policy, 1700000059).ok());
    policy.leeway = std::chrono::seconds(30);
    CHECK(verify(good, keys, policy, 1700000089).ok());
    expectFailure(verify(good, keys, policy, 1700000090), Reason::Expired, good);
  }
  SECTION("not yet valid before nbf, unless within the leeway") {
    expectFailure(verify(good, keys, policy, 1699999989), Reason::NotYetValid, good);
    CHECK(verify(good, keys, policy, 1699999990).ok());
    policy.leeway = std::chrono::seconds(10);
    CHECK(verify(good, keys, policy, 1699999980).ok());
    expectFailure(verify(good, keys, policy, 1699999979), Reason::NotYetValid, good);
  }
  SECTION("wrong issuer") {
    policy.issuer = "https://other.example";
    expectFailure(verify(good, keys, policy, kNow), Reason::BadIssuer, good);
  }
  SECTION("wrong audience") {
    policy.audiences = {"admin"};
    expectFailure(verify(good, keys, policy, kNow), Reason::BadAudience, good);
  }
  SECTION("bad signature") {
    expectFailure(verify(flipMiddle(good), keys, policy, kNow), Reason::BadSignature, good);
    // The same header and signature over another payload.
    const std::string other = mint(alg, c.signer, R"({"sub":"admin"})");
    const std::string spliced = other.substr(0, other.rfind('.')) + good.substr(good.rfind('.'));
    expectFailure(verify(spliced, keys, policy, kNow), Reason::BadSignature, spliced);
  }
  SECTION("alg none is refused whatever the allow-list") {
    const std::string none = base64UrlEncode(R"({"alg":"none","typ":"JWT"})") + "." +
                             good.substr(good.find('.') + 1, good.rfind('.') - good.find('.'));
    expectFailure(verify(none, keys, policy, kNow), Reason::UnsupportedAlgorithm, none);
    const std::string none_signed =
        base64UrlEncode(R"({"alg":"NoNe"})") + good.substr(good.find('.'));
    expectFailure(verify(none_signed, keys, policy, kNow), Reason::UnsupportedAlgorithm,
                  none_signed);
  }
  SECTION("an algorithm off the allow-list is refused") {
    policy.algorithms = {alg == Algorithm::HS256 ? Algorithm::HS384 : Algorithm::HS256};
    expectFailure(verify(good, keys, policy, kNow), Reason::AlgorithmNotAllowed, good);
  }
}

TEST_CASE("an HS256 token signed with the RSA public key's PEM as secret is refused") {
  const std::string pem = publicPem(rsaPair());
  std::string error;
  auto rsa_public = Key::fromPem(pem, &error);
  REQUIRE(rsa_public);
  CHECK(rsa_public->type() == Key::Type::Rsa);
  const KeySet keys({*rsa_public});
  // Even a careless allow-list naming both families must not let the RSA key act as a secret.
  const Policy policy = policyFor({Algorithm::RS256, Algorithm::HS256});

  const std::string input =
      base64UrlEncode(R"({"alg":"HS256","typ":"JWT"})") + "." + base64UrlEncode(R"({"sub":"x"})");
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t len = 0;
  REQUIRE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, pem.data(), pem.size(),
                    reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac,
                    sizeof mac, &len) != nullptr);
  const std::string forged =
      input + "." + base64UrlEncode(std::string(reinterpret_cast<char*>(mac), len));
  expectFailure(verify(forged, keys, policy, kNow), Reason::AlgorithmNotAllowed, forged);

  // Nor can PEM text be configured as an HMAC secret at all.
  CHECK_FALSE(Key::fromSecret(pem, &error));
  CHECK(error == "HMAC secret is PEM text; use a PEM key file instead");
}

TEST_CASE("a key only verifies its own family and curve") {
  const Key p256 = keyOf(p256Pair());
  const Key rsa = keyOf(rsaPair());
  const Key hmac = secretKey("k");
  CHECK(p256.accepts(Algorithm::ES256));
  CHECK_FALSE(p256.accepts(Algorithm::ES384));
  CHECK_FALSE(p256.accepts(Algorithm::RS256));
  CHECK_FALSE(p256.accepts(Algorithm::HS256));
  CHECK(rsa.accepts(Algorithm::RS512));
  CHECK_FALSE(rsa.accepts(Algorithm::HS256));
  CHECK_FALSE(rsa.accepts(Algorithm::ES256));
  CHECK(hmac.accepts(Algorithm::HS512));
  CHECK_FALSE(hmac.accepts(Algorithm::RS256));

  // An ES384 header over a P-256 key is refused before any signature math.
  const std::string token =
      mintWithHeader(Algorithm::ES256, p256, R"({"alg":"ES384"})", R"({"sub":"x"})");
  expectFailure(verify(token, KeySet({p256}), policyFor({Algorithm::ES384}), kNow),
                Reason::AlgorithmNotAllowed, token);
  std::string error;
  CHECK_FALSE(sign(Algorithm::RS256, p256, "{}", &error));
  CHECK(error == "key is not for RS256");
}

TEST_CASE("ES signatures must be raw r||s of the curve's width") {
  const Key p256 = keyOf(p256Pair());
  const KeySet keys({p256});
  const Policy policy = policyFor({Algorithm::ES256});
  const std::string good = mint(Algorithm::ES256, p256, R"({"sub":"x"})");
  REQUIRE(verify(good, keys, policy, kNow).ok());
  const std::string head = good.substr(0, good.rfind('.') + 1);
  std::string raw;
  REQUIRE(base64UrlDecode(good.substr(good.rfind('.') + 1), &raw));
  REQUIRE(raw.size() == 64);

  for (const std::string& sig :
       {raw.substr(0, 63), raw + '\0', std::string("\0", 1) + raw, raw + raw, std::string()}) {
    const std::string token = head + base64UrlEncode(sig);
    INFO(sig.size());
    expectFailure(verify(token, keys, policy, kNow), Reason::BadSignature, token);
  }
  // The DER form OpenSSL itself produces is not JOSE.
  const unsigned char der_prefix[] = {0x30, 0x44, 0x02, 0x20};
  const std::string der = std::string(reinterpret_cast<const char*>(der_prefix), 4) +
                          raw.substr(0, 32) + "\x02\x20" + raw.substr(32);
  const std::string der_token = head + base64UrlEncode(der);
  expectFailure(verify(der_token, keys, policy, kNow), Reason::BadSignature, der_token);
}

TEST_CASE("malformed tokens are refused as malformed") {
  const Key key = secretKey("s3cret");
  const KeySet keys({key});
  const Policy policy = policyFor({Algorithm::HS256});
  const std::string good = mint(Algorithm::HS256, key, R"({"sub":"x"})");
  REQUIRE(verify(good, keys, policy, kNow).ok());

  auto malformed = [&](const std::string& token) {
    INFO(token);
    expectFailure(verify(token, keys, policy, kNow), Reason::Malformed, token);
  };
  malformed("");
  malformed("abc");
  malformed("a.b");
  malformed(good + ".x");
  malformed(good + ".");
  malformed("!!!!" + good.substr(good.find('.')));  // header not base64url
  malformed(good.substr(0, good.find('.') + 1) + "e30=" + good.substr(good.rfind('.')));
  malformed(good.substr(0, good.rfind('.') + 1) + "a+b/");  // signature alphabet
  malformed(std::string(17000, 'a') + ".b.c");
  malformed(base64UrlEncode("{\"alg\":\"HS256\"") + good.substr(good.find('.')));  // bad JSON
  malformed(base64UrlEncode("[\"HS256\"]") + good.substr(good.find('.')));         // not object
  malformed(base64UrlEncode("{\"typ\":\"JWT\"}") + good.substr(good.find('.')));   // no alg
  malformed(base64UrlEncode("{\"alg\":256}") + good.substr(good.find('.')));
  malformed(mintWithHeader(Algorithm::HS256, key, R"({"alg":"HS256","kid":7})", "{}"));
  malformed(mintWithHeader(Algorithm::HS256, key, R"({"alg":"HS256","alg":"HS256"})", "{}"));
  malformed(mintWithHeader(Algorithm::HS256, key, R"({"alg":"HS256","crit":["exp"]})", "{}"));
  // A key embedded in (or linked from) the header is never used, and the token is refused.
  for (const char* header : {R"({"alg":"HS256","jwk":{"kty":"oct","k":"czNjcmV0"}})",
                             R"({"alg":"HS256","jku":"https://evil.example/keys"})",
                             R"({"alg":"HS256","x5u":"https://evil.example/cert"})",
                             R"({"alg":"HS256","x5c":["MIIB"]})"}) {
    malformed(mintWithHeader(Algorithm::HS256, key, header, R"({"sub":"x"})"));
  }
  // Over 8 KiB, however well signed.
  std::string big = mint(Algorithm::HS256, key, R"({"sub":")" + std::string(6200, 'x') + R"("})");
  REQUIRE(big.size() > 8192);
  malformed(big);
  CHECK(verify(mint(Algorithm::HS256, key, R"({"sub":")" + std::string(5900, 'x') + R"("})"), keys,
               policy, kNow)
            .ok());
  // Correctly signed, but the payload is not a JSON object, or its claims have the wrong type.
  malformed(mintWithHeader(Algorithm::HS256, key, R"({"alg":"HS256"})", "not json"));
  malformed(mintWithHeader(Algorithm::HS256, key, R"({"alg":"HS256"})", "[1,2]"));
  malformed(mint(Algorithm::HS256, key, R"({"exp":"tomorrow"})"));
  malformed(mint(Algorithm::HS256, key, R"({"nbf":null})"));
  malformed(mint(Algorithm::HS256, key, R"({"iat":true})"));
  malformed(mint(Algorithm::HS256, key, R"({"iss":1})"));
  malformed(mint(Algorithm::HS256, key, R"({"aud":["a",2]})"));
  malformed(mint(Algorithm::HS256, key, R"({"aud":{}})"));
  // One claim read two ways is refused, escaped or not.
  malformed(mint(Algorithm::HS256, key, R"({"exp":1,"exp":9999999999})"));
  malformed(mint(Algorithm::HS256, key, R"({"sub":"a","s\u0075b":"b"})"));
  malformed(mint(Algorithm::HS256, key, R"({"sub":"a",)"));
  malformed(mint(Algorithm::HS256, key, R"({"roles":[tru]})"));
}

TEST_CASE("algorithms this code does not implement are unsupported") {
  const Key key = secretKey("s3cret");
  const std::string token =
      mintWithHeader(Algorithm::HS256, key, R"({"alg":"PS256"})", R"({"sub":"x"})");
  expectFailure(verify(token, KeySet({key}), policyFor({Algorithm::HS256}), kNow),
                Reason::UnsupportedAlgorithm, token);
  CHECK_FALSE(algorithmFromName("none"));
  CHECK_FALSE(algorithmFromName("hs256"));
  CHECK(algorithmFromName("ES384") == Algorithm::ES384);
}

TEST_CASE("audience may be an array and matches any configured audience") {
  const Key key = secretKey("s3cret");
  const KeySet keys({key});
  Policy policy = policyFor({Algorithm::HS256});
  policy.audiences = {"web", "mobile"};
  CHECK(
      verify(mint(Algorithm::HS256, key, R"({"aud":["api","mobile"]})"), keys, policy, kNow).ok());
  CHECK(verify(mint(Algorithm::HS256, key, R"({"aud":"web"})"), keys, policy, kNow).ok());
  const std::string none = mint(Algorithm::HS256, key, R"({"aud":["api","Web"]})");
  expectFailure(verify(none, keys, policy, kNow), Reason::BadAudience, none);
  const std::string missing = mint(Algorithm::HS256, key, R"({"sub":"x"})");
  expectFailure(verify(missing, keys, policy, kNow), Reason::BadAudience, missing);
  const std::string empty = mint(Algorithm::HS256, key, R"({"aud":[]})");
  expectFailure(verify(empty, keys, policy, kNow), Reason::BadAudience, empty);

  // Without configured audiences any aud passes.
  policy.audiences.clear();
  CHECK(verify(none, keys, policy, kNow).ok());
}

TEST_CASE("issuer matches exactly and must be present when configured") {
  const Key key = secretKey("s3cret");
  const KeySet keys({key});
  Policy policy = policyFor({Algorithm::HS256});
  policy.issuer = "https://a.example";
  const std::string slash = mint(Algorithm::HS256, key, R"({"iss":"https://a.example/"})");
  expectFailure(verify(slash, keys, policy, kNow), Reason::BadIssuer, slash);
  const std::string missing = mint(Algorithm::HS256, key, R"({"sub":"x"})");
  expectFailure(verify(missing, keys, policy, kNow), Reason::BadIssuer, missing);
}

TEST_CASE("required claims must be present") {
  const Key key = secretKey("s3cret");
  const KeySet keys({key});
  Policy policy = policyFor({Algorithm::HS256});
  policy.required_claims = {"sub", "exp"};
  CHECK(verify(mint(Algorithm::HS256, key, R"({"sub":"x","exp":1800000000})"), keys, policy, kNow)
            .ok());
  const std::string token = mint(Algorithm::HS256, key, R"({"sub":"x"})");
  auto result = verify(token, keys, policy, kNow);
  expectFailure(result, Reason::MissingClaim, token);
  CHECK(result.error().message == "missing claim exp");
}

TEST_CASE("claims give strings unescaped and other values as compact JSON") {
  const Key key = secretKey("s3cret");
  const std::string token = mint(Algorithm::HS256, key,
                                 R"({"sub":"a\"b\u00e9", "n": 42, "f":1.5, "ok":false,)"
                                 R"( "z":null, "roles":[ "x", {"y" : 1} ], "o":{}})");
  auto result = verify(token, KeySet({key}), policyFor({Algorithm::HS256}), kNow);
  REQUIRE(result.ok());
  CHECK(result->claim("sub") == "a\"b\xc3\xa9");
  CHECK(result->claim("n") == "42");
  CHECK(result->claim("f") == "1.5");
  CHECK(result->claim("ok") == "false");
  CHECK(result->claim("z") == "null");
  CHECK(result->claim("roles") == R"(["x",{"y":1}])");
  CHECK(result->claim("o") == "{}");
  CHECK_FALSE(result->claim("missing"));
}

TEST_CASE("fractional and huge NumericDates compare as numbers") {
  const Key key = secretKey("s3cret");
  const KeySet keys({key});
  const Policy policy = policyFor({Algorithm::HS256});
  CHECK(verify(mint(Algorithm::HS256, key, R"({"exp":1700000000.5})"), keys, policy, kNow).ok());
  const std::string past = mint(Algorithm::HS256, key, R"({"exp":1699999999.9})");
  expectFailure(verify(past, keys, policy, kNow), Reason::Expired, past);
  CHECK(verify(mint(Algorithm::HS256, key, R"({"exp":18446744073709551615})"), keys, policy, kNow)
            .ok());
  const std::string negative = mint(Algorithm::HS256, key, R"({"exp":-1})");
  expectFailure(verify(negative, keys, policy, kNow), Reason::Expired, negative);
}

TEST_CASE("PEM keys load from public keys, certificates and private keys") {
  std::string error;
  for (EVP_PKEY* pkey : {rsaPair(), p256Pair(), p384Pair()}) {
    const Key signer = keyOf(pkey);
    const Algorithm alg = signer.type() == Key::Type::Rsa      ? Algorithm::RS256
                          : signer.type() == Key::Type::EcP256 ? Algorithm::ES256
                                                               : Algorithm::ES384;
    const std::string token = mint(alg, signer, R"({"sub":"x"})");
    for (const std::string& pem : {publicPem(pkey), certificatePem(pkey), privatePem(pkey)}) {
      auto key = Key::fromPem(pem, &error);
      INFO(error);
      REQUIRE(key);
      CHECK(key->type() == signer.type());
      CHECK(verify(token, KeySet({*key}), policyFor({alg}), kNow).ok());
    }
  }
  // A private key from PEM also signs.
  auto private_key = Key::fromPem(privatePem(p256Pair()), &error);
  REQUIRE(private_key);
  CHECK(sign(Algorithm::ES256, *private_key, "{}"));
  // A public key cannot.
  auto public_key = Key::fromPem(publicPem(p256Pair()), &error);
  REQUIRE(public_key);
  CHECK_FALSE(sign(Algorithm::ES256, *public_key, "{}", &error));
  CHECK(error == "signing needs a private key");
}

TEST_CASE("weak, foreign and broken PEM keys are refused") {
  std::string error;
  Pkey small(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024}));
  CHECK_FALSE(Key::fromPem(publicPem(small.get()), &error));
  CHECK(error == "RSA key under 2048 bits");
  Pkey p521(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-521"));
  CHECK_FALSE(Key::fromPem(publicPem(p521.get()), &error));
  CHECK(error == "EC key is not on P-256 or P-384");
  Pkey ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  CHECK_FALSE(Key::fromPem(publicPem(ed.get()), &error));
  CHECK(error == "key is not RSA or EC");
  CHECK_FALSE(Key::fromPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", &error));
  CHECK(error == "no public key, certificate or unencrypted private key in PEM");
  CHECK_FALSE(Key::fromPemFile("/nonexistent/key.pem", &error));
  CHECK(error == "cannot read /nonexistent/key.pem");
  CHECK_FALSE(Key::fromSecret("", &error));
  CHECK(error == "empty HMAC secret");
}

TEST_CASE("JWKS keys are chosen by kid") {
  const std::string jwks =
      R"({"keys":[)" + rsaJwk(rsaPair(), "r1") + "," + ecJwk(p256Pair(), "P-256", 32, "e1") + "," +
      ecJwk(p384Pair(), "P-384", 48, "e2") + R"(,{"kty":"oct","kid":"h1","k":"c2VjcmV0"}]})";
  std::string error;
  auto keys = KeySet::fromJwks(jwks, &error);
  INFO(error);
  REQUIRE(keys);
  REQUIRE(keys->keys().size() == 4);
  const Policy policy =
      policyFor({Algorithm::RS256, Algorithm::ES256, Algorithm::ES384, Algorithm::HS256});

  auto withKid = [](Key key, std::string kid) {
    key.setKid(std::move(kid));
    return key;
  };
  auto r1 = mint(Algorithm::RS256, withKid(keyOf(rsaPair()), "r1"), R"({"sub":"r"})");
  auto e1 = mint(Algorithm::ES256, withKid(keyOf(p256Pair()), "e1"), R"({"sub":"e"})");
  auto e2 = mint(Algorithm::ES384, withKid(keyOf(p384Pair()), "e2"), R"({"sub":"e"})");
  auto h1 = mint(Algorithm::HS256, withKid(secretKey("secret"), "h1"), R"({"sub":"h"})");
  CHECK(verify(r1, *keys, policy, kNow).ok());
  CHECK(verify(e1, *keys, policy, kNow).ok());
  CHECK(verify(e2, *keys, policy, kNow).ok());
  auto hs = verify(h1, *keys, policy, kNow);
  REQUIRE(hs.ok());
  CHECK(hs->kid() == "h1");

  const std::string unknown =
      mint(Algorithm::RS256, withKid(keyOf(rsaPair()), "r9"), R"({"sub":"r"})");
  expectFailure(verify(unknown, *keys, policy, kNow), Reason::UnknownKey, unknown);
  const std::string no_kid = mint(Algorithm::RS256, keyOf(rsaPair()), R"({"sub":"r"})");
  expectFailure(verify(no_kid, *keys, policy, kNow), Reason::UnknownKey, no_kid);
  // The kid names an EC key; an HS256 token under it is not tried against that key.
  const std::string crossed =
      mint(Algorithm::HS256, withKid(secretKey("secret"), "e1"), R"({"sub":"h"})");
  expectFailure(verify(crossed, *keys, policy, kNow), Reason::AlgorithmNotAllowed, crossed);
}

TEST_CASE("a one-key set takes tokens without a kid, and a kid-less key any kid") {
  std::string error;
  auto one = KeySet::fromJwks(R"({"keys":[)" + rsaJwk(rsaPair(), "only") + "]}", &error);
  REQUIRE(one);
  const Policy policy = policyFor({Algorithm::RS256});
  CHECK(verify(mint(Algorithm::RS256, keyOf(rsaPair()), "{}"), *one, policy, kNow).ok());

  Key signer = keyOf(rsaPair());
  signer.setKid("issuer-key-7");
  const std::string with_kid = mint(Algorithm::RS256, signer, "{}");
  expectFailure(verify(with_kid, *one, policy, kNow), Reason::UnknownKey, with_kid);
  CHECK(verify(with_kid, KeySet({keyOf(rsaPair())}), policy, kNow).ok());
}

TEST_CASE("JWKS skips keys it cannot use and refuses broken ones") {
  std::string error;
  const std::string rsa = rsaJwk(rsaPair(), "r1");
  auto keys = KeySet::fromJwks(R"({"keys":[)" + rsaJwk(rsaPair(), "enc", R"(,"use":"enc")") +
                                   R"(,{"kty":"OKP","crv":"Ed25519","x":"AAAA"})" +
                                   R"(,{"kty":"EC","crv":"P-521","x":"AA","y":"AA"})" + "," +
                                   rsaJwk(rsaPair(), "ps", R"(,"alg":"PS256")") + "," + rsa + "]}",
                               &error);
  INFO(error);
  REQUIRE(keys);
  REQUIRE(keys->keys().size() == 1);
  CHECK(keys->keys()[0].kid() == "r1");

  auto refused = [&](const std::string& json, const std::string& why) {
    INFO(json);
    CHECK_FALSE(KeySet::fromJwks(json, &error));
    CHECK(error == why);
  };
  refused("not json", "JWKS is not valid JSON");
  refused(R"({"kty":"oct","k":"c2VjcmV0"})", "JWKS has no \"keys\" array");
  refused(R"({"keys":[]})", "JWKS has no usable signing key");
  refused(R"({"keys":[{"kty":"OKP"}]})", "JWKS has no usable signing key");
  refused(R"({"keys":[{"kty":"RSA","e":"AQAB"}]})", "JWKS key 0: RSA key needs base64url n and e");
  refused(R"({"keys":[{"kid":"x"}]})", "JWKS key 0: no kty");
  refused(R"({"keys":[{"kty":"oct","k":"c2VjcmV0","kid":5}]})",
          "JWKS key 0: use, alg and kid must be strings");
  refused(R"({"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"RS256"}]})",
          "JWKS key 0: alg does not fit the key type");
  refused(R"({"keys":[{"kty":"oct","k":""}]})", "JWKS key 0: oct key needs k");
  // A short coordinate, and a point that is not on the curve.
  refused(R"({"keys":[{"kty":"EC","crv":"P-256","x":"AQ","y":"AQ"}]})",
          "JWKS key 0: EC key needs base64url x and y of the curve's size");
  const std::string one = base64UrlEncode(std::string(31, '\0') + "\x01");
  refused(R"({"keys":[{"kty":"EC","crv":"P-256","x":")" + one + R"(","y":")" + one + R"("}]})",
          "JWKS key 0: invalid key parameters");
}

TEST_CASE("a JWK alg limits its key to that algorithm") {
  std::string error;
  auto keys =
      KeySet::fromJwks(R"({"keys":[)" + rsaJwk(rsaPair(), "r", R"(,"alg":"RS256")") + "]}", &error);
  REQUIRE(keys);
  Key signer = keyOf(rsaPair());
  signer.setKid("r");
  const Policy policy = policyFor({Algorithm::RS256, Algorithm::RS512});
  CHECK(verify(mint(Algorithm::RS256, signer, "{}"), *keys, policy, kNow).ok());
  const std::string rs512 = mint(Algorithm::RS512, signer, "{}");
  expectFailure(verify(rs512, *keys, policy, kNow), Reason::AlgorithmNotAllowed, rs512);
}

TEST_CASE("a verifier picks up a rotated JWKS file on reload and keeps its keys on failure") {
  TempDir dir;
  const std::string path =
      dir.write("jwks.json", R"({"keys":[)" + rsaJwk(rsaPair(), "2024") + "]}");
  Policy policy = policyFor({Algorithm::RS256});
  std::string error;
  auto verifier = Verifier::create(policy, KeySource{KeySource::Kind::JwksFile, path}, &error);
  INFO(error);
  REQUIRE(verifier);

  Key old_signer = keyOf(rsaPair());
  old_signer.setKid("2024");
  Key new_signer = keyOf(rsaPair2());
  new_signer.setKid("2025");
  const std::string old_token = mint(Algorithm::RS256, old_signer, R"({"sub":"u"})");
  const std::string new_token = mint(Algorithm::RS256, new_signer, R"({"sub":"u"})");
  CHECK(verifier->verify(old_token, kNow).ok());
  expectFailure(verifier->verify(new_token, kNow), Reason::UnknownKey, new_token);

  // Rotation: both keys during the overlap, then only the new one.
  dir.write("jwks.json",
            R"({"keys":[)" + rsaJwk(rsaPair(), "2024") + "," + rsaJwk(rsaPair2(), "2025") + "]}");
  REQUIRE(verifier->reload(&error));
  CHECK(verifier->verify(old_token, kNow).ok());
  CHECK(verifier->verify(new_token, kNow).ok());

  dir.write("jwks.json", R"({"keys":[)" + rsaJwk(rsaPair2(), "2025") + "]}");
  REQUIRE(verifier->reload(&error));
  expectFailure(verifier->verify(old_token, kNow), Reason::UnknownKey, old_token);
  CHECK(verifier->verify(new_token, kNow).ok());

  // A broken rotation leaves the last good keys in place.
  dir.write("jwks.json", R"({"keys":[)");
  CHECK_FALSE(verifier->reload(&error));
  CHECK(error == path + ": JWKS is not valid JSON");
  CHECK(verifier->verify(new_token, kNow).ok());
  std::filesystem::remove(path);
  CHECK_FALSE(verifier->reload(&error));
  CHECK(error == "cannot read " + path);
  CHECK(verifier->verify(new_token, kNow).ok());
}

TEST_CASE("a verifier from a PEM file reloads a replaced key") {
  TempDir dir;
  const std::string path = dir.write("key.pem", publicPem(rsaPair()));
  std::string error;
  auto verifier = Verifier::create(policyFor({Algorithm::RS256}),
                                   KeySource{KeySource::Kind::PemFile, path}, &error);
  INFO(error);
  REQUIRE(verifier);
  const std::string token = mint(Algorithm::RS256, keyOf(rsaPair2()), "{}");
  expectFailure(verifier->verify(token, kNow), Reason::BadSignature, token);
  dir.write("key.pem", certificatePem(rsaPair2()));
  REQUIRE(verifier->reload(&error));
  CHECK(verifier->verify(token, kNow).ok());
}

TEST_CASE("a verifier refuses a policy its keys cannot satisfy") {
  std::string error;
  CHECK_FALSE(Verifier::create(Policy{}, KeySource{KeySource::Kind::Secret, "s"}, &error));
  CHECK(error == "no algorithms allowed");
  CHECK_FALSE(Verifier::create(policyFor({Algorithm::RS256}),
                               KeySource{KeySource::Kind::Secret, "s"}, &error));
  CHECK(error == "no key is for any of the allowed algorithms");
  CHECK_FALSE(Verifier::create(policyFor({Algorithm::HS256}),
                               KeySource{KeySource::Kind::Secret, ""}, &error));
  CHECK(error == "empty HMAC secret");

  auto verifier = Verifier::create(policyFor({Algorithm::HS256}),
                                   KeySource{KeySource::Kind::Secret, "s"}, &error);
  REQUIRE(verifier);
  const std::string token = mint(Algorithm::HS256, secretKey("s"), R"({"exp":4102444800})");
  CHECK(verifier->verify(token).ok());  // the system clock, well before 2100
}

TEST_CASE("reason names are stable for logs and error bodies") {
  CHECK(reasonName(Reason::Malformed) == "malformed");
  CHECK(reasonName(Reason::UnsupportedAlgorithm) == "unsupported_algorithm");
  CHECK(reasonName(Reason::AlgorithmNotAllowed) == "algorithm_not_allowed");
  CHECK(reasonName(Reason::UnknownKey) == "unknown_key");
  CHECK(reasonName(Reason::BadSignature) == "bad_signature");
  CHECK(reasonName(Reason::Expired) == "expired");
  CHECK(reasonName(Reason::NotYetValid) == "not_yet_valid");
  CHECK(reasonName(Reason::BadIssuer) == "bad_issuer");
  CHECK(reasonName(Reason::BadAudience) == "bad_audience");
  CHECK(reasonName(Reason::MissingClaim) == "missing_claim");
}
