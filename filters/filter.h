// The whole filter contract: per-connection filter objects, the hooks a bridge calls, and the
// callbacks a filter uses to act on its connection.
//
// A filter is made per connection by a FilterFactory, which is built once per config load from
// the filter's [filter.NAME] table (config errors surface then, never on the data path). The
// FilterChain, not the filter, walks the filters in the route's order.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "codec/http1.h"
#include "codec/ws_frame.h"
#include "config/config.h"

namespace wsb::filters {

using Duration = std::chrono::milliseconds;
using TimePoint = std::chrono::steady_clock::time_point;

// Time as filters see it; tests drive a manual clock.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;       // monotonic, for buckets and timeouts
  virtual int64_t unixSeconds() const = 0;  // wall clock, for JWT exp/nbf
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
  int64_t unixSeconds() const override {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  static const SystemClock& instance();
};

// Which way a message travels.
enum class Direction { ToUpstream, ToClient };
// Which connection a control action targets.
enum class Side { Client, Upstream };

enum class Status {
  Continue,  // pass to the next filter
  Stop,      // handshake only: the filter will call resumeHandshake() or reject() later
  Drop,      // message/event only: not forwarded (the filter has notified or closed as needed)
};

// Facts about the connection that filters set and read: "jwt.sub", "jwt.<claim>", "user".
using Attributes = std::map<std::string, std::string, std::less<>>;

struct HandshakeContext {
  const http::Request& request;
  std::string_view client_ip;
  const config::Route& route;
  // Extra headers sent to the upstream with the handshake (forwarded claims).
  http::Headers& upstream_headers;
  // True when the client speaks Socket.IO: credentials may also arrive in the CONNECT packet.
  bool socketio_client = false;
  // The Socket.IO CONNECT auth payload (JSON object text) when the bridge has it.
  std::string_view socketio_auth;
};

// A whole WebSocket message as a filter sees it (raw relay and the raw side of translations).
struct Message {
  Direction direction;
  ws::Opcode opcode;
  std::string_view payload;  // contiguous view; valid during the hook only
  // True when the bridge passes this same message to onEvent next (the raw side of a
  // translating route): filters that count or charge per message do it there, once.
  bool event_follows = false;
};

// A Socket.IO event (pass-through and translating routes).
struct Event {
  Direction direction;
  std::string_view nsp;
  std::string_view name;
  std::optional<uint64_t> ack;  // the ack id the sender asked for
  size_t size = 0;              // bytes of the packet including attachments
  // Lazily materialised JSON array of the arguments (without the event name).
  std::function<std::string_view()> args;
};

struct CloseInfo {
  uint16_t code = 0;
  std::string reason;
  std::string closed_by;  // "client", "upstream", "wsbridge"
};

// Implemented by the connection (bridge); what a filter may do to its connection.
class FilterCallbacks {
 public:
  virtual ~FilterCallbacks() = default;

  // Handshake: refuse with an HTTP status and JSON body (on a Socket.IO client whose credentials
  // came in CONNECT the bridge sends CONNECT_ERROR {"message": message} instead).
  virtual void reject(int status, std::string_view message, const http::Headers& extra = {}) = 0;
  // Handshake: continue after a hook returned Stop.
  virtual void resumeHandshake() = 0;
  // Handshake: these Sec-WebSocket-Protocol entries carried credentials (auth.jwt `protocol`).
  // A WebSocket bridge keeps them from the upstream and echoes the first in the client's 101
  // when the upstream selects no subprotocol (a browser fails a 101 that selects none of its
  // offers); bridges without subprotocols ignore it.
  virtual void consumeProtocols(std::vector<std::string> /*entries*/) {}

  // Sends a notice toward `toward`, rendered for that side: an envelope JSON such as
  // {"event":"rate-limit-exceeded","data":{...}} becomes a Socket.IO event on Socket.IO sides
  // and stays a text message on raw sides; other text is sent as a text message.
  virtual void notify(Side toward, std::string_view notice) = 0;
  // Answers an event's ack request with these JSON args (e.g. [{"error":"forbidden"}]).
  virtual void ackError(Side toward, const Event& event, std::string_view args_json) = 0;
  // Closes the whole connection: `code` toward the client (1008, 1009 ...), 1001 upstream.
  virtual void close(uint16_t code, std::string_view reason) = 0;
  // Sends a WebSocket ping to one side (heartbeat). False when that side has no WebSocket to
  // ping (an Engine.IO client of translate down: Engine.IO's own heartbeat watches it).
  virtual bool ping(Side side) = 0;
  // Stops reading from one side for `delay` (shaping), then resumes by itself.
  virtual void pauseReading(Side side, Duration delay) = 0;

  // A timer on the connection's event loop; cancelled when the handle is destroyed.
  class Timer {
   public:
    virtual ~Timer() = default;
    virtual void arm(Duration after) = 0;
    virtual void cancel() = 0;
  };
  virtual std::unique_ptr<Timer> createTimer(std::function<void()> callback) = 0;

  virtual const Clock& clock() const = 0;
  virtual Attributes& attributes() = 0;
};

class Filter {
 public:
  virtual ~Filter() = default;
  virtual Status onHandshake(HandshakeContext&) { return Status::Continue; }
  // Called once the bridge is established (both handshakes done): start timers here.
  virtual void onEstablished() {}
  virtual Status onMessage(Message&) { return Status::Continue; }
  virtual Status onEvent(Event&) { return Status::Continue; }
  // A Socket.IO client's CONNECT packet (pass-through routes): context.socketio_auth holds its
  // auth payload and context.request is the HTTP request that carried it (over polling, each
  // request stands alone: keep no state from onHandshake). Continue, or reject() and Stop: the
  // bridge drops the CONNECT and answers CONNECT_ERROR {"message": ...}.
  virtual Status onConnect(HandshakeContext&) { return Status::Continue; }
  virtual void onPong(Side) {}
  virtual void onClose(const CloseInfo&) {}
};

class FilterFactory {
 public:
  virtual ~FilterFactory() = default;
  virtual std::unique_ptr<Filter> create(FilterCallbacks& callbacks) const = 0;
  // Request headers whose upstream value only this filter may set (auth.jwt forward_claims).
  // The proxy strips the client's own from every upstream request of the route, whether or not
  // the filter sets them on that connection: a client must never be able to supply them.
  virtual std::vector<std::string> ownedUpstreamHeaders() const { return {}; }
};

using FactoryPtr = std::shared_ptr<const FilterFactory>;

}  // namespace wsb::filters
