// EioSession: Engine.IO v4 / v3 server sessions over polling and websocket, and the sid registry.
#include "proxy/eio_server.h"

#include <event2/buffer.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "proxy/evbuffer_view.h"

namespace wsb::proxy {

namespace err = eio::server_error;

namespace {
std::string textResponse(int status, std::string_view content_type, std::string_view body,
                         bool keep_alive, const http::Headers& extra) {
  http::Response res;
  res.status = status;
  res.headers.reserve(3 + extra.size());
  res.headers.push_back({"Content-Type", std::string(content_type)});
  res.headers.push_back({"Cache-Control", "no-store"});
  res.headers.push_back({"Connection", keep_alive ? "keep-alive" : "close"});
  res.headers.insert(res.headers.end(), extra.begin(), extra.end());
  res.body.assign(body);
  return http::serializeResponse(res);
}

constexpr std::string_view kPayloadType = "text/plain; charset=UTF-8";
constexpr std::string_view kBinaryPayloadType = "application/octet-stream";
constexpr size_t kMaxQueuedBytes = 16u << 20;
}  // namespace

// ---- pure checks ----

EioRequest checkEioRequest(const http::Request& request,
                           const std::vector<config::Transport>& transports, bool allow_eio3) {
  EioRequest out;
  out.upgrade = http::isWebSocketUpgrade(request);
  std::string transport, version;
  request.queryParam("transport", &transport);
  if (transport == "polling") {
    out.transport = config::Transport::Polling;
  } else if (transport == "websocket") {
    out.transport = config::Transport::WebSocket;
  } else {
    out.error = &err::kTransportUnknown;
    return out;
  }
  if (std::find(transports.begin(), transports.end(), out.transport) == transports.end()) {
    out.error = &err::kTransportUnknown;
    return out;
  }
  if (request.queryParam("sid", &out.sid) && !out.sid.empty()) return out;
  out.sid.clear();
  if (request.method != "GET") {
    out.error = &err::kBadHandshakeMethod;
  } else if (out.transport == config::Transport::WebSocket && !out.upgrade) {
    out.error = &err::kBadRequest;
  } else if (!request.queryParam("EIO", &version) ||
             (version != "4" && !(version == "3" && allow_eio3))) {
    out.error = &err::kUnsupportedProtocolVersion;
  } else if (version == "3") {
    out.version = eio::Version::V3;
  }
  return out;
}

std::string eioErrorResponse(const eio::ServerError& error, bool upgrade, bool keep_alive,
                             const http::Headers& extra) {
  if (upgrade) {
    // engine.io writes this by hand on the socket and destroys it.
    std::string body(error.message);
    return "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-type: text/html\r\n"
           "Content-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  return textResponse(error.status, "application/json", eio::errorBody(error), keep_alive, extra);
}

http::Headers corsHeaders(const std::vector<std::string>& allowed, const http::Request& request) {
  http::Headers out;
  const std::string* origin = request.header("origin");
  if (origin == nullptr || allowed.empty()) return out;
  bool ok = std::any_of(allowed.begin(), allowed.end(),
                        [&](const std::string& a) { return a == "*" || a == *origin; });
  if (!ok) return out;
  out.push_back({"Access-Control-Allow-Origin", *origin});
  out.push_back({"Access-Control-Allow-Credentials", "true"});
  out.push_back({"Vary", "Origin"});
  return out;
}

std::string makeBase64Id() {
  unsigned char bytes[15];
  if (RAND_bytes(bytes, sizeof bytes) != 1) __builtin_trap();  // a guessable sid is a hijack
  std::string out;
  eio::appendBase64(out, std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

std::string appQuery(std::string_view query) {
  static constexpr std::string_view kEngineParams[] = {"EIO", "transport", "sid", "t", "b64", "j"};
  std::string out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    std::string_view key = pair.substr(0, pair.find('='));
    if (pair.empty() || std::find(std::begin(kEngineParams), std::end(kEngineParams), key) !=
                            std::end(kEngineParams)) {
      continue;
    }
    if (!out.empty()) out += '&';
    out.append(pair);
  }
  return out;
}

// ---- registry ----

EioRegistry& EioRegistry::instance() {
  // Never destroyed: workers may still look sids up while the process exits.
  static auto* registry = new EioRegistry;
  return *registry;
}

void EioRegistry::add(const std::string& sid, Dispatcher* owner, EioSession* session) {
  std::lock_guard lock(mutex_);
  sessions_[sid] = {owner, session};
}

void EioRegistry::remove(const std::string& sid) {
  std::lock_guard lock(mutex_);
  sessions_.erase(sid);
}

bool EioRegistry::find(const std::string& sid, Dispatcher* here, Dispatcher** owner,
                       EioSession** session) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(sid);
  if (it == sessions_.end()) return false;
  *owner = it->second.owner;
  *session = it->second.owner == here ? it->second.session : nullptr;
  return true;
}

size_t EioRegistry::size() {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

// ---- session ----

EioSession::EioSession(Dispatcher& dispatcher, MaskSource& masks, std::string sid,
                       EioSessionOptions options, EioApp& app)
    : dispatcher_(dispatcher),
      masks_(masks),
      sid_(std::move(sid)),
      options_(options),
      app_(app),
      ping_timer_(dispatcher, [this] { onPingDue(); }),
      pong_timer_(dispatcher, [this] { endSession("ping timeout", Closer::Server); }),
      upgrade_timer_(dispatcher, [this] { dropProbe("upgrade timeout"); }) {}

EioSession::~EioSession() {
  if (registered_) EioRegistry::instance().remove(sid_);
}

void EioSession::startHeartbeat() {
  if (options_.version == eio::Version::V4) {
    ping_timer_.arm(options_.ping_interval);
  } else {  // v3: the client must ping within pingInterval + pingTimeout, across upgrades too
    pong_timer_.arm(options_.ping_interval + options_.ping_timeout);
  }
}

std::string EioSession::openPolling(bool keep_alive, const http::Headers& extra) {
  EioRegistry::instance().add(sid_, &dispatcher_, this);
  registered_ = true;
  startHeartbeat();
  eio::Handshake handshake;
  handshake.sid = sid_;
  if (options_.allow_upgrade) handshake.upgrades.push_back("websocket");
  handshake.ping_interval = static_cast<uint64_t>(options_.ping_interval.count());
  handshake.ping_timeout = static_cast<uint64_t>(options_.ping_timeout.count());
  handshake.max_payload = options_.max_payload;
  std::string open;
  eio::appendHandshake(open, handshake);
  const eio::Packet packet{eio::PacketType::Open, false, open};
  std::string body;
  eio::encodePayload(options_.version, eio::PayloadFormat::Text, {&packet, 1}, body);
  return textResponse(200, kPayloadType, body, keep_alive, extra);
}

void EioSession::openWebSocket(bufferevent* bev) {
  EioRegistry::instance().add(sid_, &dispatcher_, this);
  registered_ = true;
  ws_ = std::make_unique<WsEndpoint>(dispatcher_, bev, WsEndpoint::Side::Client, options_.ws,
                                     masks_, *this);
  eio::Handshake handshake;
  handshake.sid = sid_;  // no upgrades from websocket
  handshake.ping_interval = static_cast<uint64_t>(options_.ping_interval.count());
  handshake.ping_timeout = static_cast<uint64_t>(options_.ping_timeout.count());
  handshake.max_payload = options_.max_payload;
  std::string open = "0";
  eio::appendHandshake(open, handshake);
  ws_->sendMessage(ws::Opcode::Text, open);
  startHeartbeat();
  ws_->start();
}

// ---- polling ----

void EioSession::handlePoll(const http::Request& request, const http::Headers& extra,
                            uint64_t poll_id, PollResponder respond) {
  bool keep_alive = request.keep_alive;
  if (closed_) {
    respond(eioErrorResponse(err::kSessionIdUnknown, false, keep_alive, extra));
    return;
  }
  if (ws_ != nullptr) {  // upgraded: polling is over for this session
    respond(eioErrorResponse(err::kBadRequest, false, keep_alive, extra));
    return;
  }
  if (request.method == "GET") {
    if (pending_get_) {
      // Duplicate poll: the ref server answers 400 and closes, the held GET gets the close.
      respond(eioErrorResponse(err::kBadRequest, false, keep_alive, extra));
      endSession("duplicate poll", Closer::Server);
      return;
    }
    pending_get_ = std::move(respond);
    pending_get_id_ = poll_id;
    pending_keep_alive_ = keep_alive;
    pending_extra_ = extra;
    if (probed_) {
      answerPoll(eio::PacketType::Noop);  // the upgrade is under way: end this polling cycle
    } else if (!queue_.empty()) {
      flushPoll();
    }
    return;
  }
  if (request.method != "POST") {
    respond(eioErrorResponse(err::kBadRequest, false, keep_alive, extra));
    return;
  }
  const std::string* type = request.header("content-type");
  const bool binary_body =
      type != nullptr && type->find("application/octet-stream") != std::string::npos;
  if (binary_body && options_.version == eio::Version::V4) {
    // v4 payloads are text; a binary body is a v3 client or garbage.
    respond(eioErrorResponse(err::kBadRequest, false, keep_alive, extra));
    endSession("binary polling payload", Closer::Server);
    return;
  }
  std::vector<eio::Packet> packets;
  eio::DecodeError error = eio::decodePayload(
      options_.version, binary_body ? eio::PayloadFormat::Binary : eio::PayloadFormat::Text,
      request.body, options_.max_payload, packets, scratch_);
  if (error == eio::DecodeError::TooLarge) {
    respond(textResponse(eio::kPayloadTooLargeStatus, "application/json",
                         "{\"code\":1,\"message\":\"payload too large\"}", keep_alive, extra));
    return;
  }
  // Answer first: a packet may close the session, the POST still succeeded.
  respond(textResponse(200, "text/html", "ok", keep_alive, extra));
  for (const auto& packet : packets) {
    if (closed_) return;
    onPacket(packet);
  }
  if (error != eio::DecodeError::None && !closed_) {
    spdlog::debug("eio {}: bad polling payload: {}", sid_, eio::describe(error));
    endSession("parse error", Closer::Server);
  }
}

void EioSession::pollAborted(uint64_t poll_id) {
  if (!pending_get_ || pending_get_id_ != poll_id || closed_) return;
  pending_get_ = nullptr;
  endSession("poll connection closed prematurely", Closer::Client);
}

void EioSession::answerPoll(std::string body, std::string_view content_type) {
  if (!pending_get_) return;
  PollResponder respond = std::move(pending_get_);
  pending_get_ = nullptr;
  respond(textResponse(200, content_type, body, pending_keep_alive_, pending_extra_));
}

void EioSession::answerPoll(eio::PacketType type) {
  const eio::Packet packet{type, false, {}};
  std::string body;
  eio::encodePayload(options_.version, eio::PayloadFormat::Text, {&packet, 1}, body);
  answerPoll(std::move(body), kPayloadType);
}

void EioSession::flushPoll() {
  if (!pending_get_ || queue_.empty() || probed_) return;
  std::vector<eio::Packet> packets;
  packets.reserve(queue_.size());
  for (const auto& q : queue_) packets.push_back({q.type, q.binary, q.data});
  const eio::PayloadFormat format =
      eio::responseFormat(options_.version, options_.supports_binary, packets);
  std::string body;
  eio::encodePayload(options_.version, format, packets, body);
  const bool was_congested = congested();
  queue_.clear();
  queued_bytes_ = 0;
  answerPoll(std::move(body),
             format == eio::PayloadFormat::Binary ? kBinaryPayloadType : kPayloadType);
  if (was_congested && !closed_) app_.onEioDrained();
}

bool EioSession::congested() const {
  return ws_ != nullptr ? ws_->congested() : queued_bytes_ > kPollHighWater;
}

void EioSession::pauseReading() {
  reading_paused_ = true;
  if (ws_ != nullptr) ws_->pauseReading();
}

void EioSession::resumeReading() {
  reading_paused_ = false;
  if (ws_ != nullptr) ws_->resumeReading();
}

void EioSession::onWsDrained(WsEndpoint& endpoint) {
  if (&endpoint == ws_.get() && !closed_) app_.onEioDrained();
}

// ---- sending ----

void EioSession::enqueue(eio::PacketType type, std::string_view data, bool binary) {
  if (closed_) return;
  if (ws_ != nullptr) {
    if (binary) {
      const std::string_view prefix = eio::binaryFramePrefix(options_.version, type);
      if (prefix.empty()) {
        ws_->sendMessage(ws::Opcode::Binary, data);
      } else {
        ws_->sendMessage(ws::Opcode::Binary, std::string(prefix) + std::string(data));
      }
    } else {
      std::string text;
      eio::appendText(text, type, data);
      ws_->sendMessage(ws::Opcode::Text, text);
    }
    return;
  }
  queued_bytes_ += data.size();
  if (queued_bytes_ > kMaxQueuedBytes) {
    // A polling client that stops fetching must not make us buffer without bound.
    endSession("client too slow", Closer::Server);
    return;
  }
  queue_.push_back({type, binary, std::string(data)});
  flushPoll();
}

void EioSession::send(std::string_view text) {
  countMessage(Flow::ToClient, text.size());
  enqueue(eio::PacketType::Message, text, false);
}

void EioSession::sendBinary(std::string_view bytes) {
  countMessage(Flow::ToClient, bytes.size());
  enqueue(eio::PacketType::Message, bytes, true);
}

// ---- receiving ----

void EioSession::onPacket(const eio::Packet& packet) {
  switch (packet.type) {
    case eio::PacketType::Message:
      countMessage(Flow::ToUpstream, packet.data.size());
      app_.onEioMessage(packet.data, packet.binary);
      return;
    case eio::PacketType::Pong:
      if (options_.version == eio::Version::V3) {  // v3 servers never ping
        endSession("invalid heartbeat direction", Closer::Server);
        return;
      }
      pong_timer_.cancel();
      ping_timer_.arm(options_.ping_interval);
      return;
    case eio::PacketType::Close:
      endSession("client closed the session", Closer::Client);
      return;
    case eio::PacketType::Noop:
      return;
    case eio::PacketType::Ping:
      if (options_.version == eio::Version::V3) {  // the client's heartbeat: answered, rearmed
        pong_timer_.arm(options_.ping_interval + options_.ping_timeout);
        enqueue(eio::PacketType::Pong, packet.data, false);
        return;
      }
      // v4: only the server pings (probes go to the probe socket)
      endSession("invalid heartbeat direction", Closer::Server);
      return;
    case eio::PacketType::Open:
    case eio::PacketType::Upgrade:
      endSession("unexpected packet", Closer::Server);
      return;
  }
}

void EioSession::onPingDue() {
  if (closed_) return;
  enqueue(eio::PacketType::Ping, {}, false);
  pong_timer_.arm(options_.ping_timeout);
}

// ---- websocket transport and the upgrade ----

void EioSession::attachWebSocket(bufferevent* bev) {
  auto endpoint = std::make_unique<WsEndpoint>(dispatcher_, bev, WsEndpoint::Side::Client,
                                               options_.ws, masks_, *this);
  if (closed_ || ws_ != nullptr || probe_ != nullptr || !options_.allow_upgrade) {
    // One websocket per session: the ref server completes the 101, then closes it.
    endpoint->start();
    endpoint->sendClose(ws::close_code::kNormal, "transport had already been upgraded");
    retire(std::move(endpoint));
    return;
  }
  probe_ = std::move(endpoint);
  probed_ = false;
  upgrade_timer_.arm(options_.upgrade_timeout);
  probe_->start();
}

void EioSession::finishUpgrade() {
  upgrade_timer_.cancel();
  ws_ = std::move(probe_);
  if (reading_paused_) ws_->pauseReading();
  probed_ = false;
  answerPoll(eio::PacketType::Noop);
  // Whatever waited for a GET goes over the websocket now, in order.
  std::vector<Queued> queued = std::move(queue_);
  queue_.clear();
  queued_bytes_ = 0;
  for (const auto& q : queued) enqueue(q.type, q.data, q.binary);
}

void EioSession::dropProbe(std::string_view why) {
  if (probe_ == nullptr) return;
  spdlog::debug("eio {}: upgrade abandoned: {}", sid_, why);
  upgrade_timer_.cancel();
  probed_ = false;
  probe_->sendClose(ws::close_code::kNormal, why);
  retire(std::move(probe_));
  flushPoll();
}

void EioSession::retire(std::unique_ptr<WsEndpoint> endpoint) {
  retired_.push_back(std::move(endpoint));
}

void EioSession::onWsMessage(WsEndpoint& from, ws::Opcode opcode, evbuffer* payload) {
  if (closed_) return;
  eio::Packet packet;
  eio::DecodeError error = eio::decodeFrame(options_.version, opcode == ws::Opcode::Binary,
                                            viewOf(payload), &packet, &scratch_);
  if (&from == probe_.get()) {
    if (error == eio::DecodeError::None && packet.type == eio::PacketType::Ping &&
        packet.data == "probe" && !probed_) {
      probe_->sendMessage(ws::Opcode::Text, "3probe");
      probed_ = true;
      answerPoll(eio::PacketType::Noop);
    } else if (error == eio::DecodeError::None && packet.type == eio::PacketType::Upgrade &&
               probed_) {
      finishUpgrade();
    } else {
      dropProbe("unexpected packet during the upgrade");
    }
    return;
  }
  if (&from != ws_.get()) return;
  if (error != eio::DecodeError::None) {
    spdlog::debug("eio {}: bad packet: {}", sid_, eio::describe(error));
    endSession("parse error", Closer::Server);
    return;
  }
  onPacket(packet);
}

void EioSession::onWsCloseFrame(WsEndpoint& from, uint16_t code, std::string_view) {
  from.sendClose(code == ws::close_code::kNoStatus ? ws::close_code::kNormal : code, "");
  if (&from == probe_.get()) {
    dropProbe("probe closed");
  } else if (&from == ws_.get()) {
    endSession("transport close", Closer::Client);
  }
}

void EioSession::onWsGone(WsEndpoint& from, uint16_t, std::string_view reason) {
  if (&from == probe_.get()) {
    dropProbe(reason);
  } else if (&from == ws_.get()) {
    endSession("transport error", Closer::Client);
  }
}

void EioSession::onWsClosed(WsEndpoint& endpoint) {
  if (&endpoint == probe_.get()) {
    dropProbe("probe closed");
  } else if (&endpoint == ws_.get() && !closed_) {
    endSession("transport close", Closer::Client);
  }
  maybeFinished();
}

// ---- closing ----

void EioSession::close(std::string_view reason) { endSession(reason, Closer::Server); }

void EioSession::endSession(std::string_view reason, Closer closer) {
  if (closed_) return;
  closed_ = true;
  spdlog::debug("eio {}: session closed: {}", sid_, reason);
  ping_timer_.cancel();
  pong_timer_.cancel();
  upgrade_timer_.cancel();
  if (registered_) {
    EioRegistry::instance().remove(sid_);
    registered_ = false;
  }
  // Over polling the held GET ends the cycle: a close packet when we close, a noop when the
  // client did.
  answerPoll(closer == Closer::Server ? eio::PacketType::Close : eio::PacketType::Noop);
  queue_.clear();
  if (probe_ != nullptr) {
    probe_->sendClose(ws::close_code::kNormal, "");
    retire(std::move(probe_));
  }
  if (ws_ != nullptr) ws_->sendClose(ws::close_code::kNormal, "");
  std::string why(reason);
  app_.onEioClose(why);
  maybeFinished();
}

void EioSession::maybeFinished() {
  if (!closed_ || finished_) return;
  if (ws_ != nullptr && !ws_->finished()) return;
  for (const auto& r : retired_) {
    if (!r->finished()) return;
  }
  finished_ = true;
  app_.onEioFinished();
}

}  // namespace wsb::proxy
