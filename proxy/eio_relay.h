// The Socket.IO pass-through over the websocket transport: frames relayed as in WsRelay, with the
// Engine.IO OPEN sid signed for stickiness, the heartbeat watched on both sides, and each
// Socket.IO event and ack handed to the filters.
//
// With `client_eio3`, the client speaks Engine.IO v3 / Socket.IO v4 (socket.io-client 2.x and the
// mini-program ports of it) and the upstream v4 / v5, and the relay adapts what differs
// (PROTOCOLS.md 3.3): the heartbeat is answered hop by hop on each side (v3 clients ping, v4
// servers ping), the default namespace is connected by wsbridge right after OPEN, CONNECT carries
// the client's namespace query as the auth object, CONNECT replies lose their sid, CONNECT_ERROR
// becomes a string, and binary frames gain or lose v3's leading packet-type byte.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "proxy/sio_inspector.h"
#include "proxy/sticky_sid.h"
#include "proxy/ws_relay.h"

namespace wsb::proxy {

struct EioRelayOptions {
  const SidSigner* signer = nullptr;
  uint32_t endpoint_tag = 0;
  bool rewrite_open = false;     // the session starts on this WebSocket (no sid in the query)
  Duration ping_interval{25000};  // until the upstream's OPEN says otherwise
  Duration ping_timeout{20000};
  SioInspector::ConnectCheck connect_check;  // filters' verdict on the client's CONNECT packets
  bool client_eio3 = false;                  // the client speaks Engine.IO v3 / Socket.IO v4
  uint32_t max_namespaces = 8;
  // false: a plain engine.io upstream (cluster protocol "engineio"): its messages are the app's,
  // not Socket.IO packets; only the Engine.IO framing is checked.
  bool socketio = true;               // joined or joining at once; then CONNECT_ERROR
  std::function<void(std::string_view name)> count_event;  // every EVENT, both ways (stats)
  // A packet that does not decode (logged and counted by the owner); the relay then closes.
  std::function<void(bool from_upstream, std::string_view why)> parse_error;
};

class EioRelay : public WsRelay {
 public:
  EioRelay(Dispatcher& dispatcher, MaskSource& masks, bufferevent* client, bufferevent* upstream,
           const WsEndpointOptions& options, filters::FilterChain* chain,
           const EioRelayOptions& eio, std::function<void()> on_done);

  void start();

  // DISCONNECT for every namespace the client joined and the Engine.IO close, then close 1001.
  void drain(std::string_view reason) override;
  void notify(filters::Side toward, std::string_view notice) override;
  void ackError(filters::Side toward, const filters::Event& event,
                std::string_view args_json) override;

 private:
  bool admit(WsEndpoint& from, ws::Opcode opcode, evbuffer* payload) override;
  bool forwardsUnchanged() const override { return false; }
  bool admitFromUpstream(ws::Opcode opcode, evbuffer* payload);
  bool admitFromClient(ws::Opcode opcode, evbuffer* payload);
  bool inspectFromClient(std::string_view text);
  // A client's CONNECT past max_namespaces: refused here, never forwarded.
  bool overNamespaceLimit(const sio::Packet& connect);
  // A v3 client's text message: true forwards the (possibly rewritten) payload.
  bool adaptFromClientV3(std::string_view text, evbuffer* payload);
  void heartbeatFailed(const char* why);
  // A packet that does not decode is never forwarded: both sides are closed, as a Socket.IO
  // server closes a connection on a parse error.
  bool parseError(bool from_upstream, std::string_view why);
  // Follows the joined namespaces and counts events, whatever the filters decide.
  void track(const sio::Packet& packet, bool from_upstream);

  EioRelayOptions eio_;
  SioInspector to_upstream_{filters::Direction::ToUpstream};
  SioInspector to_client_{filters::Direction::ToClient};
  // v4 client: it must answer the upstream's ping in time; v3 client: it must keep pinging.
  std::unique_ptr<Timer> pong_deadline_;
  std::unique_ptr<Timer> upstream_liveness_;  // the upstream must keep pinging
  bool open_seen_ = false;
  bool failed_ = false;  // after a parse error nothing more is forwarded
  std::vector<std::string> namespaces_;  // acknowledged by the upstream's CONNECT
  std::vector<std::string> requested_;   // asked for by the client, not left or refused
  sio::JsonReader json_;                 // event names with escapes
};

}  // namespace wsb::proxy
