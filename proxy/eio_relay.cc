// EioRelay: Engine.IO-aware WebSocket pass-through.
#include "proxy/eio_relay.h"

#include <event2/buffer.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "codec/engineio.h"
#include "codec/socketio.h"
#include "proxy/evbuffer_view.h"

namespace wsb::proxy {

namespace {
void replace(evbuffer* payload, std::string_view text) {
  evbuffer_drain(payload, evbuffer_get_length(payload));
  evbuffer_add(payload, text.data(), text.size());
}

constexpr char kV3MessageType = 0x04;  // v3 binary frames start with the packet type

}  // namespace

EioRelay::EioRelay(Dispatcher& dispatcher, MaskSource& masks, bufferevent* client,
                   bufferevent* upstream, const WsEndpointOptions& options,
                   filters::FilterChain* chain, const EioRelayOptions& eio,
                   std::function<void()> on_done)
    : WsRelay(dispatcher, masks, client, upstream, options, chain, std::move(on_done)),
      eio_(eio),
      pong_deadline_(std::make_unique<Timer>(dispatcher, [this] {
        heartbeatFailed("client did not answer the ping");
      })),
      upstream_liveness_(std::make_unique<Timer>(dispatcher, [this] {
        heartbeatFailed("upstream stopped pinging");
      })) {
  if (eio_.connect_check) to_upstream_.setConnectCheck(eio_.connect_check);
}

void EioRelay::start() {
  if (eio_.client_eio3) requested_.emplace_back("/");  // connected by wsbridge after OPEN
  upstream_liveness_->arm(eio_.ping_interval + eio_.ping_timeout);
  if (eio_.client_eio3) pong_deadline_->arm(eio_.ping_interval + eio_.ping_timeout);
  WsRelay::start();
}

void EioRelay::heartbeatFailed(const char* why) {
  spdlog::debug("socket.io pass-through: {}", why);
  noteClose(ws::close_code::kGoingAway, why, "wsbridge");
  // Both sides go at once: the upstream does not wait for its own timeout.
  client().sendClose(ws::close_code::kGoingAway, why);  // flushed; TCP ends on reply or timeout
  upstream().abort();
}

void EioRelay::drain(std::string_view reason) {
  // A session that began over polling joined "/" before this WebSocket: its CONNECT went unseen.
  if (namespaces_.empty() && !eio_.rewrite_open) namespaces_.emplace_back("/");
  for (const std::string& nsp : namespaces_) {
    std::string packet = "4";
    sio::appendDisconnect(packet, nsp);
    client().sendMessage(ws::Opcode::Text, packet);
  }
  client().sendMessage(ws::Opcode::Text, "1");  // Engine.IO close
  WsRelay::drain(reason);
}

bool EioRelay::parseError(bool from_upstream, std::string_view why) {
  if (failed_) return false;
  failed_ = true;
  if (eio_.parse_error) eio_.parse_error(from_upstream, why);
  if (from_upstream) {
    noteClose(ws::close_code::kInternalError, "upstream sent an invalid packet", "upstream");
    client().sendClose(ws::close_code::kInternalError, "upstream sent an invalid packet");
  } else {
    noteClose(ws::close_code::kProtocolError, "parse error", "wsbridge");
    client().sendClose(ws::close_code::kProtocolError, "parse error");
  }
  upstream().abort();
  return false;
}

namespace {
void erase(std::vector<std::string>& names, std::string_view name) {
  auto it = std::find(names.begin(), names.end(), name);
  if (it != names.end()) names.erase(it);
}
}  // namespace

void EioRelay::track(const sio::Packet& packet, bool from_upstream) {
  switch (packet.type) {
    case sio::PacketType::Event:
    case sio::PacketType::BinaryEvent:
      if (eio_.count_event) {
        if (auto name = sio::eventName(packet, json_)) eio_.count_event(*name);
      }
      return;
    case sio::PacketType::Connect:
      if (from_upstream &&
          std::find(namespaces_.begin(), namespaces_.end(), packet.nsp) == namespaces_.end()) {
        namespaces_.emplace_back(packet.nsp);
      }
      return;
    case sio::PacketType::ConnectError:
      if (from_upstream) erase(requested_, packet.nsp);
      return;
    case sio::PacketType::Disconnect:
      erase(namespaces_, packet.nsp);
      erase(requested_, packet.nsp);
      return;
    default:
      return;
  }
}

bool EioRelay::overNamespaceLimit(const sio::Packet& connect) {
  if (std::find(requested_.begin(), requested_.end(), connect.nsp) != requested_.end()) {
    return false;  // a second CONNECT: the server closes the connection for it
  }
  if (requested_.size() < eio_.max_namespaces) {
    requested_.emplace_back(connect.nsp);
    return false;
  }
  std::string reply = "4";
  sio::appendConnectError(reply, eio_.client_eio3 ? sio::Version::V4 : sio::Version::V5,
                          connect.nsp, "too many namespaces");
  client().sendMessage(ws::Opcode::Text, reply);
  return true;
}

bool EioRelay::admit(WsEndpoint& from, ws::Opcode opcode, evbuffer* payload) {
  if (failed_) return false;
  return from.side() == WsEndpoint::Side::Upstream ? admitFromUpstream(opcode, payload)
                                                   : admitFromClient(opcode, payload);
}

bool EioRelay::admitFromUpstream(ws::Opcode opcode, evbuffer* payload) {
  if (opcode == ws::Opcode::Binary) {
    if (!eio_.socketio) return true;
    switch (to_client_.onBinary()) {
      case SioInspector::Verdict::Invalid:
        return parseError(true, to_client_.error());
      case SioInspector::Verdict::Drop:
        return false;
      case SioInspector::Verdict::Forward:
        break;
    }
    if (eio_.client_eio3) evbuffer_prepend(payload, &kV3MessageType, 1);
    return true;
  }
  std::string_view text = viewOf(payload);
  if (text.empty()) return true;
  switch (text[0]) {
    case '0': {  // OPEN: the session starts here; sign the sid with the endpoint
      if (!eio_.rewrite_open || open_seen_) return true;
      open_seen_ = true;
      eio::Handshake handshake;
      std::string rewritten;
      if (!eio::parseHandshake(text.substr(1), &handshake)) return true;
      eio_.ping_interval = Duration(handshake.ping_interval);
      eio_.ping_timeout = Duration(handshake.ping_timeout);
      upstream_liveness_->arm(eio_.ping_interval + eio_.ping_timeout);
      // A v3 client is told these in the OPEN: its first ping is due within them.
      if (eio_.client_eio3) pong_deadline_->arm(eio_.ping_interval + eio_.ping_timeout);
      if (!eio::replaceSid(text.substr(1), eio_.signer->sign(handshake.sid, eio_.endpoint_tag),
                           &rewritten)) {
        return true;
      }
      replace(payload, "0" + rewritten);
      // A v4 client is connected to "/" by the server without asking (v5 servers wait for it).
      if (eio_.client_eio3) upstream().sendMessage(ws::Opcode::Text, "40");
      return true;
    }
    case '2':  // the upstream pings; the client must answer within ping_timeout
      upstream_liveness_->arm(eio_.ping_interval + eio_.ping_timeout);
      if (eio_.client_eio3) {  // v3 clients never answer pings: wsbridge does
        upstream().sendMessage(ws::Opcode::Text, "3" + std::string(text.substr(1)));
        return false;
      }
      if (text == "2") pong_deadline_->arm(eio_.ping_timeout);
      return true;
    case '4': {
      if (!eio_.socketio) return true;
      SioInspector::Verdict verdict = to_client_.onText(text.substr(1), chain());
      if (verdict == SioInspector::Verdict::Invalid) return parseError(true, to_client_.error());
      track(to_client_.current(), true);
      if (verdict == SioInspector::Verdict::Drop) return false;
      if (!eio_.client_eio3) return true;
      const std::string v4 = toSioV4(text.substr(1));
      if (!v4.empty()) replace(payload, "4" + v4);
      return true;
    }
    default:
      return true;
  }
}

bool EioRelay::admitFromClient(ws::Opcode opcode, evbuffer* payload) {
  if (opcode == ws::Opcode::Binary) {
    if (!eio_.socketio) return true;
    if (eio_.client_eio3) {
      // v3: the packet type comes first; only messages (4) carry data.
      unsigned char type = 0;
      if (evbuffer_remove(payload, &type, 1) != 1 || type != kV3MessageType) {
        return parseError(false, "binary packet is not a message");
      }
    }
    switch (to_upstream_.onBinary()) {
      case SioInspector::Verdict::Invalid:
        return parseError(false, to_upstream_.error());
      case SioInspector::Verdict::Drop:
        return false;
      case SioInspector::Verdict::Forward:
        return true;
    }
    return false;
  }
  std::string_view text = viewOf(payload);
  // engine.io-parser: an empty or unknown packet type is a parse error.
  if (text.empty() || text[0] < '0' || text[0] > '6') {
    return parseError(false, "unknown Engine.IO packet type");
  }
  if (text[0] == '1') {
    // The Engine.IO close packet ends the session now, both sides (the ref server ignores it
    // over a websocket and waits for its ping timeout).
    noteClose(ws::close_code::kNormal, "client closed the session", "client");
    client().sendClose(ws::close_code::kNormal, "");
    upstream().sendClose(ws::close_code::kNormal, "client closed the session");
    return false;
  }
  if (eio_.client_eio3) return adaptFromClientV3(text, payload);
  switch (text[0]) {
    case '3':
      if (text == "3") pong_deadline_->cancel();
      return true;
    case '4':
      return !eio_.socketio || inspectFromClient(text);
    default:
      return true;
  }
}

bool EioRelay::adaptFromClientV3(std::string_view text, evbuffer* payload) {
  switch (text[0]) {
    case '2':  // v3 heartbeat: answered here ("2probe" -> "3probe"), never forwarded
      pong_deadline_->arm(eio_.ping_interval + eio_.ping_timeout);
      client().sendMessage(ws::Opcode::Text, "3" + std::string(text.substr(1)));
      return false;
    case '3':  // a v4 upstream would close on a pong it did not ask for
      return false;
    case '4':
      break;
    default:
      return true;
  }
  if (text.size() < 2 || text[1] != '0') return inspectFromClient(text);
  // CONNECT: v4 puts the auth in the namespace's query; "/" is already connected.
  const std::optional<std::string> v5 = connectToSioV5(text.substr(1));
  if (!v5) return parseError(false, "invalid CONNECT packet");
  if (v5->empty()) return false;
  replace(payload, "4" + *v5);
  return inspectFromClient(viewOf(payload));
}

// Hands a client's Socket.IO packet to the filters; a refusal is answered to the client here.
bool EioRelay::inspectFromClient(std::string_view text) {
  SioInspector::Verdict verdict = to_upstream_.onText(text.substr(1), chain());
  if (verdict == SioInspector::Verdict::Invalid) return parseError(false, to_upstream_.error());
  const sio::Packet& packet = to_upstream_.current();
  track(packet, false);
  if (verdict == SioInspector::Verdict::Forward) {
    return packet.type != sio::PacketType::Connect || !overNamespaceLimit(packet);
  }
  std::string reply = to_upstream_.takeReply();
  if (reply.empty()) return false;
  if (eio_.client_eio3) {
    const std::string v4 = toSioV4(reply);
    if (!v4.empty()) reply = v4;
  }
  client().sendMessage(ws::Opcode::Text, "4" + reply);
  return false;
}

void EioRelay::notify(filters::Side toward, std::string_view notice) {
  std::string message = renderNoticeMessage(notice, "/");  // already an Engine.IO message
  endpoint(toward).sendMessage(ws::Opcode::Text, message);
}

void EioRelay::ackError(filters::Side toward, const filters::Event& event,
                        std::string_view args_json) {
  if (!event.ack) return;
  std::string message = renderAckMessage(event.nsp, *event.ack, args_json);
  endpoint(toward).sendMessage(ws::Opcode::Text, message);
}

}  // namespace wsb::proxy
