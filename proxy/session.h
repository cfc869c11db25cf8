// One client connection from accept to close: reads the HTTP handshake, picks the route, connects
// the upstream (trying endpoints in turn), completes both handshakes and hands the two sockets to
// the route's bridge.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codec/http1.h"
#include "filters/chain.h"
#include "proxy/dispatcher.h"
#include "proxy/handshake_counts.h"
#include "proxy/snapshot.h"

struct bufferevent;

namespace wsb::proxy {

class Worker;
class Bridge;
struct ConnectionInfo;

class Session : public Deletable, public filters::FilterCallbacks {
 public:
  // `handshake` counts the connection against its source's max_handshakes_per_ip until the
  // first request has been read whole (or the connection ends first).
  Session(Worker& worker, SnapshotPtr snapshot, const ListenerRuntime& listener, int fd,
          std::string client_ip, uint16_t client_port, HandshakeSlot handshake);
  ~Session() override;

  void start();
  // Graceful shutdown (SIGTERM): close 1001 / refuse the pending handshake with 503.
  void drain();
  // Immediate close (drain timeout).
  void abort();
  // Fills `out` and returns true once the connection is bridged (GET /connections).
  bool describe(ConnectionInfo* out) const;

 private:
  enum class State { ReadingRequest, Filtering, Connecting, UpstreamHandshake, Responding, Bridging, Done };

  static void onClientRead(bufferevent*, void* self);
  static void onClientEvent(bufferevent*, short what, void* self);
  static void onClientFlushed(bufferevent*, void* self);
  static void onUpstreamRead(bufferevent*, void* self);
  static void onUpstreamEvent(bufferevent*, short what, void* self);

  void onTimeout();
  void handleRequest();
  // Socket.IO routes: Engine.IO query checks, the sticky endpoint from a signed sid.
  bool checkSocketIoRequest();
  // A request of an Engine.IO v3 client that the v3 adapter serves (see eio3_passthrough.h).
  bool eio3Session(const http::Request& req) const;
  void eioError(int code, int status, std::string_view message);
  void pickEndpoints();
  std::string upstreamTarget();
  // The Sec-WebSocket-Protocol value sent upstream (empty: none).
  std::string upstreamProtocols();
  void appendForwardedHeaders(http::Headers& headers);
  // The filters' verdict on a client's Socket.IO CONNECT: nullopt admits it.
  std::optional<std::string> checkConnect(std::string_view auth);
  // Polling pass-through: one upstream request per client request.
  void sendPollingRequest();
  void handlePollingResponse();
  std::string filterPayload(std::string_view body, filters::Direction direction);
  // Keep-alive: read the client's next request on the same connection.
  void nextRequest();

  // filters::FilterCallbacks
  void reject(int status, std::string_view message, const http::Headers& extra) override;
  void resumeHandshake() override;
  void consumeProtocols(std::vector<std::string> entries) override {
    consumed_protocols_ = std::move(entries);
  }
  void notify(filters::Side toward, std::string_view notice) override;
  void ackError(filters::Side toward, const filters::Event& event,
                std::string_view args_json) override;
  void close(uint16_t code, std::string_view reason) override;
  bool ping(filters::Side side) override;
  void pauseReading(filters::Side side, Duration delay) override;
  std::unique_ptr<filters::FilterCallbacks::Timer> createTimer(std::function<void()> cb) override;
  const filters::Clock& clock() const override;
  filters::Attributes& attributes() override;
  // Sends a complete HTTP response and closes the client once it is written.
  void respond(std::string response);
  void respondDrainPoll();
  void respondError(int status, std::string_view error, const http::Headers& extra = {});

  void connectNext();
  void onUpstreamConnected();
  void onUpstreamFailed(const std::string& why);
  void handleUpstreamResponse();
  void onUpstreamUpgraded(const std::string& protocol);
  // Completes the client's upgrade (101 with `protocol`) and returns its bufferevent.
  bufferevent* acceptClient(const std::string& protocol);
  void reconnectUpstream();
  // Once bridged: frees what only the handshakes needed (see the .cc for what each mode keeps).
  void releaseHandshake();
  void startTranslateUp(bufferevent* upstream, const struct WsEndpointOptions& options,
                        std::function<void()> on_done);
  void releaseUpstream();
  void finish();
  void countOpened();
  // Counts a filter decision under the acting filter's type.
  void countFilterAction(std::string_view action);
  // A Socket.IO packet that did not decode: logged once for this connection, counted by route.
  void noteParseError(bool from_upstream, std::string_view why);
  // A TLS listener's handshake (or a later TLS error before the request) failed: counted, and
  // logged with the peer and OpenSSL's reason, one line a second per worker at most.
  void tlsFailed();

  Worker& worker_;
  SnapshotPtr snapshot_;
  const ListenerRuntime& listener_;
  std::string client_ip_;
  uint16_t client_port_;
  State state_ = State::ReadingRequest;
  // Held from accept to the first complete request. Later requests of a keep-alive connection
  // are not counted: they are timed by the keep-alive deadline.
  HandshakeSlot handshake_slot_;

  bufferevent* client_ = nullptr;
  bufferevent* upstream_ = nullptr;
  // Both parsers, and the deadline, go once the bridge no longer needs them (releaseHandshake).
  std::unique_ptr<http::RequestParser> request_parser_;
  std::unique_ptr<http::ResponseParser> response_parser_;
  std::unique_ptr<proxy::Timer> timer_;  // handshake / connect deadline

  const config::Route* route_ = nullptr;
  const ClusterRuntime* cluster_ = nullptr;
  std::vector<size_t> attempts_;  // endpoint indices still to try, in order
  size_t endpoint_ = SIZE_MAX;    // the endpoint in use
  std::string upstream_key_;      // our Sec-WebSocket-Key toward the upstream
  std::string last_failure_;

  // How the upstream is spoken to once the endpoint is chosen.
  enum class Mode { WebSocket, EioWebSocket, EioPolling, TranslateUp };
  Mode mode_ = Mode::WebSocket;
  std::optional<size_t> sticky_endpoint_;  // from a signed sid
  std::string client_sid_;                 // as the client sent it
  std::string upstream_sid_;               // as the upstream knows it
  bool client_eio3_ = false;               // Engine.IO v3 client, adapted to a v4 upstream
  bool reconnecting_ = false;              // translate up: connecting a replacement upstream

  std::unique_ptr<filters::FilterChain> chain_;
  std::unique_ptr<filters::HandshakeContext> handshake_;
  http::Headers upstream_headers_;  // added by filters (forwarded claims)
  filters::Attributes attributes_;
  std::vector<std::string> consumed_protocols_;  // Sec-WebSocket-Protocol entries with credentials
  std::unique_ptr<proxy::Timer> shape_timers_[2];  // client, upstream
  int http_status_ = 0;            // when the session ended with an HTTP answer
  uint32_t requests_served_ = 0;   // keep-alive requests already answered
  bool in_connect_check_ = false;  // reject() now refuses a CONNECT packet
  bool parse_error_logged_ = false;
  std::optional<std::string> connect_refusal_;

  std::unique_ptr<Bridge> bridge_;
  std::chrono::steady_clock::time_point connect_started_;  // of the current upstream attempt
  std::chrono::steady_clock::time_point opened_at_;        // bridged since
};

}  // namespace wsb::proxy
