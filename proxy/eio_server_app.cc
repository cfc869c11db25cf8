// EioServerApp: the handshake filters and shared filter callbacks of Engine.IO server apps.
#include "proxy/eio_server_app.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "filters/heartbeat.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

namespace wsb::proxy {

namespace {
std::string jsonError(std::string_view error) {
  return "{\"error\":\"" + http::jsonEscape(error) + "\"}";
}
}  // namespace

EioServerApp::EioServerApp(Worker& worker, SnapshotPtr snapshot, const config::Route& route,
                           const ListenerRuntime& listener, http::Request handshake,
                           std::string client_ip)
    : worker_(worker),
      snapshot_(std::move(snapshot)),
      route_(route),
      listener_(listener),
      cluster_(snapshot_->cluster(route.cluster)),
      handshake_request_(std::move(handshake)),
      client_ip_(std::move(client_ip)),
      events_(worker.stats().events(route.path)) {
  LiveObjects::instance().add(
      &worker.dispatcher(), this,
      [this] {
        if (open_) drainSession();
      },
      [this](ConnectionInfo& info) { return describe(info); });
}

EioServerApp::~EioServerApp() { LiveObjects::instance().remove(this); }

EioSessionOptions EioServerApp::sessionOptions() const {
  EioSessionOptions options;
  options.ping_interval = route_.ping_interval;
  options.ping_timeout = route_.ping_timeout;
  options.max_payload = route_.max_payload;
  options.allow_upgrade = std::find(route_.transports.begin(), route_.transports.end(),
                                    config::Transport::WebSocket) != route_.transports.end();
  options.ws.max_message = std::min<uint64_t>(route_.max_message, route_.max_payload);
  // A heartbeat filter on the route sets the Engine.IO heartbeat wsbridge serves.
  for (const auto& factory : snapshot_->filtersOf(route_)) {
    const filters::HeartbeatSettings* heartbeat = filters::heartbeatSettings(*factory);
    if (heartbeat != nullptr && heartbeat->ping_interval.count() > 0) {
      options.ping_interval = heartbeat->ping_interval;
      options.ping_timeout = heartbeat->ping_timeout;
    }
  }
  std::string version;
  if (handshake_request_.queryParam("EIO", &version) && version == "3") {
    // socket.io-client 2.x (checked against allow_eio3 before): binary polling bodies unless
    // it asked for base64.
    options.version = eio::Version::V3;
    std::string b64;
    options.supports_binary = !handshake_request_.queryParam("b64", &b64);
  }
  return options;
}

void EioServerApp::admit(Admitted admitted) {
  admitted_ = std::move(admitted);
  const auto& factories = snapshot_->filtersOf(route_);
  if (!factories.empty()) {
    chain_ = std::make_unique<filters::FilterChain>(factories, *this);
    context_ = std::make_unique<filters::HandshakeContext>(filters::HandshakeContext{
        handshake_request_, client_ip_, route_, upstream_headers_, true, {}});
    if (chain_->runHandshake(*context_) == filters::Status::Stop) return;
  }
  ready();
}

void EioServerApp::decide(std::string rejection) {
  if (!admitted_) return;
  Admitted admitted = std::move(admitted_);
  admitted_ = nullptr;
  admitted(std::move(rejection));
}

void EioServerApp::discard() {
  if (discarded_) return;
  discarded_ = true;
  admitted_ = nullptr;
  worker_.dispatcher().deferDelete(std::unique_ptr<Deletable>(this));
}

void EioServerApp::opened() {
  open_ = true;
  opened_at_ = worker_.dispatcher().now();
  worker_.stats().route(route_.path).countOpened();
  worker_.stats().cluster(route_.cluster).countOpened();
  if (chain_) chain_->onEstablished();
  onOpened();
}

void EioServerApp::countFilterAction(std::string_view action) {
  if (!chain_) return;
  if (const std::string* type = snapshot_->filterType(route_, chain_->acting())) {
    worker_.stats().countFilterAction(*type, action);
  }
}

void EioServerApp::noteParseError(bool from_upstream, std::string_view why) {
  worker_.stats().countParseError(route_.path, from_upstream ? "upstream" : "client");
  if (parse_error_logged_) return;
  parse_error_logged_ = true;
  spdlog::info("{}: route {}: {} sent a Socket.IO packet that does not decode ({}); not forwarded, "
               "session closed",
               client_ip_, route_.path, from_upstream ? "the upstream" : "the client", why);
}

bool EioServerApp::describe(ConnectionInfo& out) {
  if (!open_ || counted_closed_) return false;
  out.route = route_.path;
  out.cluster = route_.cluster;
  out.client = client_ip_;
  if (auto sub = attributes_.find("jwt.sub"); sub != attributes_.end()) out.user = sub->second;
  out.age_us = std::chrono::duration_cast<std::chrono::microseconds>(
                   worker_.dispatcher().now() - opened_at_)
                   .count();
  for (int flow = 0; flow < 2; ++flow) {
    out.messages[flow] = eio().messageCounts()[flow];
    out.bytes[flow] = eio().byteCounts()[flow];
  }
  return true;
}

void EioServerApp::countClosed() {
  if (!open_ || counted_closed_) return;
  counted_closed_ = true;
  uint16_t code = close_info_.code != 0 ? close_info_.code : ws::close_code::kAbnormal;
  worker_.stats().route(route_.path).countClosed(code, eio().messageCounts(), eio().byteCounts());
  worker_.stats().cluster(route_.cluster).countClosed(code, {0, 0}, {0, 0});
}

void EioServerApp::reject(int status, std::string_view message, const http::Headers& extra) {
  countFilterAction("reject_" + std::to_string(status));
  if (admitted_) {
    decide(http::errorResponse(status, jsonError(message), extra));
    return;
  }
  closeSession(ws::close_code::kPolicy, message);
}

void EioServerApp::close(uint16_t code, std::string_view reason) {
  countFilterAction("close_" + std::to_string(code));
  closeSession(code, reason);
}

void EioServerApp::resumeHandshake() {
  if (!admitted_ || !chain_ || !context_) return;
  if (chain_->resumeHandshake(*context_) == filters::Status::Stop) return;
  ready();
}

std::unique_ptr<filters::FilterCallbacks::Timer> EioServerApp::createTimer(
    std::function<void()> cb) {
  class FilterTimer final : public filters::FilterCallbacks::Timer {
   public:
    FilterTimer(Dispatcher& d, std::function<void()> cb) : timer_(d, std::move(cb)) {}
    void arm(Duration after) override { timer_.arm(after); }
    void cancel() override { timer_.cancel(); }

   private:
    proxy::Timer timer_;
  };
  return std::make_unique<FilterTimer>(worker_.dispatcher(), std::move(cb));
}

}  // namespace wsb::proxy
