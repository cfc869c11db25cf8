// The Engine.IO server role (v4, and v3 for old clients): one session per sid with its polling
// and websocket transports, the polling -> websocket upgrade, the heartbeat (v4: the server
// pings; v3: the client pings and the server answers), and a process-wide registry that tells
// any worker which worker owns a sid.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "codec/engineio.h"
#include "codec/http1.h"
#include "config/config.h"
#include "proxy/dispatcher.h"
#include "proxy/stats.h"
#include "proxy/ws_endpoint.h"

struct bufferevent;

namespace wsb::proxy {

// ---- Pure request checks (unit-tested) ---------------------------------------------------------

// What an Engine.IO request asks for, or the error the real server would answer it with.
struct EioRequest {
  const eio::ServerError* error = nullptr;  // set: answer it (see eio::server_error)
  config::Transport transport = config::Transport::Polling;
  std::string sid;  // empty: a handshake
  bool upgrade = false;
  eio::Version version = eio::Version::V4;  // of a handshake
};

// The ref server's checks, in its order: transport (missing / not enabled: 0), sid given (the
// caller looks it up: 1), no sid and not GET (2), transport=websocket without Upgrade (3),
// EIO not "4" (5), unless it is "3" and v3 clients are allowed.
EioRequest checkEioRequest(const http::Request& request,
                           const std::vector<config::Transport>& transports,
                           bool allow_eio3 = false);

// The error response: JSON {"code":N,"message":..} with the error's status for HTTP requests; a
// bare "400 Bad Request" with the message as text/html for WebSocket upgrades, as engine.io does.
std::string eioErrorResponse(const eio::ServerError& error, bool upgrade, bool keep_alive,
                             const http::Headers& extra = {});

// CORS headers for a polling response to a request from `origin` (empty when the request had no
// Origin or the origin is not in `allowed`; "*" allows any origin, echoed back with credentials).
http::Headers corsHeaders(const std::vector<std::string>& allowed, const http::Request& request);

// 20 characters of URL-safe base64 over 15 random bytes, like engine.io's base64id.
std::string makeBase64Id();

// The client's query without the Engine.IO parameters (EIO, transport, sid, t, b64, j).
std::string appQuery(std::string_view query);

// ---- The session -------------------------------------------------------------------------------

// The application above Engine.IO (translate down's Socket.IO logic).
class EioApp {
 public:
  virtual ~EioApp() = default;
  // One Engine.IO message packet: text, or bytes when `binary`.
  virtual void onEioMessage(std::string_view data, bool binary) = 0;
  // The session ended (`reason` for the log); sends are ignored from now on.
  virtual void onEioClose(std::string_view reason) = 0;
  // After onEioClose: every transport is released; the owner may delete the session.
  virtual void onEioFinished() = 0;
  // The client's transport was congested() and has drained: the app may produce again.
  virtual void onEioDrained() {}
};

// Writes the HTTP response to one polling request. It may run on another worker than the
// session's: the connection that asked wraps itself in it.
using PollResponder = std::function<void(std::string response)>;

struct EioSessionOptions {
  Duration ping_interval{25000};
  Duration ping_timeout{20000};
  Duration upgrade_timeout{10000};
  uint64_t max_payload = 1000000;
  bool allow_upgrade = true;  // websocket enabled on the route
  eio::Version version = eio::Version::V4;
  bool supports_binary = true;  // v3 polling: binary bodies unless the client asked b64=1
  WsEndpointOptions ws;
};

class EioSession : public WsEndpointOwner {
 public:
  EioSession(Dispatcher& dispatcher, MaskSource& masks, std::string sid, EioSessionOptions options,
             EioApp& app);
  ~EioSession() override;
  EioSession(const EioSession&) = delete;
  EioSession& operator=(const EioSession&) = delete;

  const std::string& sid() const { return sid_; }

  // The handshake answer over polling: registers the sid and starts the heartbeat; returns the
  // 200 response carrying the OPEN packet.
  std::string openPolling(bool keep_alive, const http::Headers& extra);
  // The handshake over websocket: the 101 is already written to `bev`; OPEN is the first frame.
  void openWebSocket(bufferevent* bev);

  // A polling GET or POST for this session. `poll_id` names the request for pollAborted.
  void handlePoll(const http::Request& request, const http::Headers& extra, uint64_t poll_id,
                  PollResponder respond);
  // The connection carrying a held GET went away: the ref server closes the session.
  void pollAborted(uint64_t poll_id);
  // A websocket for this session (the 101 is written): the upgrade probe, or refused.
  void attachWebSocket(bufferevent* bev);

  // Engine.IO message packets toward the client.
  void send(std::string_view text);
  void sendBinary(std::string_view bytes);
  // Server-initiated close.
  void close(std::string_view reason);
  bool closed() const { return closed_; }
  // By Flow: the Engine.IO messages the client sent and was sent, and their payload bytes
  // (heartbeats and other control packets left out), counted for the route's stats.
  const uint64_t (&messageCounts() const)[2] { return messages_; }
  const uint64_t (&byteCounts() const)[2] { return bytes_; }
  bool upgraded() const { return ws_ != nullptr; }

  // Backpressure toward the client: true while its websocket output is over the high watermark,
  // or more than kPollHighWater bytes wait for a polling GET; onEioDrained() follows.
  bool congested() const;
  // Stops / restarts reading the client's websocket (a polling client cannot be paused).
  void pauseReading();
  void resumeReading();
  static constexpr size_t kPollHighWater = 1u << 20;

 private:
  struct Queued {
    eio::PacketType type;
    bool binary;
    std::string data;
  };
  enum class Closer { Server, Client };

  void enqueue(eio::PacketType type, std::string_view data, bool binary);
  void countMessage(Flow flow, size_t size) {
    ++messages_[static_cast<int>(flow)];
    bytes_[static_cast<int>(flow)] += size;
  }
  void flushPoll();
  void answerPoll(std::string body, std::string_view content_type);
  void answerPoll(eio::PacketType type);  // a one-packet body: noop, close
  void startHeartbeat();
  void onPacket(const eio::Packet& packet);
  void onPingDue();
  void endSession(std::string_view reason, Closer closer);
  void finishUpgrade();
  void dropProbe(std::string_view why);
  void maybeFinished();
  void retire(std::unique_ptr<WsEndpoint> endpoint);

  // WsEndpointOwner
  void onWsMessage(WsEndpoint& from, ws::Opcode opcode, evbuffer* payload) override;
  void onWsCloseFrame(WsEndpoint& from, uint16_t code, std::string_view reason) override;
  void onWsGone(WsEndpoint& from, uint16_t code, std::string_view reason) override;
  void onWsDrained(WsEndpoint& endpoint) override;
  void onWsClosed(WsEndpoint& endpoint) override;

  Dispatcher& dispatcher_;
  MaskSource& masks_;
  std::string sid_;
  EioSessionOptions options_;
  EioApp& app_;

  uint64_t messages_[2] = {0, 0};
  uint64_t bytes_[2] = {0, 0};
  std::vector<Queued> queue_;  // polling: packets waiting for a GET
  size_t queued_bytes_ = 0;
  PollResponder pending_get_;
  uint64_t pending_get_id_ = 0;
  bool pending_keep_alive_ = true;
  http::Headers pending_extra_;

  std::unique_ptr<WsEndpoint> ws_;     // the websocket transport, once open or upgraded
  std::unique_ptr<WsEndpoint> probe_;  // a websocket being probed for the upgrade
  bool probed_ = false;                // 3probe sent: GETs are answered with a noop
  std::vector<std::unique_ptr<WsEndpoint>> retired_;  // closed endpoints, freed with the session

  Timer ping_timer_;
  Timer pong_timer_;
  Timer upgrade_timer_;
  std::string scratch_;  // base64 decoding
  bool registered_ = false;
  bool reading_paused_ = false;
  bool closed_ = false;
  bool finished_ = false;
};

// ---- Which worker owns a sid -------------------------------------------------------------------

// Process-wide and mutex-protected: polling requests of one session may arrive on any worker
// (each has its own SO_REUSEPORT listener). The session pointer is only used on its owner's
// thread: find() hands it out only when the caller runs on the owning dispatcher.
class EioRegistry {
 public:
  static EioRegistry& instance();

  void add(const std::string& sid, Dispatcher* owner, EioSession* session);
  void remove(const std::string& sid);
  // False when the sid is unknown. Else *owner is set, and *session when owner == here.
  bool find(const std::string& sid, Dispatcher* here, Dispatcher** owner, EioSession** session);
  size_t size();

 private:
  struct Entry {
    Dispatcher* owner;
    EioSession* session;
  };
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> sessions_;
};

}  // namespace wsb::proxy
