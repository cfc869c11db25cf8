// JSON Web Token verification and minting (JWS compact form; HS*, RS*, ES256/384) on OpenSSL 3.
#pragma once

#include <openssl/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace wsb::jwt {

// `none` has no value here: it cannot be allowed, only refused.
enum class Algorithm : uint8_t { HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384 };

std::optional<Algorithm> algorithmFromName(std::string_view name);
std::string_view algorithmName(Algorithm alg);

enum class Reason : uint8_t {
  Malformed,             // not three base64url segments of JSON objects, or a claim of bad type
  UnsupportedAlgorithm,  // alg none, or an alg this code does not implement
  AlgorithmNotAllowed,   // not in the allow-list, or not one the chosen key is for
  UnknownKey,            // no key for the token's kid
  BadSignature,
  Expired,
  NotYetValid,
  BadIssuer,
  BadAudience,
  MissingClaim,
};

// "malformed", "unsupported_algorithm", ... for logs and JSON error bodies.
std::string_view reasonName(Reason reason);

struct Error {
  Reason reason;
  std::string message;  // short; never contains the token or its parts
};

// A value or the reason there is none.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  const T& value() const { return std::get<0>(v_); }
  T& value() { return std::get<0>(v_); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Base64url without padding (RFC 7515 section 2). Decoding is strict: no padding, no other
// characters, and unused trailing bits must be zero, so each byte string has one encoding.
std::string base64UrlEncode(std::string_view bytes);
bool base64UrlDecode(std::string_view text, std::string* out);

// One key: an HMAC secret, or an RSA or EC key (public, or private for signing). A key only
// works for its own family of algorithms (an HMAC key for HS*, an RSA key for RS*, an EC key for
// the ES* of its curve), so an RSA public key can never be used as an HMAC secret.
class Key {
 public:
  enum class Type : uint8_t { Hmac, Rsa, EcP256, EcP384 };

  // An HMAC secret (any bytes, not empty; PEM text is refused as the misconfiguration it is).
  static std::optional<Key> fromSecret(std::string_view secret, std::string* error);
  // PEM text of a public key, an X.509 certificate, or an unencrypted private key.
  static std::optional<Key> fromPem(std::string_view pem, std::string* error);
  static std::optional<Key> fromPemFile(const std::string& path, std::string* error);
  // Shares `pkey` (takes its own reference). RSA keys under 2048 bits are refused (RFC 7518).
  static std::optional<Key> fromEvp(EVP_PKEY* pkey, std::string* error);

  Type type() const { return type_; }
  const std::string& kid() const { return kid_; }
  void setKid(std::string kid) { kid_ = std::move(kid); }
  // Limits the key to one algorithm (a JWK's "alg"); false if that is not one of its family.
  bool restrictTo(Algorithm alg);
  bool accepts(Algorithm alg) const;

  const std::string& secret() const { return secret_; }  // Hmac only
  EVP_PKEY* pkey() const { return pkey_.get(); }         // Rsa and Ec* only

 private:
  Key() = default;

  Type type_ = Type::Hmac;
  std::string secret_;
  std::shared_ptr<EVP_PKEY> pkey_;
  std::string kid_;
  std::optional<Algorithm> only_;
};

// The keys a verifier chooses from by the token's `kid`.
class KeySet {
 public:
  KeySet() = default;
  explicit KeySet(std::vector<Key> keys) : keys_(std::move(keys)) {}

  // A JWK Set (RFC 7517): RSA (n, e), EC (crv P-256/P-384, x, y) and oct (k) keys with optional
  // kid, alg and use. Keys for encryption, other key types and curves, and algorithms this code
  // does not implement are skipped; a broken key of a supported type is an error, and so is a
  // set left with no key.
  static std::optional<KeySet> fromJwks(std::string_view json, std::string* error);
  static std::optional<KeySet> fromJwksFile(const std::string& path, std::string* error);

  const std::vector<Key>& keys() const { return keys_; }

  // The key for a token with this header. A token with a kid gets the key with that kid (or the
  // one key of a set whose only key has no kid); a token without one gets the only key of a
  // one-key set. Null with UnknownKey or AlgorithmNotAllowed in `error` otherwise.
  const Key* select(const std::optional<std::string>& kid, Algorithm alg, Error* error) const;

 private:
  std::vector<Key> keys_;
};

// Where a verifier's keys come from, so they can be read again after a rotation.
struct KeySource {
  enum class Kind : uint8_t { Secret, PemFile, JwksFile };
  Kind kind = Kind::Secret;
  std::string value;  // the secret, or the file's path

  std::optional<KeySet> load(std::string* error) const;
};

struct Policy {
  std::vector<Algorithm> algorithms;         // the allow-list; a token with another alg is refused
  std::string issuer;                        // empty: any; otherwise iss must equal it exactly
  std::vector<std::string> audiences;        // empty: any; otherwise aud must contain one of them
  std::chrono::seconds leeway{0};            // slack for exp and nbf against clock skew
  std::vector<std::string> required_claims;  // must be present, of any type
};

// A verified token's header fields and payload.
class Claims {
 public:
  Algorithm algorithm() const { return alg_; }
  const std::optional<std::string>& kid() const { return kid_; }
  // The payload as decoded: a JSON object.
  const std::string& json() const { return json_; }
  // A top-level claim: a string claim's value (unescaped), or the compact JSON of any other.
  // Values are the issuer's bytes: check them before putting them in a header.
  std::optional<std::string> claim(std::string_view name) const;

 private:
  friend Result<Claims> verify(std::string_view, const KeySet&, const Policy&, int64_t);
  Algorithm alg_ = Algorithm::HS256;
  std::optional<std::string> kid_;
  std::string json_;
  std::vector<std::pair<std::string, std::string>> entries_;  // name, value as claim() has it
};

// Checks a compact JWS token's signature with `keys` and its claims against `policy` at `now`
// (seconds since the Unix epoch).
Result<Claims> verify(std::string_view token, const KeySet& keys, const Policy& policy,
                      int64_t now);

// A policy and the current keys, shared by every connection of a filter; verify() may run on
// many threads while reload() swaps the keys in.
class Verifier {
 public:
  // Null with `error` set when the keys cannot be loaded, the allow-list is empty, or no key
  // accepts any allowed algorithm.
  static std::shared_ptr<Verifier> create(Policy policy, KeySource source, std::string* error);

  Result<Claims> verify(std::string_view token, int64_t now) const;
  Result<Claims> verify(std::string_view token) const;  // at the system clock's now

  // Reads the key source again (a rotated JWKS or PEM file). On failure keeps the old keys.
  bool reload(std::string* error);

  std::shared_ptr<const KeySet> keys() const;
  const Policy& policy() const { return policy_; }

  Verifier(Policy policy, KeySource source, std::shared_ptr<const KeySet> keys)
      : policy_(std::move(policy)), source_(std::move(source)), keys_(std::move(keys)) {}

 private:
  const Policy policy_;
  const KeySource source_;
  mutable std::mutex mutex_;  // held only to copy or swap keys_
  std::shared_ptr<const KeySet> keys_;
};

// Mints a token with header {"alg":..,"typ":"JWT"} (and the key's kid, if it has one). `key`
// must hold a private key for RS* and ES*. Payload is JSON object text, used as given.
std::optional<std::string> sign(Algorithm alg, const Key& key, std::string_view payload_json,
                                std::string* error = nullptr);
// Mints a token with any header text: for tests that need odd headers.
std::optional<std::string> signSegments(Algorithm alg, const Key& key, std::string_view header_json,
                                        std::string_view payload_json,
                                        std::string* error = nullptr);

}  // namespace wsb::jwt
