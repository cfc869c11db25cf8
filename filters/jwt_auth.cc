// The auth.jwt filter: token sources, verification with key reload on an unknown kid, claims
// into attributes and upstream headers.
#include "filters/jwt_auth.h"

#include <simdjson.h>

#include <atomic>
#include <cctype>
#include <map>
#include <memory>
#include <optional>

#include "codec/http1.h"
#include "config/table_reader.h"
#include "filters/jwt.h"

namespace wsb::filters {

namespace {

namespace od = simdjson::ondemand;

constexpr uint16_t kPolicyViolation = 1008;
// A token with an unknown kid reads the key file again at most this often.
constexpr int64_t kReloadSpacingSeconds = 10;

struct TokenSource {
  enum class Kind { Query, Header, Cookie, Protocol, SocketioAuth, FirstMessage };
  Kind kind;
  std::string name;  // parameter, header, cookie or field path
};

struct JwtAuthSettings {
  std::vector<TokenSource> sources;  // without the first_message one
  std::optional<std::string> first_message_field;
  bool forward_first_message = false;
  Duration first_message_timeout{10000};
  std::vector<std::pair<std::string, std::string>> forward_claims;  // header, claim
  bool reloadable = false;                                          // keys come from a file
};

// What every connection of one factory shares.
struct JwtAuthShared {
  JwtAuthSettings settings;
  std::shared_ptr<jwt::Verifier> verifier;
  std::atomic<int64_t> last_reload{0};  // unix seconds
};

bool startsWithNoCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && http::iequals(text.substr(0, prefix.size()), prefix);
}

// The string at a dotted path in a JSON object ("data.token"); nullopt if absent or not a string.
std::optional<std::string> jsonString(std::string_view json, std::string_view path) {
  simdjson::padded_string padded(json);
  od::parser parser;
  od::document doc;
  if (parser.iterate(padded).get(doc) != simdjson::SUCCESS) return std::nullopt;
  od::value value;
  if (doc.get_value().get(value) != simdjson::SUCCESS) return std::nullopt;
  for (;;) {
    size_t dot = path.find('.');
    std::string_view key = path.substr(0, dot);
    od::object object;
    if (value.get_object().get(object) != simdjson::SUCCESS) return std::nullopt;
    od::value child;
    if (object.find_field_unordered(key).get(child) != simdjson::SUCCESS) return std::nullopt;
    value = child;
    if (dot == std::string_view::npos) break;
    path.remove_prefix(dot + 1);
  }
  std::string_view text;
  if (value.get_string().get(text) != simdjson::SUCCESS) return std::nullopt;
  return std::string(text);
}

// A Sec-WebSocket-Protocol entry carrying a token (see the header comment); `entries` gets the
// entries that carried it (the marker and the token, or the one prefixed entry).
std::optional<std::string> protocolToken(const http::Request& request,
                                         std::vector<std::string>* entries) {
  std::string_view marker;
  bool after_marker = false;
  for (const http::Header& h : request.headers) {
    if (!http::iequals(h.name, "sec-websocket-protocol")) continue;
    std::string_view rest = h.value;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view entry = rest.substr(0, comma);
      while (!entry.empty() && (entry.front() == ' ' || entry.front() == '\t'))
        entry.remove_prefix(1);
      while (!entry.empty() && (entry.back() == ' ' || entry.back() == '\t'))
        entry.remove_suffix(1);
      if (after_marker && !entry.empty()) {
        *entries = {std::string(marker), std::string(entry)};
        return std::string(entry);
      }
      after_marker = http::iequals(entry, "access_token") || http::iequals(entry, "bearer");
      if (after_marker) marker = entry;
      for (std::string_view prefix : {"access_token.", "bearer."}) {
        if (startsWithNoCase(entry, prefix) && entry.size() > prefix.size()) {
          *entries = {std::string(entry)};
          return std::string(entry.substr(prefix.size()));
        }
      }
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return std::nullopt;
}

// The token from one source; a token from Sec-WebSocket-Protocol also names its entries in
// `protocol_entries`.
std::optional<std::string> findToken(const TokenSource& source, const HandshakeContext& context,
                                     std::vector<std::string>* protocol_entries) {
  std::string value;
  switch (source.kind) {
    case TokenSource::Kind::Query:
      if (context.request.queryParam(source.name, &value) && !value.empty()) return value;
      return std::nullopt;
    case TokenSource::Kind::Header: {
      const std::string* header = context.request.header(source.name);
      if (header == nullptr) return std::nullopt;
      std::string_view text = *header;
      if (startsWithNoCase(text, "bearer ")) {
        text.remove_prefix(7);
      } else if (http::iequals(source.name, "authorization")) {
        return std::nullopt;  // another scheme (Basic ...) carries no JWT
      }
      while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
      if (text.empty()) return std::nullopt;
      return std::string(text);
    }
    case TokenSource::Kind::Cookie:
      if (context.request.cookie(source.name, &value) && !value.empty()) return value;
      return std::nullopt;
    case TokenSource::Kind::Protocol:
      return protocolToken(context.request, protocol_entries);
    case TokenSource::Kind::SocketioAuth:
      if (context.socketio_auth.empty()) return std::nullopt;
      return jsonString(context.socketio_auth, source.name);
    case TokenSource::Kind::FirstMessage:
      return std::nullopt;
  }
  return std::nullopt;
}

bool safeHeaderValue(std::string_view value) {
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return true;
}

bool isHeaderName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) ||
          std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos))
      return false;
  }
  return true;
}

class JwtAuthFilter final : public Filter {
 public:
  JwtAuthFilter(std::shared_ptr<JwtAuthShared> shared, FilterCallbacks& callbacks)
      : shared_(std::move(shared)), settings_(shared_->settings), callbacks_(callbacks) {}

  Status onHandshake(HandshakeContext& context) override {
    socketio_client_ = context.socketio_client;
    std::optional<std::string> token;
    std::vector<std::string> protocol_entries;
    for (const TokenSource& source : settings_.sources) {
      if ((token = findToken(source, context, &protocol_entries))) break;
    }
    if (!protocol_entries.empty()) callbacks_.consumeProtocols(std::move(protocol_entries));
    if (!token) {
      if (socketio_client_ && hasSocketioSource()) {
        return Status::Continue;  // the token may come in the CONNECT packet: onConnect decides
      }
      if (settings_.first_message_field) {
        awaiting_first_message_ = true;
        return Status::Continue;
      }
      return refuse(401, "missing token");
    }
    jwt::Result<jwt::Claims> claims = verify(*token);
    if (!claims || !accept(claims.value(), &context.upstream_headers))
      return refuse(403, "invalid token");
    return Status::Continue;
  }

  Status onConnect(HandshakeContext& context) override {
    // Stateless on purpose: over polling the CONNECT arrives in a later request, maybe on
    // another worker or instance, so the whole search runs again with the auth payload.
    if (!hasSocketioSource()) return Status::Continue;
    socketio_client_ = true;
    std::optional<std::string> token;
    std::vector<std::string> protocol_entries;  // already reported at the handshake
    for (const TokenSource& source : settings_.sources) {
      if ((token = findToken(source, context, &protocol_entries))) break;
    }
    if (!token) return refuse(401, "missing token");
    jwt::Result<jwt::Claims> claims = verify(*token);
    if (!claims || !accept(claims.value(), nullptr)) return refuse(403, "invalid token");
    return Status::Continue;
  }

  void onEstablished() override {
    if (!awaiting_first_message_ || settings_.first_message_timeout.count() == 0) return;
    timer_ = callbacks_.createTimer([this] { fail("missing token"); });
    timer_->arm(settings_.first_message_timeout);
  }

  Status onMessage(Message& message) override {
    if (!awaiting_first_message_) return Status::Continue;
    if (message.direction == Direction::ToClient) return Status::Drop;  // not authenticated yet
    awaiting_first_message_ = false;
    timer_.reset();
    std::optional<std::string> token;
    if (message.opcode == ws::Opcode::Text)
      token = jsonString(message.payload, *settings_.first_message_field);
    if (!token) return fail("missing token");
    jwt::Result<jwt::Claims> claims = verify(*token);
    if (!claims || !accept(claims.value(), nullptr)) return fail("invalid token");
    return settings_.forward_first_message ? Status::Continue : Status::Drop;
  }

  Status onEvent(Event& event) override {
    if (!awaiting_first_message_) return Status::Continue;
    if (event.direction == Direction::ToClient) return Status::Drop;
    // A Socket.IO client's events carry no first-message token: it authenticates in CONNECT.
    awaiting_first_message_ = false;
    timer_.reset();
    return fail("missing token");
  }

  void onClose(const CloseInfo&) override {
    awaiting_first_message_ = false;
    timer_.reset();
  }

 private:
  bool hasSocketioSource() const {
    for (const TokenSource& source : settings_.sources) {
      if (source.kind == TokenSource::Kind::SocketioAuth) return true;
    }
    return false;
  }

  Status refuse(int status, const char* message) {
    callbacks_.reject(status, socketio_client_ ? "unauthorized" : message);
    return Status::Stop;
  }

  Status fail(const char* reason) {
    awaiting_first_message_ = false;
    callbacks_.close(kPolicyViolation, reason);
    return Status::Drop;
  }

  jwt::Result<jwt::Claims> verify(const std::string& token) {
    int64_t now = callbacks_.clock().unixSeconds();
    jwt::Result<jwt::Claims> claims = shared_->verifier->verify(token, now);
    if (claims || claims.error().reason != jwt::Reason::UnknownKey || !settings_.reloadable)
      return claims;
    // Keys may have rotated: one connection reads the file again, the others keep going.
    int64_t last = shared_->last_reload.load();
    if (now - last < kReloadSpacingSeconds ||
        !shared_->last_reload.compare_exchange_strong(last, now))
      return claims;
    std::string error;
    if (!shared_->verifier->reload(&error)) return claims;
    return shared_->verifier->verify(token, now);
  }

  // Claims into attributes and, when `headers` is given, into forwarded headers.
  bool accept(const jwt::Claims& claims, http::Headers* headers) {
    std::vector<std::pair<std::string, std::string>> forwarded;
    if (headers != nullptr) {
      for (const auto& [header, claim] : settings_.forward_claims) {
        std::optional<std::string> value = claims.claim(claim);
        if (!value) continue;
        if (!safeHeaderValue(*value)) return false;
        forwarded.emplace_back(header, std::move(*value));
      }
    }
    Attributes& attributes = callbacks_.attributes();
    simdjson::padded_string padded(claims.json());
    od::parser parser;
    od::document doc;
    od::object object;
    if (parser.iterate(padded).get(doc) == simdjson::SUCCESS &&
        doc.get_object().get(object) == simdjson::SUCCESS) {
      for (auto result : object) {
        od::field field;
        std::string_view name;
        od::json_type type;
        if (std::move(result).get(field) != simdjson::SUCCESS ||
            field.unescaped_key().get(name) != simdjson::SUCCESS ||
            field.value().type().get(type) != simdjson::SUCCESS)
          break;
        if (type != od::json_type::string && type != od::json_type::number &&
            type != od::json_type::boolean)
          continue;
        std::string key(name);
        if (std::optional<std::string> value = claims.claim(key))
          attributes.insert_or_assign("jwt." + key, std::move(*value));
      }
    }
    if (headers != nullptr) {
      for (auto& [name, value] : forwarded) headers->push_back({name, std::move(value)});
    }
    return true;
  }

  std::shared_ptr<JwtAuthShared> shared_;
  const JwtAuthSettings& settings_;
  FilterCallbacks& callbacks_;
  std::unique_ptr<FilterCallbacks::Timer> timer_;
  bool socketio_client_ = false;
  bool awaiting_first_message_ = false;
};

class JwtAuthFactory final : public FilterFactory {
 public:
  explicit JwtAuthFactory(std::shared_ptr<JwtAuthShared> shared) : shared_(std::move(shared)) {}
  std::unique_ptr<Filter> create(FilterCallbacks& callbacks) const override {
    return std::make_unique<JwtAuthFilter>(shared_, callbacks);
  }
  std::vector<std::string> ownedUpstreamHeaders() const override {
    std::vector<std::string> names;
    for (const auto& [header, claim] : shared_->settings.forward_claims) names.push_back(header);
    return names;
  }

 private:
  std::shared_ptr<JwtAuthShared> shared_;
};

std::optional<TokenSource> parseSource(std::string_view text) {
  using Kind = TokenSource::Kind;
  if (text == "protocol") return TokenSource{Kind::Protocol, ""};
  size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) return std::nullopt;
  std::string_view kind = text.substr(0, colon);
  std::string name(text.substr(colon + 1));
  if (kind == "query") return TokenSource{Kind::Query, name};
  if (kind == "header" && isHeaderName(name)) return TokenSource{Kind::Header, name};
  if (kind == "cookie") return TokenSource{Kind::Cookie, name};
  bool path_ok = name.front() != '.' && name.back() != '.' && name.find("..") == std::string::npos;
  if (kind == "socketio_auth" && path_ok) return TokenSource{Kind::SocketioAuth, name};
  if (kind == "first_message" && path_ok) return TokenSource{Kind::FirstMessage, name};
  return std::nullopt;
}

}  // namespace

FactoryPtr buildJwtAuthFactory(const config::FilterSpec& spec, std::vector<std::string>* errors) {
  size_t before = errors->size();
  config::TableReader reader(*spec.table, "[filter." + spec.name + "]", spec.pos.file, errors);
  reader.markRead("type");
  auto shared = std::make_shared<JwtAuthShared>();
  JwtAuthSettings& s = shared->settings;

  // Keys: exactly one source.
  jwt::KeySource keys;
  const toml::node* key_node = nullptr;
  int key_sources = 0;
  if (std::optional<std::string> secret = reader.string("secret")) {
    keys = {jwt::KeySource::Kind::Secret, std::move(*secret)};
    key_node = reader.node("secret");
    ++key_sources;
  }
  if (std::optional<std::string> pem = reader.filePath("public_key")) {
    keys = {jwt::KeySource::Kind::PemFile, std::move(*pem)};
    key_node = reader.node("public_key");
    ++key_sources;
  }
  if (std::optional<std::string> jwks = reader.filePath("jwks")) {
    keys = {jwt::KeySource::Kind::JwksFile, std::move(*jwks)};
    key_node = reader.node("jwks");
    ++key_sources;
  }
  bool key_keys_present = reader.has("secret") || reader.has("public_key") || reader.has("jwks");
  if (key_sources > 1) {
    reader.error(key_node, "use one of 'secret', 'public_key' and 'jwks'");
  } else if (!key_keys_present) {
    reader.error(nullptr, "[filter." + spec.name + "] needs 'secret', 'public_key' or 'jwks'");
  }
  s.reloadable = keys.kind != jwt::KeySource::Kind::Secret;

  // Policy.
  jwt::Policy policy;
  std::vector<const toml::node*> nodes;
  std::vector<std::string> algorithms = reader.strings("algorithms", &nodes);
  if (!reader.has("algorithms"))
    reader.error(nullptr, "missing required key 'algorithms' in [filter." + spec.name +
                              "] (such as [\"HS256\"])");
  for (size_t i = 0; i < algorithms.size(); ++i) {
    if (std::optional<jwt::Algorithm> alg = jwt::algorithmFromName(algorithms[i])) {
      policy.algorithms.push_back(*alg);
    } else {
      reader.error(nodes[i], "'" + algorithms[i] +
                                 "' is not a supported algorithm (HS256, HS384, HS512, RS256, "
                                 "RS384, RS512, ES256, ES384)");
    }
  }
  if (const toml::node* node = reader.node("algorithms");
      node && node->as_array() && node->as_array()->empty())
    reader.error(node, "'algorithms' must not be empty");
  policy.issuer = reader.string("issuer", "");
  if (const toml::node* audience = reader.node("audience"); audience && audience->is_string()) {
    policy.audiences.push_back(reader.string("audience", ""));
  } else {
    policy.audiences = reader.strings("audience");
  }
  policy.leeway =
      std::chrono::duration_cast<std::chrono::seconds>(reader.duration("leeway", Duration{0}));
  policy.required_claims = reader.strings("required_claims");

  // Where tokens come from.
  nodes.clear();
  std::vector<std::string> sources = reader.strings("token_from", &nodes);
  if (!reader.has("token_from")) {
    sources = {"header:authorization", "query:token", "socketio_auth:token"};
    nodes.assign(sources.size(), nullptr);
  }
  for (size_t i = 0; i < sources.size(); ++i) {
    std::optional<TokenSource> source = parseSource(sources[i]);
    if (!source) {
      reader.error(nodes[i],
                   "'" + sources[i] +
                       "' is not a token source (query:NAME, header:NAME, "
                       "cookie:NAME, protocol, socketio_auth:FIELD, first_message:FIELD)");
    } else if (source->kind == TokenSource::Kind::FirstMessage) {
      if (i + 1 != sources.size())
        reader.error(nodes[i], "'" + sources[i] + "' must come last in 'token_from'");
      s.first_message_field = source->name;
    } else {
      s.sources.push_back(std::move(*source));
    }
  }
  if (const toml::node* node = reader.node("token_from");
      node && node->as_array() && node->as_array()->empty())
    reader.error(node, "'token_from' must not be empty");
  s.forward_first_message = reader.boolean("forward_first_message", false);
  s.first_message_timeout = reader.duration("first_message_timeout", s.first_message_timeout);

  std::map<std::string, const toml::node*> claim_nodes;
  for (auto& [header, claim] : reader.stringMap("forward_claims", &claim_nodes)) {
    if (!isHeaderName(header)) {
      reader.error(claim_nodes[header], "'" + header + "' is not a header name");
      continue;
    }
    s.forward_claims.emplace_back(header, claim);
  }
  reader.finish();
  if (errors->size() != before) return nullptr;

  std::string problem;
  shared->verifier = jwt::Verifier::create(std::move(policy), std::move(keys), &problem);
  if (shared->verifier == nullptr) {
    reader.error(key_node, problem);
    return nullptr;
  }
  return std::make_shared<JwtAuthFactory>(std::move(shared));
}

}  // namespace wsb::filters
