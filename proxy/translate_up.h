// Translate up: a client with nothing but a WebSocket talks to a Socket.IO server. For each such
// client wsbridge is a Socket.IO v5 client upstream (Engine.IO v4 over the websocket transport):
// it connects the route's namespace with the auth built from upstream_auth, and only then lets
// the client's upgrade complete; afterwards envelope messages and events are translated both
// ways, with acks, binary attachments and filters.
//
// With `reconnect`, losing the upstream (not a server DISCONNECT) keeps the client: it hears
// {"event":"reconnecting"}, its messages are translated and held (up to the configured count and
// bytes, beyond that close 1013), a new upstream connection is asked for with exponential backoff
// and jitter, joined with the same auth, the held messages sent in order, and the client hears
// {"event":"reconnected"}. Acks the lost upstream owed are answered {"error":...} at once.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "codec/envelope.h"
#include "codec/http1.h"
#include "codec/socketio.h"
#include "config/config.h"
#include "filters/chain.h"
#include "proxy/bridge.h"
#include "proxy/ws_endpoint.h"

namespace wsb::proxy {

struct TranslateUpOptions {
  std::string nsp = "/";
  std::string auth_json;  // CONNECT payload; empty = none
  envelope::Shape shape = envelope::Shape::Json;
  bool allow_nsp = false;
  std::string binary_event;
  std::string text_event = "message";
  bool close_on_bad_envelope = false;
  config::Reconnect reconnect;
  // A reconnection whose new upstream has not answered the OPEN and namespace CONNECT by then
  // is a failed attempt (the cluster's handshake_timeout, as for the first connection).
  Duration join_timeout{5000};
};

class TranslateUp : public Bridge, public WsEndpointOwner {
 public:
  struct Callbacks {
    std::function<void()> ready;                         // upstream CONNECT accepted
    std::function<void(std::string message)> refused;    // CONNECT_ERROR or failure before ready
    std::function<void()> done;                          // both sides closed (defer deletion)
    // With reconnect: open a new upstream connection; upstreamReconnected() or
    // reconnectFailed() follows.
    std::function<void()> reconnect;
    // The upstream sent a packet that does not decode (the connection is then closed).
    std::function<void(std::string_view why)> parse_error;
  };

  TranslateUp(Dispatcher& dispatcher, MaskSource& masks, bufferevent* upstream,
              const WsEndpointOptions& options, filters::FilterChain* chain,
              TranslateUpOptions translate, Callbacks callbacks);

  // Starts the Engine.IO / Socket.IO handshake on the upstream WebSocket.
  void start();
  // After ready(): the client's upgrade is complete; relay from now on.
  void attachClient(bufferevent* client);
  // Answers to Callbacks::reconnect: a new upstream WebSocket (already upgraded) and its
  // endpoint's label, or why not.
  void upstreamReconnected(bufferevent* upstream, const std::string* label);
  void reconnectFailed(std::string_view why);
  // The client's endpoint once attached (its message counts feed the stats), else null.
  const WsEndpoint* clientEndpoint() const { return client_.get(); }

  // Bridge
  void drain(std::string_view reason) override;
  const filters::CloseInfo& closeInfo() const override { return close_info_; }
  void notify(filters::Side toward, std::string_view notice) override;
  void ackError(filters::Side toward, const filters::Event& event,
                std::string_view args_json) override;
  void close(uint16_t code, std::string_view reason) override;
  bool ping(filters::Side side) override;
  void pauseReading(filters::Side side) override;
  void resumeReading(filters::Side side) override;

 private:
  // WsEndpointOwner
  void onWsMessage(WsEndpoint& from, ws::Opcode opcode, evbuffer* payload) override;
  void onWsCloseFrame(WsEndpoint& from, uint16_t code, std::string_view reason) override;
  void onWsGone(WsEndpoint& from, uint16_t code, std::string_view reason) override;
  void onWsDrained(WsEndpoint& endpoint) override;
  void onWsClosed(WsEndpoint& endpoint) override;
  void onWsPong(WsEndpoint& endpoint, std::string_view payload) override;

  void onUpstreamText(std::string_view text);
  void onUpstreamPacket(const sio::Packet& packet, const std::vector<std::string>* attachments);
  void onClientText(std::string_view text);
  void onClientBinary(evbuffer* payload);
  void sendUpstream(const std::string& eio_text);
  void sendUpstreamBinary(std::string_view bytes);
  bool hold(ws::Opcode opcode, std::string_view bytes);  // while reconnecting
  // The upstream is gone: true when a reconnection takes over (else the caller closes).
  bool upstreamLost(std::string_view why);
  void scheduleReconnect();
  void joinTimedOut();
  void stopReconnecting();
  void rejoined();
  void sendClientText(std::string_view text);
  void clientError(std::string_view message);
  void fail(std::string message);  // before ready: refuse; after: close the client 1011
  void closeBoth(uint16_t client_code, std::string_view reason, const char* by);
  void noteClose(uint16_t code, std::string_view reason, const char* by);
  bool ourNamespace(std::string_view nsp) const;
  bool passFilters(filters::Direction direction, std::string_view nsp, std::string_view name,
                   std::optional<uint64_t> ack, size_t size, std::string_view args_json);

  enum class Phase { Opening, Connecting, Ready, Reconnecting, Closing };

  Dispatcher& dispatcher_;
  MaskSource& masks_;
  WsEndpointOptions options_;
  filters::FilterChain* chain_;
  TranslateUpOptions translate_;
  Callbacks callbacks_;
  std::unique_ptr<WsEndpoint> upstream_;
  std::unique_ptr<WsEndpoint> client_;
  Phase phase_ = Phase::Opening;

  sio::JsonReader reader_;
  sio::Reassembler reassembler_;
  uint64_t next_ack_ = 0;                      // our ack ids toward the upstream
  std::map<uint64_t, uint64_t> client_acks_;   // upstream ack id -> the client's ack id
  filters::CloseInfo close_info_;
  bool done_ = false;

  std::unique_ptr<Timer> reconnect_timer_;
  std::unique_ptr<Timer> join_deadline_;  // while a reconnected upstream joins; made on first use
  uint32_t reconnect_attempts_ = 0;  // failed attempts since the loss
  struct Held {
    ws::Opcode opcode;
    std::string bytes;
  };
  std::deque<Held> held_;
  size_t held_bytes_ = 0;
};

// Renders a route's upstream_auth templates into the CONNECT auth JSON object:
// "{query.token}", "{header.authorization}", "{cookie.sid}", "{jwt.sub}" and literal text.
// Empty when there are no templates.
std::string renderUpstreamAuth(const std::map<std::string, std::string>& templates,
                               const http::Request& request,
                               const std::map<std::string, std::string, std::less<>>& attributes);

}  // namespace wsb::proxy
