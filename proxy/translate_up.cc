// TranslateUp: envelope messages <-> Socket.IO events over one upstream Engine.IO session.
#include "proxy/translate_up.h"

#include <algorithm>
#include <random>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <spdlog/spdlog.h>

#include "codec/engineio.h"
#include "codec/http1.h"
#include "proxy/evbuffer_view.h"
#include "proxy/upstream_log.h"

namespace wsb::proxy {

namespace {
std::string bracket(std::string_view args_json) {
  std::string out = "[";
  out.append(args_json);
  out += ']';
  return out;
}
}  // namespace

TranslateUp::TranslateUp(Dispatcher& dispatcher, MaskSource& masks, bufferevent* upstream,
                         const WsEndpointOptions& options, filters::FilterChain* chain,
                         TranslateUpOptions translate, Callbacks callbacks)
    : dispatcher_(dispatcher),
      masks_(masks),
      options_(options),
      chain_(chain != nullptr && !chain->empty() ? chain : nullptr),
      translate_(std::move(translate)),
      callbacks_(std::move(callbacks)),
      upstream_(std::make_unique<WsEndpoint>(dispatcher, upstream, WsEndpoint::Side::Upstream,
                                             options, masks, *this)),
      reconnect_timer_(std::make_unique<Timer>(dispatcher, [this] {
        if (phase_ == Phase::Reconnecting) callbacks_.reconnect();
      })) {}

void TranslateUp::start() { upstream_->start(); }

void TranslateUp::attachClient(bufferevent* client) {
  client_ = std::make_unique<WsEndpoint>(dispatcher_, client, WsEndpoint::Side::Client, options_,
                                         masks_, *this);
  client_->start();
}

bool TranslateUp::ourNamespace(std::string_view nsp) const {
  return nsp == translate_.nsp || (nsp.empty() && translate_.nsp == "/");
}

// ---- upstream ----

void TranslateUp::sendUpstream(const std::string& eio_text) {
  if (phase_ == Phase::Reconnecting) {
    hold(ws::Opcode::Text, eio_text);
  } else if (!upstream_->finished()) {
    upstream_->sendMessage(ws::Opcode::Text, eio_text);
  }
}

void TranslateUp::sendUpstreamBinary(std::string_view bytes) {
  if (phase_ == Phase::Reconnecting) {
    hold(ws::Opcode::Binary, bytes);
  } else if (!upstream_->finished()) {
    upstream_->sendMessage(ws::Opcode::Binary, bytes);
  }
}

void TranslateUp::sendClientText(std::string_view text) {
  if (client_ && !client_->finished()) client_->sendMessage(ws::Opcode::Text, text);
}

void TranslateUp::onUpstreamText(std::string_view text) {
  if (text.empty()) return;
  switch (text[0]) {
    case '0': {  // OPEN: join the namespace (again, after a reconnection)
      if (phase_ == Phase::Opening) {
        phase_ = Phase::Connecting;
      } else if (phase_ != Phase::Reconnecting) {
        return;
      }
      std::string out = "4";
      sio::appendConnect(out, translate_.nsp, translate_.auth_json);
      upstream_->sendMessage(ws::Opcode::Text, out);  // not held: it opens the way
      return;
    }
    case '2':  // Engine.IO v4: the server pings, we answer
      sendUpstream("3" + std::string(text.substr(1)));
      return;
    case '1':  // the server closed the session
      if (!upstreamLost("server closed the session")) {
        closeBoth(ws::close_code::kNormal, "server closed the session", "upstream");
      }
      return;
    case '4': {
      sio::Packet packet;
      sio::DecodeError error = sio::decodePacket(text.substr(1), &packet);
      if (error != sio::DecodeError::None) {
        if (callbacks_.parse_error) callbacks_.parse_error(sio::describe(error));
        fail("invalid Socket.IO packet from the upstream");
        return;
      }
      if (sio::isBinary(packet.type)) {
        if (reassembler_.addPacket(packet) == sio::Reassembler::Status::Error) {
          if (callbacks_.parse_error) callbacks_.parse_error(sio::describe(reassembler_.error()));
          fail("invalid binary packet from the upstream");
        }
        return;
      }
      onUpstreamPacket(packet, nullptr);
      return;
    }
    default:
      return;  // noop, pong, upgrade: nothing to do
  }
}

void TranslateUp::onUpstreamPacket(const sio::Packet& packet,
                                   const std::vector<std::string>* attachments) {
  if (!ourNamespace(packet.nsp) && !(translate_.allow_nsp && phase_ == Phase::Ready)) return;
  switch (packet.type) {
    case sio::PacketType::Connect:
      if (phase_ == Phase::Connecting && ourNamespace(packet.nsp)) {
        phase_ = Phase::Ready;
        callbacks_.ready();
      } else if (phase_ == Phase::Reconnecting && ourNamespace(packet.nsp)) {
        rejoined();
      }
      return;
    case sio::PacketType::ConnectError: {
      auto message = sio::connectErrorMessage(packet, reader_);
      std::string text = message ? std::string(*message) : "connection refused";
      if (phase_ == Phase::Opening || phase_ == Phase::Connecting) {
        phase_ = Phase::Closing;
        callbacks_.refused(text);
        upstream_->sendClose(ws::close_code::kNormal, "refused");
      } else {
        sendClientText(envelope::renderEvent(envelope::Shape::Json, "connect_error",
                                             "[{\"message\":" + [&] {
                                               std::string s;
                                               sio::appendJsonString(s, text);
                                               return s;
                                             }() + "}]"));
        phase_ = Phase::Ready;  // a refused re-join closes like a refusal after ready
        closeBoth(ws::close_code::kPolicy, text, "upstream");
      }
      return;
    }
    case sio::PacketType::Disconnect:
      if (ourNamespace(packet.nsp)) {
        closeBoth(ws::close_code::kNormal, "server disconnect", "upstream");
      }
      return;
    case sio::PacketType::Event:
    case sio::PacketType::BinaryEvent: {
      if (phase_ != Phase::Ready) return;
      auto name = sio::eventName(packet, reader_);
      if (!name) return;
      std::string event_name(*name);
      std::string nsp = ourNamespace(packet.nsp) ? std::string() : std::string(packet.nsp);
      if (!passFilters(filters::Direction::ToClient, packet.nsp, event_name, packet.id,
                       packet.raw.size(), packet.args_json)) {
        return;
      }
      if (attachments != nullptr) {
        // One attachment standing for the route's binary event: a binary frame, as it came.
        if (!translate_.binary_event.empty() && event_name == translate_.binary_event &&
            attachments->size() == 1 && packet.arg_count == 1 && !packet.id) {
          if (client_) client_->sendMessage(ws::Opcode::Binary, (*attachments)[0]);
          return;
        }
        std::string inlined, error;
        if (!envelope::inlineAttachments(bracket(packet.args_json), *attachments, &inlined,
                                         &error)) {
          spdlog::debug("translate up: cannot inline attachments: {}", error);
          return;
        }
        sendClientText(envelope::renderEvent(translate_.shape, event_name, inlined, packet.id, nsp));
        return;
      }
      sendClientText(
          envelope::renderEvent(translate_.shape, event_name, bracket(packet.args_json), packet.id, nsp));
      return;
    }
    case sio::PacketType::Ack:
    case sio::PacketType::BinaryAck: {
      if (!packet.id) return;
      auto it = client_acks_.find(*packet.id);
      if (it == client_acks_.end()) return;
      uint64_t client_id = it->second;
      client_acks_.erase(it);
      std::string args = bracket(packet.args_json);
      if (attachments != nullptr) {
        std::string inlined, error;
        if (!envelope::inlineAttachments(args, *attachments, &inlined, &error)) return;
        args = std::move(inlined);
      }
      std::string nsp = ourNamespace(packet.nsp) ? std::string() : std::string(packet.nsp);
      sendClientText(envelope::renderAckAnswer(translate_.shape, client_id, args, nsp));
      return;
    }
  }
}

// ---- client ----

void TranslateUp::clientError(std::string_view message) {
  if (translate_.close_on_bad_envelope) {
    closeBoth(ws::close_code::kInvalidPayload, message, "wsbridge");
    return;
  }
  sendClientText(envelope::renderError(message));
}

bool TranslateUp::passFilters(filters::Direction direction, std::string_view nsp,
                              std::string_view name, std::optional<uint64_t> ack, size_t size,
                              std::string_view args_json) {
  if (chain_ == nullptr) return true;
  filters::Event event;
  event.direction = direction;
  event.nsp = nsp;
  event.name = name;
  event.ack = ack;
  event.size = size;
  std::string args;
  event.args = [&]() -> std::string_view {
    if (args.empty()) args = args_json.empty() || args_json.front() != '[' ? bracket(args_json)
                                                                           : std::string(args_json);
    return args;
  };
  return chain_->onEvent(event) == filters::Status::Continue;
}

void TranslateUp::onClientText(std::string_view text) {
  envelope::ParseOptions options;
  options.shape = translate_.shape;
  options.allow_nsp = translate_.allow_nsp;
  envelope::Message message;
  std::string error;
  switch (envelope::parse(text, options, &message, &error)) {
    case envelope::ParseStatus::NotEnvelope:
      message = {};
      message.event = translate_.text_event;
      message.args = envelope::textAsArgs(text);
      break;
    case envelope::ParseStatus::Invalid:
      clientError(error);
      return;
    case envelope::ParseStatus::Ok:
      break;
  }
  std::string nsp = message.nsp.empty() ? translate_.nsp : message.nsp;
  std::vector<std::string> attachments;
  std::string args;
  if (!envelope::extractAttachments(message.args, &args, &attachments, &error)) {
    clientError(error);
    return;
  }
  std::string out = "4";
  if (message.kind == envelope::Message::Kind::AckAnswer) {
    // The client answers an ack the upstream asked for; the upstream's id was passed through.
    if (!passFilters(filters::Direction::ToUpstream, nsp, {}, message.ack, text.size(), args)) {
      return;
    }
    std::vector<sio::Arg> none;
    if (attachments.empty()) {
      out += '3';
      if (nsp != "/") out += nsp + ",";
      out += std::to_string(*message.ack);
      out += args;
    } else {
      // BINARY_ACK: the placeholders are already in args.
      out += '6';
      out += std::to_string(attachments.size()) + "-";
      if (nsp != "/") out += nsp + ",";
      out += std::to_string(*message.ack);
      out += args;
    }
  } else {
    if (!passFilters(filters::Direction::ToUpstream, nsp, message.event, message.ack,
                     text.size(), args)) {
      return;
    }
    std::optional<uint64_t> upstream_id;
    if (message.ack) {
      upstream_id = next_ack_++;
      client_acks_[*upstream_id] = *message.ack;
    }
    if (attachments.empty()) {
      sio::appendEventJson(out, nsp, message.event, args, upstream_id);
    } else {
      std::string packet;
      sio::appendEventJson(packet, nsp, message.event, args, upstream_id);
      // EVENT -> BINARY_EVENT with the attachment count: "2..." becomes "5N-...".
      out += '5';
      out += std::to_string(attachments.size()) + "-";
      out.append(packet, 1);
    }
  }
  sendUpstream(out);
  for (const auto& a : attachments) sendUpstreamBinary(a);
}

void TranslateUp::onClientBinary(evbuffer* payload) {
  if (translate_.binary_event.empty()) {
    clientError("binary messages are not accepted on this route");
    return;
  }
  if (!passFilters(filters::Direction::ToUpstream, translate_.nsp, translate_.binary_event,
                   std::nullopt, evbuffer_get_length(payload), "[{\"_placeholder\":true,\"num\":0}]")) {
    return;
  }
  std::string out = "451-";
  if (translate_.nsp != "/") out += translate_.nsp + ",";
  out += "[";
  sio::appendJsonString(out, translate_.binary_event);
  out += ",{\"_placeholder\":true,\"num\":0}]";
  sendUpstream(out);
  if (phase_ == Phase::Reconnecting) {
    sendUpstreamBinary(viewOf(payload));
  } else {
    upstream_->sendMessage(ws::Opcode::Binary, payload);  // moved, no copy
  }
}

// ---- WsEndpointOwner ----

void TranslateUp::onWsMessage(WsEndpoint& from, ws::Opcode opcode, evbuffer* payload) {
  if (&from == upstream_.get()) {
    if (opcode == ws::Opcode::Binary) {
      std::string_view bytes = viewOf(payload);
      switch (reassembler_.addAttachment(bytes)) {
        case sio::Reassembler::Status::Ready:
          onUpstreamPacket(reassembler_.packet(), &reassembler_.attachments());
          reassembler_.reset();
          break;
        case sio::Reassembler::Status::NeedAttachment:
          break;
        case sio::Reassembler::Status::Error:
          if (callbacks_.parse_error) callbacks_.parse_error(sio::describe(reassembler_.error()));
          fail("unexpected binary message from the upstream");
          break;
      }
      return;
    }
    onUpstreamText(viewOf(payload));
    if (client_ && client_->congested()) upstream_->pauseReading();
    return;
  }
  auto accepting = [this] {
    return phase_ == Phase::Reconnecting ||
           (phase_ == Phase::Ready && !upstream_->finished() && !upstream_->closeSent());
  };
  if (!accepting()) return;
  if (chain_ != nullptr) {
    // The raw message first (text pings, first-message auth, sizes), then its event.
    filters::Message message{filters::Direction::ToUpstream, opcode, viewOf(payload)};
    message.event_follows = true;
    if (chain_->onMessage(message) != filters::Status::Continue) return;
    if (!accepting()) return;
  }
  if (opcode == ws::Opcode::Binary) {
    onClientBinary(payload);
  } else {
    onClientText(viewOf(payload));
  }
  if (upstream_->congested()) client_->pauseReading();
}

void TranslateUp::onWsCloseFrame(WsEndpoint& from, uint16_t code, std::string_view reason) {
  if (&from == client_.get()) {
    noteClose(code, reason, "client");
    if (phase_ == Phase::Reconnecting) {
      client_->sendClose(code, reason);  // first: no "upstream closed" 1011 for it then
      stopReconnecting();
      return;
    }
    // The client leaves: disconnect the namespace, close the upstream normally.
    if (!upstream_->finished() && !upstream_->closeSent()) {
      std::string out = "4";
      sio::appendDisconnect(out, translate_.nsp);
      sendUpstream(out);
      upstream_->sendClose(ws::close_code::kNormal, "client closed");
    }
    client_->sendClose(code, reason);
    return;
  }
  if (upstreamLost(reason)) return;
  noteClose(code, reason, "upstream");
  if (!upstream_->closeSent()) upstream_->sendClose(code, reason);
  if (phase_ != Phase::Ready) {
    fail("upstream closed the connection");
  } else if (client_ && !client_->closeSent()) {
    client_->sendClose(code == ws::close_code::kNoStatus ? ws::close_code::kNormal : code, reason);
  }
}

void TranslateUp::onWsGone(WsEndpoint& from, uint16_t code, std::string_view reason) {
  if (&from == client_.get()) {
    noteClose(code, reason, "client");
    stopReconnecting();
    if (!upstream_->finished() && !upstream_->closeSent()) {
      upstream_->sendClose(ws::close_code::kGoingAway, "client gone");
    }
    return;
  }
  if (upstreamLost(reason)) return;
  noteClose(code, reason, "upstream");
  fail("upstream connection lost");
}

void TranslateUp::onWsDrained(WsEndpoint& endpoint) {
  if (&endpoint == upstream_.get()) {
    if (client_) client_->resumeReading();
  } else {
    upstream_->resumeReading();
  }
}

void TranslateUp::onWsClosed(WsEndpoint& endpoint) {
  if (&endpoint == upstream_.get()) {
    if (phase_ == Phase::Reconnecting) return;  // an old or failed connection: retried
    if (phase_ != Phase::Ready && phase_ != Phase::Closing) {
      fail("upstream closed the connection");
      return;
    }
    if (client_ && !client_->finished() && !client_->closeSent()) {
      client_->sendClose(ws::close_code::kInternalError, "upstream closed");
    }
  } else {
    stopReconnecting();
    if (!upstream_->finished() && !upstream_->closeSent()) {
      upstream_->sendClose(ws::close_code::kGoingAway, "client gone");
    }
  }
  bool upstream_done = upstream_->finished();
  bool client_done = !client_ || client_->finished();
  if (upstream_done && client_done && !done_ && (client_ || phase_ == Phase::Closing)) {
    done_ = true;
    callbacks_.done();
  }
}

void TranslateUp::onWsPong(WsEndpoint& endpoint, std::string_view) {
  if (chain_ != nullptr) {
    chain_->onPong(&endpoint == upstream_.get() ? filters::Side::Upstream : filters::Side::Client);
  }
}

// ---- reconnection ----

bool TranslateUp::upstreamLost(std::string_view why) {
  if (phase_ == Phase::Reconnecting) {  // the new connection failed before it re-joined
    if (!upstream_->finished()) upstream_->abort();
    reconnectFailed(why);
    return true;
  }
  if (!translate_.reconnect.enabled || phase_ != Phase::Ready || !client_ ||
      client_->finished() || client_->closeSent()) {
    return false;
  }
  spdlog::info("translate up: upstream lost ({}), reconnecting", why);
  phase_ = Phase::Reconnecting;
  if (!upstream_->finished()) upstream_->abort();
  reassembler_.reset();
  // What the lost session owed is never coming: answer it now, not never.
  for (const auto& [upstream_id, client_id] : client_acks_) {
    sendClientText(envelope::renderAckAnswer(translate_.shape, client_id,
                                             R"([{"error":"upstream connection lost"}])"));
  }
  client_acks_.clear();
  sendClientText(envelope::renderEvent(translate_.shape, "reconnecting", "[]"));
  reconnect_attempts_ = 0;
  scheduleReconnect();
  return true;
}

void TranslateUp::scheduleReconnect() {
  // Exponential backoff from initial_backoff to max_backoff, with full jitter on the upper half
  // so that many clients of one lost server do not come back in step.
  const config::Reconnect& r = translate_.reconnect;
  const uint32_t shift = std::min<uint32_t>(reconnect_attempts_, 20);
  const int64_t ceiling = std::min<int64_t>(r.max_backoff.count(),
                                            r.initial_backoff.count() << shift);
  static thread_local std::minstd_rand random{std::random_device{}()};
  const int64_t delay = ceiling / 2 + static_cast<int64_t>(random() % (ceiling / 2 + 1));
  reconnect_timer_->arm(Duration(delay));
}

void TranslateUp::upstreamReconnected(bufferevent* upstream, const std::string* label) {
  if (phase_ != Phase::Reconnecting) {  // the client left meanwhile
    bufferevent_free(upstream);
    return;
  }
  options_.upstream_label = label;
  upstream_ = std::make_unique<WsEndpoint>(dispatcher_, upstream, WsEndpoint::Side::Upstream,
                                           options_, masks_, *this);
  // A server that upgrades but never answers the OPEN or the CONNECT must not keep the client
  // reconnecting for ever.
  if (!join_deadline_) {
    join_deadline_ = std::make_unique<Timer>(dispatcher_, [this] { joinTimedOut(); });
  }
  join_deadline_->arm(translate_.join_timeout);
  upstream_->start();  // OPEN, then CONNECT with the same auth, then rejoined()
}

void TranslateUp::joinTimedOut() {
  if (phase_ != Phase::Reconnecting) return;
  if (options_.upstream_label != nullptr) {
    logUpstreamFault(*options_.upstream_label,
                     "no Socket.IO CONNECT answer within handshake_timeout while reconnecting");
  }
  upstream_->abort();  // its onWsClosed is ignored while reconnecting
  reconnectFailed("handshake timeout");
}

// The client left while its upstream was being replaced: no more attempts, and the one in
// flight is dropped (its close would be ignored while reconnecting, leaving the connection to
// wait for ever).
void TranslateUp::stopReconnecting() {
  if (phase_ != Phase::Reconnecting) return;
  phase_ = Phase::Closing;
  reconnect_timer_->cancel();
  if (join_deadline_) join_deadline_->cancel();
  held_.clear();
  held_bytes_ = 0;
  if (!upstream_->finished()) upstream_->abort();
}

void TranslateUp::reconnectFailed(std::string_view why) {
  if (phase_ != Phase::Reconnecting) return;
  if (join_deadline_) join_deadline_->cancel();
  ++reconnect_attempts_;
  const uint32_t max = translate_.reconnect.max_attempts;
  if (max != 0 && reconnect_attempts_ >= max) {
    spdlog::info("translate up: giving up after {} reconnection attempts ({})",
                 reconnect_attempts_, why);
    phase_ = Phase::Ready;  // closes like a loss without reconnect
    closeBoth(ws::close_code::kInternalError, "upstream unavailable", "upstream");
    return;
  }
  spdlog::debug("translate up: reconnection attempt {} failed: {}", reconnect_attempts_, why);
  scheduleReconnect();
}

bool TranslateUp::hold(ws::Opcode opcode, std::string_view bytes) {
  const config::Reconnect& r = translate_.reconnect;
  if (held_.size() >= r.max_buffered_messages || held_bytes_ + bytes.size() > r.max_buffered_bytes) {
    spdlog::info("translate up: {} messages held while reconnecting, closing the client",
                 held_.size());
    phase_ = Phase::Ready;
    closeBoth(ws::close_code::kTryAgainLater, "upstream unavailable", "wsbridge");
    return false;
  }
  held_.push_back({opcode, std::string(bytes)});
  held_bytes_ += bytes.size();
  return true;
}

void TranslateUp::rejoined() {
  if (join_deadline_) join_deadline_->cancel();
  phase_ = Phase::Ready;
  spdlog::info("translate up: reconnected, sending {} held messages", held_.size());
  for (const Held& m : held_) upstream_->sendMessage(m.opcode, m.bytes);
  held_.clear();
  held_bytes_ = 0;
  sendClientText(envelope::renderEvent(translate_.shape, "reconnected", "[]"));
}

// ---- failures and closing ----

void TranslateUp::noteClose(uint16_t code, std::string_view reason, const char* by) {
  if (!close_info_.closed_by.empty()) return;
  close_info_.code = code;
  close_info_.reason = std::string(reason);
  close_info_.closed_by = by;
}

void TranslateUp::fail(std::string message) {
  if (phase_ == Phase::Opening || phase_ == Phase::Connecting) {
    phase_ = Phase::Closing;
    if (!upstream_->finished()) upstream_->sendClose(ws::close_code::kGoingAway, "failed");
    callbacks_.refused(std::move(message));
    return;
  }
  closeBoth(ws::close_code::kInternalError, message, "upstream");
}

void TranslateUp::closeBoth(uint16_t client_code, std::string_view reason, const char* by) {
  noteClose(client_code, reason, by);
  if (phase_ == Phase::Opening || phase_ == Phase::Connecting) {
    fail(std::string(reason));  // the client is not upgraded yet: it hears a refusal
    return;
  }
  // Ready or already Closing (a drain during a close): close what is still open, once.
  phase_ = Phase::Closing;
  if (client_ && !client_->finished() && !client_->closeSent()) {
    client_->sendClose(client_code, reason);
  }
  if (!upstream_->finished() && !upstream_->closeSent()) {
    upstream_->sendClose(ws::close_code::kNormal, reason);
  }
}

// ---- Bridge ----

void TranslateUp::drain(std::string_view reason) {
  closeBoth(ws::close_code::kGoingAway, reason, "wsbridge");
}

void TranslateUp::notify(filters::Side toward, std::string_view notice) {
  if (toward == filters::Side::Client) {
    sendClientText(notice);
  } else {
    sendUpstream("4" + std::string(notice));
  }
}

void TranslateUp::ackError(filters::Side toward, const filters::Event& event,
                           std::string_view args_json) {
  if (!event.ack) return;
  if (toward == filters::Side::Client) {
    sendClientText(envelope::renderAckAnswer(translate_.shape, *event.ack, args_json));
  } else {
    std::string out = "43";
    if (event.nsp != "/" && !event.nsp.empty()) out += std::string(event.nsp) + ",";
    out += std::to_string(*event.ack);
    out.append(args_json);
    sendUpstream(out);
  }
}

void TranslateUp::close(uint16_t code, std::string_view reason) {
  closeBoth(code, reason, "wsbridge");
}

bool TranslateUp::ping(filters::Side side) {
  WsEndpoint* e = side == filters::Side::Client ? client_.get() : upstream_.get();
  if (e == nullptr || e->finished()) return false;
  e->sendPing();
  return true;
}

void TranslateUp::pauseReading(filters::Side side) {
  WsEndpoint* e = side == filters::Side::Client ? client_.get() : upstream_.get();
  if (e) e->pauseReading(WsEndpoint::kShaping);
}

void TranslateUp::resumeReading(filters::Side side) {
  WsEndpoint* e = side == filters::Side::Client ? client_.get() : upstream_.get();
  if (e) e->resumeReading(WsEndpoint::kShaping);
}

// ---- auth templates ----

std::string renderUpstreamAuth(const std::map<std::string, std::string>& templates,
                               const http::Request& request,
                               const std::map<std::string, std::string, std::less<>>& attributes) {
  if (templates.empty()) return {};
  std::string out = "{";
  for (const auto& [key, tmpl] : templates) {
    std::string value;
    size_t pos = 0;
    while (pos < tmpl.size()) {
      size_t open = tmpl.find('{', pos);
      if (open == std::string::npos) {
        value.append(tmpl, pos);
        break;
      }
      size_t close = tmpl.find('}', open);
      if (close == std::string::npos) {
        value.append(tmpl, pos);
        break;
      }
      value.append(tmpl, pos, open - pos);
      std::string_view ref(tmpl.data() + open + 1, close - open - 1);
      std::string piece;
      if (ref.substr(0, 6) == "query.") {
        request.queryParam(ref.substr(6), &piece);
      } else if (ref.substr(0, 7) == "header.") {
        if (const std::string* h = request.header(ref.substr(7))) piece = *h;
      } else if (ref.substr(0, 7) == "cookie.") {
        request.cookie(ref.substr(7), &piece);
      } else if (ref.substr(0, 4) == "jwt.") {
        auto it = attributes.find(ref);
        if (it != attributes.end()) piece = it->second;
      } else {
        piece = "{" + std::string(ref) + "}";
      }
      value += piece;
      pos = close + 1;
    }
    if (out.size() > 1) out += ',';
    sio::appendJsonString(out, key);
    out += ':';
    sio::appendJsonString(out, value);
  }
  out += '}';
  return out;
}

}  // namespace wsb::proxy
