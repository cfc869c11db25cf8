// What EioConnection serves over one Engine.IO session: translate down's Socket.IO server, or
// the Engine.IO v3 pass-through adapter. The base holds what they share: the handshake filters,
// the filter callbacks every such app answers alike, the route's Engine.IO options, and the
// registration that lets SIGTERM drain it.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "codec/http1.h"
#include "filters/chain.h"
#include "proxy/dispatcher.h"
#include "proxy/eio_server.h"
#include "proxy/snapshot.h"
#include "proxy/stats.h"

namespace wsb::proxy {

class Worker;

class EioServerApp : public Deletable, public EioApp, public filters::FilterCallbacks {
 public:
  // The handshake decision: an HTTP response refusing the session, or empty to go on.
  using Admitted = std::function<void(std::string rejection)>;

  EioServerApp(Worker& worker, SnapshotPtr snapshot, const config::Route& route,
               const ListenerRuntime& listener, http::Request handshake, std::string client_ip);
  ~EioServerApp() override;

  virtual EioSession& eio() = 0;

  // Runs the route's handshake filters on the session's first request, then ready().
  void admit(Admitted admitted);
  // The connection that asked went away, or the handshake was refused: nothing was opened.
  void discard();
  // After the OPEN went out.
  void opened();

  // filters::FilterCallbacks shared by every app
  void reject(int status, std::string_view message, const http::Headers& extra) override;
  // A filter closes the session: counted, then closeSession().
  void close(uint16_t code, std::string_view reason) final;
  void resumeHandshake() override;
  std::unique_ptr<filters::FilterCallbacks::Timer> createTimer(std::function<void()> cb) override;
  const filters::Clock& clock() const override { return filters::SystemClock::instance(); }
  filters::Attributes& attributes() override { return attributes_; }

 protected:
  // The filters let the session in: answer decide({}) now, or once what it needs is ready.
  virtual void ready() { decide({}); }
  virtual void onOpened() {}
  // The session closes (a filter's decision, a protocol error, the drain).
  virtual void closeSession(uint16_t code, std::string_view reason) = 0;
  // SIGTERM: the session closes (apps first say goodbye the way their protocol does).
  virtual void drainSession() { closeSession(ws::close_code::kGoingAway, "server shutting down"); }
  void decide(std::string rejection);
  // The Engine.IO options of the route: its heartbeat (a heartbeat filter's, if any), payload
  // limit and transports, and v3 framing for an EIO=3 handshake.
  EioSessionOptions sessionOptions() const;
  // Stats: a filter's decision ("reject_401", "notify", ...) labelled by the acting filter's
  // type; the session's end, with the client's messages each way (once, if it opened).
  void countFilterAction(std::string_view action);
  void countClosed();
  // A Socket.IO packet that did not decode: counted by route, logged once for this session.
  // The caller closes the session; nothing of the packet was forwarded.
  void noteParseError(bool from_upstream, std::string_view why);
  // One GET /connections entry while the session is open.
  bool describe(ConnectionInfo& out);

  Worker& worker_;
  SnapshotPtr snapshot_;
  const config::Route& route_;
  const ListenerRuntime& listener_;
  const ClusterRuntime* cluster_;
  http::Request handshake_request_;
  std::string client_ip_;

  std::unique_ptr<filters::FilterChain> chain_;
  std::unique_ptr<filters::HandshakeContext> context_;
  http::Headers upstream_headers_;  // added by filters (forwarded claims)
  filters::Attributes attributes_;
  filters::CloseInfo close_info_;
  RouteEvents& events_;  // the route's Socket.IO event counts
  bool open_ = false;
  std::chrono::steady_clock::time_point opened_at_;
  bool discarded_ = false;

 private:
  Admitted admitted_;
  bool counted_closed_ = false;
  bool parse_error_logged_ = false;
};

}  // namespace wsb::proxy
