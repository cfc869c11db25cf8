// JSON Web Token verification and minting on OpenSSL 3 EVP, with JSON read by simdjson.
#include "filters/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <climits>
#include <fstream>
#include <iterator>

namespace wsb::jwt {
namespace {

// Tokens arrive in headers and URLs; anything near this size is not a credential.
constexpr size_t kMaxTokenSize = 8 * 1024;  // real tokens are well under 2 KiB

struct AlgorithmInfo {
  std::string_view name;
  const char* digest;
  Key::Type family;  // for EC, also the curve
  size_t ec_half;    // bytes of r (and of s) in a JOSE ECDSA signature; 0 for HS/RS
};

// Indexed by Algorithm.
constexpr std::array<AlgorithmInfo, 8> kAlgorithms{{
    {"HS256", "SHA256", Key::Type::Hmac, 0},
    {"HS384", "SHA384", Key::Type::Hmac, 0},
    {"HS512", "SHA512", Key::Type::Hmac, 0},
    {"RS256", "SHA256", Key::Type::Rsa, 0},
    {"RS384", "SHA384", Key::Type::Rsa, 0},
    {"RS512", "SHA512", Key::Type::Rsa, 0},
    {"ES256", "SHA256", Key::Type::EcP256, 32},
    {"ES384", "SHA384", Key::Type::EcP384, 48},
}};

const AlgorithmInfo& info(Algorithm alg) { return kAlgorithms[static_cast<size_t>(alg)]; }

struct OpenSslFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(OSSL_DECODER_CTX* p) const { OSSL_DECODER_CTX_free(p); }
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
  void operator()(X509* p) const { X509_free(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, OpenSslFree>;

// Failed OpenSSL calls leave entries on the thread's error queue, which a later SSL_get_error()
// on the same worker thread would misread; drop ours on the way out.
class ErrorQueueMark {
 public:
  ErrorQueueMark() { ERR_set_mark(); }
  ~ErrorQueueMark() { ERR_pop_to_mark(); }
  ErrorQueueMark(const ErrorQueueMark&) = delete;
  ErrorQueueMark& operator=(const ErrorQueueMark&) = delete;
};

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

template <typename T>
std::optional<T> fail(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
  return std::nullopt;
}

Error error(Reason reason, std::string message) { return Error{reason, std::move(message)}; }

bool readFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), {});
  return !in.bad();
}

constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<int8_t, 256> kBase64UrlValue = [] {
  std::array<int8_t, 256> table{};
  table.fill(-1);
  for (int i = 0; i < 64; ++i) table[static_cast<unsigned char>(kBase64Url[i])] = int8_t(i);
  return table;
}();

// Some JWKS publishers pad their base64url; tokens get no such leniency.
bool decodeJwkField(std::string_view text, std::string* out) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  return base64UrlDecode(text, out);
}

// JOSE carries ECDSA signatures as fixed-width r||s (RFC 7518 3.4); OpenSSL wants DER.
bool joseToDer(std::string_view raw, size_t half, std::string* der) {
  if (raw.size() != 2 * half) return false;
  Owned<ECDSA_SIG> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(bytes(raw), int(half), nullptr);
  BIGNUM* s = BN_bin2bn(bytes(raw.substr(half)), int(half), nullptr);
  if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return false;
  }
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return false;
  der->resize(size_t(len));
  auto* out = reinterpret_cast<unsigned char*>(der->data());
  return i2d_ECDSA_SIG(sig.get(), &out) == len;
}

bool derToJose(std::string_view der, size_t half, std::string* raw) {
  const unsigned char* in = bytes(der);
  Owned<ECDSA_SIG> sig(d2i_ECDSA_SIG(nullptr, &in, long(der.size())));
  if (!sig) return false;
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  raw->assign(2 * half, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw->data());
  return BN_bn2binpad(r, out, int(half)) == int(half) &&
         BN_bn2binpad(s, out + half, int(half)) == int(half);
}

bool hmac(const Key& key, Algorithm alg, std::string_view input, unsigned char* mac, size_t* len) {
  return EVP_Q_mac(nullptr, "HMAC", nullptr, info(alg).digest, nullptr, key.secret().data(),
                   key.secret().size(), bytes(input), input.size(), mac, EVP_MAX_MD_SIZE,
                   len) != nullptr;
}

bool verifySignature(const Key& key, Algorithm alg, std::string_view input,
                     std::string_view signature) {
  ErrorQueueMark mark;
  if (key.type() == Key::Type::Hmac) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t len = 0;
    return hmac(key, alg, input, mac, &len) && signature.size() == len &&
           CRYPTO_memcmp(mac, signature.data(), len) == 0;
  }
  std::string der;
  if (info(alg).ec_half != 0) {
    if (!joseToDer(signature, info(alg).ec_half, &der)) return false;
    signature = der;
  }
  Owned<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (!ctx || EVP_DigestVerifyInit_ex(ctx.get(), &pctx, info(alg).digest, nullptr, nullptr,
                                      key.pkey(), nullptr) != 1)
    return false;
  if (key.type() == Key::Type::Rsa && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
    return false;
  return EVP_DigestVerify(ctx.get(), bytes(signature), signature.size(), bytes(input),
                          input.size()) == 1;
}

std::optional<std::string> signature(Algorithm alg, const Key& key, std::string_view input,
                                     std::string* error) {
  ErrorQueueMark mark;
  if (key.type() == Key::Type::Hmac) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t len = 0;
    if (!hmac(key, alg, input, mac, &len)) return fail<std::string>(error, "HMAC failed");
    return std::string(reinterpret_cast<const char*>(mac), len);
  }
  // OpenSSL would only fail at the signature itself, with a less useful error.
  BIGNUM* secret_part = nullptr;
  const char* secret_name =
      key.type() == Key::Type::Rsa ? OSSL_PKEY_PARAM_RSA_D : OSSL_PKEY_PARAM_PRIV_KEY;
  const bool has_private = EVP_PKEY_get_bn_param(key.pkey(), secret_name, &secret_part) == 1;
  BN_clear_free(secret_part);
  if (!has_private) return fail<std::string>(error, "signing needs a private key");
  Owned<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  size_t len = 0;
  if (!ctx ||
      EVP_DigestSignInit_ex(ctx.get(), &pctx, info(alg).digest, nullptr, nullptr, key.pkey(),
                            nullptr) != 1 ||
      (key.type() == Key::Type::Rsa &&
       EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) ||
      EVP_DigestSign(ctx.get(), nullptr, &len, bytes(input), input.size()) != 1)
    return fail<std::string>(error, "signing failed");
  std::string out(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, bytes(input),
                     input.size()) != 1)
    return fail<std::string>(error, "signing failed");
  out.resize(len);
  if (info(alg).ec_half == 0) return out;
  std::string raw;
  if (!derToJose(out, info(alg).ec_half, &raw)) return fail<std::string>(error, "signing failed");
  return raw;
}

std::string jsonString(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

// ---- JSON of tokens ----

// The DOM parser validates the whole document (the On-Demand one skips what it is not asked
// about), which is what a credential deserves. One per thread: verify() runs on every worker.
simdjson::dom::parser& tokenParser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

// Two readings of one token are a hazard (RFC 7515 4: reject duplicate member names or take the
// last; the DOM takes the first), so duplicates are refused.
bool hasDuplicateNames(std::vector<std::string_view> names) {
  std::sort(names.begin(), names.end());
  return std::adjacent_find(names.begin(), names.end()) != names.end();
}

struct Header {
  std::string alg;
  std::optional<std::string> kid;
};

// jku, x5u and jwk are ignored: keys never come from the token itself.
std::optional<Error> readHeader(std::string_view json, Header* header) {
  simdjson::dom::object object;
  if (tokenParser().parse(json.data(), json.size()).get(object) != simdjson::SUCCESS)
    return error(Reason::Malformed, "header is not a JSON object");
  std::vector<std::string_view> names;
  bool has_alg = false;
  for (auto [name, value] : object) {
    names.push_back(name);
    std::string_view text;
    if (name == "alg") {
      if (value.get(text) != simdjson::SUCCESS)
        return error(Reason::Malformed, "alg is not a string");
      header->alg = std::string(text);
      has_alg = true;
    } else if (name == "kid") {
      if (value.get(text) != simdjson::SUCCESS)
        return error(Reason::Malformed, "kid is not a string");
      header->kid = std::string(text);
    } else if (name == "jwk" || name == "jku" || name == "x5u" || name == "x5c") {
      // A token that brings its own key (or where to fetch one): only configured keys verify,
      // and a token trying this is an attack, not a client to serve (CVE-2018-0114 style).
      return error(Reason::Malformed, "the header carries a key (jwk/jku/x5u/x5c)");
    } else if (name == "crit") {
      // No extension is understood, so any critical one must fail (RFC 7515 4.1.11).
      return error(Reason::Malformed, "crit header extensions are not supported");
    }
  }
  if (hasDuplicateNames(std::move(names)))
    return error(Reason::Malformed, "header repeats a member");
  if (!has_alg) return error(Reason::Malformed, "header has no alg");
  return std::nullopt;
}

struct Payload {
  std::vector<std::pair<std::string, std::string>> entries;
  std::optional<double> exp;
  std::optional<double> nbf;
  std::optional<std::string> iss;
  std::optional<std::vector<std::string>> aud;
};

std::optional<Error> readPayload(std::string_view json, Payload* payload) {
  simdjson::dom::object object;
  if (tokenParser().parse(json.data(), json.size()).get(object) != simdjson::SUCCESS)
    return error(Reason::Malformed, "payload is not a JSON object");
  std::vector<std::string_view> names;
  for (auto [name, value] : object) {
    names.push_back(name);
    std::string_view text;
    const bool is_string = value.get(text) == simdjson::SUCCESS;
    if (name == "exp" || name == "nbf" || name == "iat") {
      double seconds = 0;
      if (!value.is_number() || value.get_double().get(seconds) != simdjson::SUCCESS)
        return error(Reason::Malformed, std::string(name) + " is not a number");
      if (name == "exp") payload->exp = seconds;
      if (name == "nbf") payload->nbf = seconds;
    } else if (name == "iss") {
      if (!is_string) return error(Reason::Malformed, "iss is not a string");
      payload->iss = std::string(text);
    } else if (name == "aud") {
      auto& aud = payload->aud.emplace();
      if (is_string) {
        aud.emplace_back(text);
      } else if (simdjson::dom::array items; value.get(items) == simdjson::SUCCESS) {
        for (simdjson::dom::element item : items) {
          if (item.get(text) != simdjson::SUCCESS)
            return error(Reason::Malformed, "aud holds a non-string");
          aud.emplace_back(text);
        }
      } else {
        return error(Reason::Malformed, "aud is not a string or an array");
      }
    }
    payload->entries.emplace_back(std::string(name),
                                  is_string ? std::string(text) : simdjson::to_string(value));
  }
  if (hasDuplicateNames(std::move(names)))
    return error(Reason::Malformed, "payload repeats a claim");
  return std::nullopt;
}

std::optional<Error> checkClaims(const Payload& payload, const Policy& policy, int64_t now) {
  // Doubles: NumericDate may have a fraction, and whole seconds are exact far past year 9999.
  const double at = double(now);
  const double leeway = double(policy.leeway.count());
  if (payload.exp && at >= *payload.exp + leeway) return error(Reason::Expired, "token expired");
  if (payload.nbf && at + leeway < *payload.nbf)
    return error(Reason::NotYetValid, "token not valid yet");
  if (!policy.issuer.empty()) {
    if (!payload.iss) return error(Reason::BadIssuer, "token has no iss");
    if (*payload.iss != policy.issuer) return error(Reason::BadIssuer, "wrong issuer");
  }
  if (!policy.audiences.empty()) {
    if (!payload.aud) return error(Reason::BadAudience, "token has no aud");
    const bool match = std::any_of(payload.aud->begin(), payload.aud->end(), [&](auto& aud) {
      return std::find(policy.audiences.begin(), policy.audiences.end(), aud) !=
             policy.audiences.end();
    });
    if (!match) return error(Reason::BadAudience, "wrong audience");
  }
  for (const std::string& name : policy.required_claims) {
    const bool present = std::any_of(payload.entries.begin(), payload.entries.end(),
                                     [&](auto& entry) { return entry.first == name; });
    if (!present) return error(Reason::MissingClaim, "missing claim " + name);
  }
  return std::nullopt;
}

// ---- keys from JSON Web Key Sets ----

// 0: absent, 1: a string in *out, -1: present but not a string.
int optionalString(simdjson::dom::object object, std::string_view name, std::string_view* out) {
  auto field = object[name];
  if (field.error() == simdjson::NO_SUCH_FIELD) return 0;
  return field.get(*out) == simdjson::SUCCESS ? 1 : -1;
}

bool requiredField(simdjson::dom::object object, std::string_view name, std::string* decoded) {
  std::string_view text;
  return optionalString(object, name, &text) == 1 && decodeJwkField(text, decoded) &&
         !decoded->empty();
}

std::optional<Key> keyFromParams(const char* type, OSSL_PARAM_BLD* builder, std::string* error) {
  Owned<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(builder));
  Owned<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* made = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &made, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
    return fail<Key>(error, "invalid key parameters");
  Owned<EVP_PKEY> pkey(made);
  Owned<EVP_PKEY_CTX> check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1)
    return fail<Key>(error, "invalid public key");
  return Key::fromEvp(pkey.get(), error);
}

std::optional<Key> rsaFromJwk(simdjson::dom::object jwk, std::string* error) {
  std::string n;
  std::string e;
  if (!requiredField(jwk, "n", &n) || !requiredField(jwk, "e", &e))
    return fail<Key>(error, "RSA key needs base64url n and e");
  Owned<BIGNUM> modulus(BN_bin2bn(bytes(n), int(n.size()), nullptr));
  Owned<BIGNUM> exponent(BN_bin2bn(bytes(e), int(e.size()), nullptr));
  Owned<OSSL_PARAM_BLD> builder(OSSL_PARAM_BLD_new());
  if (!modulus || !exponent || !builder ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_N, modulus.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_E, exponent.get()) != 1)
    return fail<Key>(error, "invalid RSA key");
  return keyFromParams("RSA", builder.get(), error);
}

std::optional<Key> ecFromJwk(simdjson::dom::object jwk, const char* group, size_t size,
                             std::string* error) {
  std::string x;
  std::string y;
  // Coordinates are full width (RFC 7518 6.2.1.2), so a short one is a broken key.
  if (!requiredField(jwk, "x", &x) || !requiredField(jwk, "y", &y) || x.size() != size ||
      y.size() != size)
    return fail<Key>(error, "EC key needs base64url x and y of the curve's size");
  const std::string point = '\x04' + x + y;  // uncompressed SEC1 point
  Owned<OSSL_PARAM_BLD> builder(OSSL_PARAM_BLD_new());
  if (!builder ||
      OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1)
    return fail<Key>(error, "invalid EC key");
  return keyFromParams("EC", builder.get(), error);
}

enum class JwkOutcome { Usable, Skipped, Broken };

JwkOutcome readJwk(simdjson::dom::element element, std::optional<Key>* key, std::string* error) {
  simdjson::dom::object jwk;
  std::string_view kty;
  std::string_view use;
  std::string_view alg_name;
  std::string_view kid;
  if (element.get(jwk) != simdjson::SUCCESS) return *error = "not an object", JwkOutcome::Broken;
  if (optionalString(jwk, "kty", &kty) != 1) return *error = "no kty", JwkOutcome::Broken;
  const int has_use = optionalString(jwk, "use", &use);
  const int has_alg = optionalString(jwk, "alg", &alg_name);
  const int has_kid = optionalString(jwk, "kid", &kid);
  if (has_use < 0 || has_alg < 0 || has_kid < 0)
    return *error = "use, alg and kid must be strings", JwkOutcome::Broken;
  if (has_use == 1 && use != "sig") return JwkOutcome::Skipped;  // an encryption key
  std::optional<Algorithm> alg;
  if (has_alg == 1) {
    alg = algorithmFromName(alg_name);
    if (!alg) return JwkOutcome::Skipped;  // PS256, EdDSA, RSA-OAEP ...
  }

  if (kty == "RSA") {
    *key = rsaFromJwk(jwk, error);
  } else if (kty == "EC") {
    std::string_view crv;
    optionalString(jwk, "crv", &crv);
    if (crv == "P-256")
      *key = ecFromJwk(jwk, "prime256v1", 32, error);
    else if (crv == "P-384")
      *key = ecFromJwk(jwk, "secp384r1", 48, error);
    else
      return JwkOutcome::Skipped;
  } else if (kty == "oct") {
    std::string secret;
    if (!requiredField(jwk, "k", &secret)) return *error = "oct key needs k", JwkOutcome::Broken;
    *key = Key::fromSecret(secret, error);
  } else {
    return JwkOutcome::Skipped;
  }
  if (!*key) return JwkOutcome::Broken;
  if (has_kid == 1) (*key)->setKid(std::string(kid));
  if (alg && !(*key)->restrictTo(*alg))
    return *error = "alg does not fit the key type", JwkOutcome::Broken;
  return JwkOutcome::Usable;
}

bool anyKeyAccepts(const KeySet& keys, const std::vector<Algorithm>& algorithms) {
  for (const Key& key : keys.keys())
    for (Algorithm alg : algorithms)
      if (key.accepts(alg)) return true;
  return false;
}

}  // namespace

std::optional<Algorithm> algorithmFromName(std::string_view name) {
  for (size_t i = 0; i < kAlgorithms.size(); ++i)
    if (kAlgorithms[i].name == name) return static_cast<Algorithm>(i);
  return std::nullopt;
}

std::string_view algorithmName(Algorithm alg) { return info(alg).name; }

std::string_view reasonName(Reason reason) {
  switch (reason) {
    case Reason::Malformed: return "malformed";
    case Reason::UnsupportedAlgorithm: return "unsupported_algorithm";
    case Reason::AlgorithmNotAllowed: return "algorithm_not_allowed";
    case Reason::UnknownKey: return "unknown_key";
    case Reason::BadSignature: return "bad_signature";
    case Reason::Expired: return "expired";
    case Reason::NotYetValid: return "not_yet_valid";
    case Reason::BadIssuer: return "bad_issuer";
    case Reason::BadAudience: return "bad_audience";
    case Reason::MissingClaim: return "missing_claim";
  }
  return "unknown";
}

std::string base64UrlEncode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  size_t i = 0;
  auto at = [&](size_t k) { return uint32_t(static_cast<unsigned char>(in[k])); };
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
    out += kBase64Url[v >> 18];
    out += kBase64Url[(v >> 12) & 63];
    out += kBase64Url[(v >> 6) & 63];
    out += kBase64Url[v & 63];
  }
  if (in.size() - i == 1) {
    const uint32_t v = at(i) << 16;
    out += kBase64Url[v >> 18];
    out += kBase64Url[(v >> 12) & 63];
  } else if (in.size() - i == 2) {
    const uint32_t v = at(i) << 16 | at(i + 1) << 8;
    out += kBase64Url[v >> 18];
    out += kBase64Url[(v >> 12) & 63];
    out += kBase64Url[(v >> 6) & 63];
  }
  return out;
}

bool base64UrlDecode(std::string_view text, std::string* out) {
  out->clear();
  if (text.size() % 4 == 1) return false;  // no byte count leaves one character over
  out->reserve(text.size() / 4 * 3 + 2);
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    const int8_t v = kBase64UrlValue[static_cast<unsigned char>(c)];
    if (v < 0) return false;
    bits = (bits << 6 | uint32_t(v)) & 0xffffff;
    count += 6;
    if (count >= 8) {
      count -= 8;
      out->push_back(static_cast<char>((bits >> count) & 0xff));
    }
  }
  return (bits & ((1u << count) - 1)) == 0;
}

// ---- Key ----

std::optional<Key> Key::fromSecret(std::string_view secret, std::string* error) {
  if (secret.empty()) return fail<Key>(error, "empty HMAC secret");
  // A PEM public key used as an HMAC secret is how RS/HS confusion attacks begin.
  if (secret.substr(0, 11) == "-----BEGIN ")
    return fail<Key>(error, "HMAC secret is PEM text; use a PEM key file instead");
  Key key;
  key.type_ = Type::Hmac;
  key.secret_ = std::string(secret);
  return key;
}

std::optional<Key> Key::fromEvp(EVP_PKEY* pkey, std::string* error) {
  if (pkey == nullptr) return fail<Key>(error, "no key");
  Key key;
  if (EVP_PKEY_is_a(pkey, "RSA")) {
    if (EVP_PKEY_get_bits(pkey) < 2048) return fail<Key>(error, "RSA key under 2048 bits");
    key.type_ = Type::Rsa;
  } else if (EVP_PKEY_is_a(pkey, "EC")) {
    char name[64];
    size_t len = 0;
    if (EVP_PKEY_get_group_name(pkey, name, sizeof name, &len) != 1)
      return fail<Key>(error, "EC key without a named curve");
    const std::string_view curve(name, len);
    if (curve == "prime256v1" || curve == "P-256")
      key.type_ = Type::EcP256;
    else if (curve == "secp384r1" || curve == "P-384")
      key.type_ = Type::EcP384;
    else
      return fail<Key>(error, "EC key is not on P-256 or P-384");
  } else {
    return fail<Key>(error, "key is not RSA or EC");
  }
  if (EVP_PKEY_up_ref(pkey) != 1) return fail<Key>(error, "cannot share key");
  key.pkey_.reset(pkey, EVP_PKEY_free);
  return key;
}

std::optional<Key> Key::fromPem(std::string_view pem, std::string* error) {
  ErrorQueueMark mark;
  if (pem.size() > INT_MAX) return fail<Key>(error, "PEM too large");
  // Keys of any PEM form (SPKI, PKCS#1, PKCS#8, SEC1) through the decoder; encrypted ones fail
  // for want of a passphrase rather than prompting on a terminal.
  EVP_PKEY* decoded = nullptr;
  Owned<OSSL_DECODER_CTX> decoder(
      OSSL_DECODER_CTX_new_for_pkey(&decoded, "PEM", nullptr, nullptr, 0, nullptr, nullptr));
  const unsigned char* data = bytes(pem);
  size_t len = pem.size();
  if (decoder && OSSL_DECODER_from_data(decoder.get(), &data, &len) == 1 && decoded != nullptr) {
    Owned<EVP_PKEY> pkey(decoded);
    return fromEvp(pkey.get(), error);
  }
  Owned<BIO> bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  Owned<X509> cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (cert) {
    Owned<EVP_PKEY> pkey(X509_get_pubkey(cert.get()));
    return fromEvp(pkey.get(), error);
  }
  return fail<Key>(error, "no public key, certificate or unencrypted private key in PEM");
}

std::optional<Key> Key::fromPemFile(const std::string& path, std::string* error) {
  std::string pem;
  if (!readFile(path, &pem)) return fail<Key>(error, "cannot read " + path);
  std::string why;
  auto key = fromPem(pem, &why);
  if (!key) return fail<Key>(error, path + ": " + why);
  return key;
}

bool Key::restrictTo(Algorithm alg) {
  if (info(alg).family != type_) return false;
  only_ = alg;
  return true;
}

bool Key::accepts(Algorithm alg) const {
  return info(alg).family == type_ && (!only_ || *only_ == alg);
}

// ---- KeySet ----

std::optional<KeySet> KeySet::fromJwks(std::string_view json, std::string* error) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::dom::array list;
  if (parser.parse(json.data(), json.size()).get(root) != simdjson::SUCCESS)
    return fail<KeySet>(error, "JWKS is not valid JSON");
  if (root["keys"].get(list) != simdjson::SUCCESS)
    return fail<KeySet>(error, "JWKS has no \"keys\" array");
  std::vector<Key> keys;
  size_t index = 0;
  for (simdjson::dom::element element : list) {
    std::optional<Key> key;
    std::string why;
    switch (readJwk(element, &key, &why)) {
      case JwkOutcome::Usable: keys.push_back(std::move(*key)); break;
      case JwkOutcome::Skipped: break;
      case JwkOutcome::Broken:
        return fail<KeySet>(error, "JWKS key " + std::to_string(index) + ": " + why);
    }
    ++index;
  }
  if (keys.empty()) return fail<KeySet>(error, "JWKS has no usable signing key");
  return KeySet(std::move(keys));
}

std::optional<KeySet> KeySet::fromJwksFile(const std::string& path, std::string* error) {
  std::string json;
  if (!readFile(path, &json)) return fail<KeySet>(error, "cannot read " + path);
  std::string why;
  auto keys = fromJwks(json, &why);
  if (!keys) return fail<KeySet>(error, path + ": " + why);
  return keys;
}

const Key* KeySet::select(const std::optional<std::string>& kid, Algorithm alg, Error* err) const {
  bool found = false;
  if (kid) {
    for (const Key& key : keys_) {
      if (key.kid() != *kid) continue;
      found = true;
      if (key.accepts(alg)) return &key;
    }
  }
  // A secret or a PEM key has no kid; issuers that always send one still match it.
  if (!found && keys_.size() == 1 && (!kid || keys_[0].kid().empty())) {
    found = true;
    if (keys_[0].accepts(alg)) return &keys_[0];
  }
  if (!found)
    *err = error(Reason::UnknownKey, kid ? "no key with the token's kid" : "token has no kid");
  else
    *err = error(Reason::AlgorithmNotAllowed,
                 "the token's key is not for " + std::string(algorithmName(alg)));
  return nullptr;
}

std::optional<KeySet> KeySource::load(std::string* error) const {
  switch (kind) {
    case Kind::Secret: {
      auto key = Key::fromSecret(value, error);
      if (!key) return std::nullopt;
      return KeySet({std::move(*key)});
    }
    case Kind::PemFile: {
      auto key = Key::fromPemFile(value, error);
      if (!key) return std::nullopt;
      return KeySet({std::move(*key)});
    }
    case Kind::JwksFile: return KeySet::fromJwksFile(value, error);
  }
  return fail<KeySet>(error, "unknown key source");
}

// ---- verification ----

std::optional<std::string> Claims::claim(std::string_view name) const {
  for (const auto& [key, value] : entries_)
    if (key == name) return value;
  return std::nullopt;
}

Result<Claims> verify(std::string_view token, const KeySet& keys, const Policy& policy,
                      int64_t now) {
  if (token.size() > kMaxTokenSize) return error(Reason::Malformed, "token too long");
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return error(Reason::Malformed, "token is not three dot-separated parts");
  std::string header_json;
  std::string payload_json;
  std::string signature;
  if (!base64UrlDecode(token.substr(0, dot1), &header_json) ||
      !base64UrlDecode(token.substr(dot1 + 1, dot2 - dot1 - 1), &payload_json) ||
      !base64UrlDecode(token.substr(dot2 + 1), &signature))
    return error(Reason::Malformed, "token part is not base64url");

  Header header;
  if (auto err = readHeader(header_json, &header)) return std::move(*err);
  if (header.alg.size() == 4 && std::equal(header.alg.begin(), header.alg.end(), "none",
                                           [](char a, char b) { return (a | 0x20) == b; }))
    return error(Reason::UnsupportedAlgorithm, "alg none is refused");
  const std::optional<Algorithm> alg = algorithmFromName(header.alg);
  if (!alg) return error(Reason::UnsupportedAlgorithm, "unsupported alg");
  if (std::find(policy.algorithms.begin(), policy.algorithms.end(), *alg) ==
      policy.algorithms.end())
    return error(Reason::AlgorithmNotAllowed, std::string(algorithmName(*alg)) + " not allowed");
  Error err{Reason::UnknownKey, {}};
  const Key* key = keys.select(header.kid, *alg, &err);
  if (key == nullptr) return err;
  if (!verifySignature(*key, *alg, token.substr(0, dot2), signature))
    return error(Reason::BadSignature, "bad signature");

  Payload payload;
  if (auto perr = readPayload(payload_json, &payload)) return std::move(*perr);
  if (auto perr = checkClaims(payload, policy, now)) return std::move(*perr);
  Claims claims;
  claims.alg_ = *alg;
  claims.kid_ = std::move(header.kid);
  claims.json_ = std::move(payload_json);
  claims.entries_ = std::move(payload.entries);
  return claims;
}

std::shared_ptr<Verifier> Verifier::create(Policy policy, KeySource source, std::string* error) {
  if (policy.algorithms.empty()) {
    if (error != nullptr) *error = "no algorithms allowed";
    return nullptr;
  }
  auto keys = source.load(error);
  if (!keys) return nullptr;
  if (!anyKeyAccepts(*keys, policy.algorithms)) {
    if (error != nullptr) *error = "no key is for any of the allowed algorithms";
    return nullptr;
  }
  return std::make_shared<Verifier>(std::move(policy), std::move(source),
                                    std::make_shared<const KeySet>(std::move(*keys)));
}

std::shared_ptr<const KeySet> Verifier::keys() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return keys_;
}

Result<Claims> Verifier::verify(std::string_view token, int64_t now) const {
  const std::shared_ptr<const KeySet> current = keys();
  return jwt::verify(token, *current, policy_, now);
}

Result<Claims> Verifier::verify(std::string_view token) const {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return verify(token, std::chrono::duration_cast<std::chrono::seconds>(now).count());
}

bool Verifier::reload(std::string* error) {
  auto keys = source_.load(error);
  if (!keys) return false;
  if (!anyKeyAccepts(*keys, policy_.algorithms)) {
    if (error != nullptr) *error = "no key is for any of the allowed algorithms";
    return false;
  }
  auto fresh = std::make_shared<const KeySet>(std::move(*keys));
  std::lock_guard<std::mutex> lock(mutex_);
  keys_.swap(fresh);
  return true;  // the old set is released after the lock, by `fresh`
}

// ---- minting ----

std::optional<std::string> signSegments(Algorithm alg, const Key& key, std::string_view header_json,
                                        std::string_view payload_json, std::string* error) {
  if (!key.accepts(alg))
    return fail<std::string>(error, "key is not for " + std::string(algorithmName(alg)));
  std::string token = base64UrlEncode(header_json);
  token += '.';
  token += base64UrlEncode(payload_json);
  auto sig = signature(alg, key, token, error);
  if (!sig) return std::nullopt;
  token += '.';
  token += base64UrlEncode(*sig);
  return token;
}

std::optional<std::string> sign(Algorithm alg, const Key& key, std::string_view payload_json,
                                std::string* error) {
  std::string header = "{\"alg\":\"" + std::string(algorithmName(alg)) + "\",\"typ\":\"JWT\"";
  if (!key.kid().empty()) header += ",\"kid\":" + jsonString(key.kid());
  header += '}';
  return signSegments(alg, key, header, payload_json, error);
}

}  // namespace wsb::jwt
