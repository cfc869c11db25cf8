// Session: HTTP handshake on both sides, routing, endpoint choice and retries.
#include "proxy/session.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <openssl/err.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <functional>

#include "codec/engineio.h"
#include "proxy/connect_claims.h"
#include "proxy/eio_relay.h"
#include "proxy/notice_box.h"
#include "proxy/polling_namespaces.h"
#include "proxy/sio_inspector.h"
#include "proxy/translate_down.h"
#include "proxy/translate_up.h"
#include "proxy/upstream.h"
#include "proxy/upstream_log.h"
#include "proxy/worker.h"
#include "proxy/ws_relay.h"

namespace wsb::proxy {

namespace {
constexpr size_t kHandshakeReadLimit = 2 * 1024 * 1024;  // polling POST bodies
constexpr Duration kKeepAliveTimeout{60000};

std::string jsonError(std::string_view error, std::string_view key = {}, std::string_view value = {}) {
  std::string body = "{\"error\":\"" + http::jsonEscape(error) + "\"";
  if (!key.empty()) body += ",\"" + std::string(key) + "\":\"" + http::jsonEscape(value) + "\"";
  return body + "}";
}

std::string_view trimSpace(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool offered(const std::string* list, std::string_view protocol) {
  return list != nullptr && http::hasToken(*list, protocol);
}

// Messages and bytes are counted at the client's endpoint (what the client sent / received).
const WsEndpoint* clientEndpoint(Bridge* bridge) {
  if (auto* relay = dynamic_cast<WsRelay*>(bridge)) return &relay->client();
  if (auto* up = dynamic_cast<TranslateUp*>(bridge)) return up->clientEndpoint();
  return nullptr;
}

// By Flow: to upstream (what the client sent), to client (what it received).
void flowCounts(Bridge* bridge, uint64_t (&messages)[2], uint64_t (&bytes)[2]) {
  if (const WsEndpoint* client = clientEndpoint(bridge)) {
    messages[0] = client->messagesIn();
    bytes[0] = client->bytesIn();
    messages[1] = client->messagesOut();
    bytes[1] = client->bytesOut();
  }
}

// Counted once per bridged connection, at its end: the endpoints hold the counts until then.
void countClosed(RouteCounters& counters, Bridge* bridge) {
  uint16_t code = bridge ? bridge->closeInfo().code : 0;
  uint64_t messages[2] = {0, 0}, bytes[2] = {0, 0};
  flowCounts(bridge, messages, bytes);
  // No close code: the TCP connection just ended (1006, never sent on the wire).
  counters.countClosed(code != 0 ? code : 1006, messages, bytes);
}
}  // namespace

Session::Session(Worker& worker, SnapshotPtr snapshot, const ListenerRuntime& listener, int fd,
                 std::string client_ip, uint16_t client_port, HandshakeSlot handshake)
    : worker_(worker),
      snapshot_(std::move(snapshot)),
      listener_(listener),
      client_ip_(std::move(client_ip)),
      client_port_(client_port),
      handshake_slot_(std::move(handshake)),
      request_parser_(std::make_unique<http::RequestParser>()) {
  event_base* base = worker_.dispatcher().base();
  constexpr int kOptions = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
  if (listener_.tls) {
    SSL* ssl = SSL_new(listener_.tls.get());
    client_ = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, kOptions);
    bufferevent_openssl_set_allow_dirty_shutdown(client_, 1);
  } else {
    client_ = bufferevent_socket_new(base, fd, kOptions);
  }
}

Session::~Session() {
  bridge_.reset();
  if (client_ != nullptr) bufferevent_free(client_);
  releaseUpstream();
}

void Session::start() {
  bufferevent_setcb(client_, &Session::onClientRead, nullptr, &Session::onClientEvent, this);
  bufferevent_setwatermark(client_, EV_READ, 0, kHandshakeReadLimit);
  bufferevent_enable(client_, EV_READ);
  timer_ = std::make_unique<proxy::Timer>(worker_.dispatcher(), [this] { onTimeout(); });
  timer_->arm(listener_.handshake_timeout);
}

// One deadline at a time, whose meaning depends on the state.
void Session::onTimeout() {
  switch (state_) {
    case State::ReadingRequest:
      if (requests_served_ > 0 && evbuffer_get_length(bufferevent_get_input(client_)) == 0) {
        finish();  // an idle keep-alive connection just ends
      } else {
        respondError(408, "handshake timeout");
      }
      break;
    case State::Connecting:
    case State::UpstreamHandshake:
      onUpstreamFailed("timeout");
      break;
    case State::Responding:
      finish();  // a client that does not read its error must not hold the connection
      break;
    case State::Filtering:
    case State::Bridging:
    case State::Done:
      break;
  }
}

void Session::drain() {
  switch (state_) {
    case State::Connecting:
    case State::UpstreamHandshake:
      if (mode_ == Mode::EioPolling && !client_sid_.empty() &&
          request_parser_->request().method == "GET") {
        respondDrainPoll();
        break;
      }
      [[fallthrough]];
    case State::ReadingRequest:
    case State::Filtering:
      respondError(503, "shutting down");
      break;
    case State::Bridging:
      bridge_->drain("server shutting down");
      break;
    case State::Responding:
    case State::Done:
      break;
  }
}

// A pass-through client's held GET during a drain: DISCONNECT of "/", so the client hears
// "io server disconnect" as over WebSocket and, left with no namespace, closes its session
// itself. No Engine.IO close follows in the same body: socket.io-client would then report the
// same socket disconnected twice. Nothing records which namespaces a polling client joined, so
// others end at their next poll (refused: "transport error"). The abandoned upstream GET ends
// the server's session.
void Session::respondDrainPoll() {
  http::Response out;
  out.status = 200;
  out.reason = "OK";
  out.headers.push_back({"Content-Type", "text/plain; charset=UTF-8"});
  out.headers.push_back({"Connection", "close"});
  out.body = "41";
  respond(http::serializeResponse(out));
}

void Session::abort() { finish(); }

void Session::countOpened() {
  opened_at_ = worker_.dispatcher().now();
  worker_.stats().route(route_->path).countOpened();
  worker_.stats().cluster(route_->cluster).countOpened();
}

bool Session::describe(ConnectionInfo* out) const {
  if (state_ != State::Bridging) return false;
  out->route = route_->path;
  out->cluster = route_->cluster;
  out->client = client_ip_ + ":" + std::to_string(client_port_);
  auto sub = attributes_.find("jwt.sub");
  if (sub != attributes_.end()) out->user = sub->second;
  auto age = worker_.dispatcher().now() - opened_at_;
  out->age_us = std::chrono::duration_cast<std::chrono::microseconds>(age).count();
  flowCounts(bridge_.get(), out->messages, out->bytes);
  return true;
}

void Session::countFilterAction(std::string_view action) {
  if (!chain_) return;
  if (const std::string* type = snapshot_->filterType(*route_, chain_->acting())) {
    worker_.stats().countFilterAction(*type, action);
  }
}

void Session::noteParseError(bool from_upstream, std::string_view why) {
  worker_.stats().countParseError(route_->path, from_upstream ? "upstream" : "client");
  if (parse_error_logged_) return;
  parse_error_logged_ = true;
  spdlog::info("{}: route {}: {} sent a Socket.IO packet that does not decode ({}); not forwarded, "
               "connection closed",
               client_ip_, route_->path, from_upstream ? "the upstream" : "the client", why);
}

void Session::finish() {
  if (state_ == State::Done) return;
  if (state_ == State::Bridging || reconnecting_) {
    countClosed(worker_.stats().route(route_->path), bridge_.get());
    uint16_t code = bridge_ && bridge_->closeInfo().code != 0 ? bridge_->closeInfo().code : 1006;
    worker_.stats().cluster(route_->cluster).countClosed(code, {0, 0}, {0, 0});
  }
  state_ = State::Done;
  handshake_slot_.release();  // now, not at the deferred delete
  if (chain_) {
    filters::CloseInfo info;
    if (bridge_) {
      info = bridge_->closeInfo();
    } else {
      info.code = static_cast<uint16_t>(http_status_);
      info.closed_by = "wsbridge";
    }
    chain_->onClose(info);
  }
  if (timer_) timer_->cancel();
  worker_.remove(this);
  worker_.dispatcher().deferDelete(std::unique_ptr<Deletable>(this));
}

// ---- client handshake ----

void Session::onClientRead(bufferevent*, void* self) {
  auto* s = static_cast<Session*>(self);
  if (s->state_ != State::ReadingRequest) return;
  evbuffer* in = bufferevent_get_input(s->client_);
  size_t len = evbuffer_get_length(in);
  const char* data = reinterpret_cast<const char*>(evbuffer_pullup(in, -1));
  size_t consumed = s->request_parser_->feed(data, len);
  evbuffer_drain(in, consumed);
  switch (s->request_parser_->state()) {
    case http::ParseState::NeedMore:
      if (evbuffer_get_length(in) >= kHandshakeReadLimit) s->respondError(431, "request too large");
      return;
    case http::ParseState::Error:
      s->respondError(s->request_parser_->errorStatus() ? s->request_parser_->errorStatus() : 400,
                      s->request_parser_->errorReason());
      return;
    case http::ParseState::Done:
      s->handshake_slot_.release();  // the request is whole: no longer a slow client's to hold
      s->handleRequest();
      return;
  }
}

void Session::onClientEvent(bufferevent*, short what, void* self) {
  auto* s = static_cast<Session*>(self);
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
    if (what & BEV_EVENT_ERROR && s->listener_.tls) s->tlsFailed();
    s->finish();
  }
}

void Session::tlsFailed() {
  const std::string why = sslErrors(client_);
  // None: a socket error, or a peer that closed before sending a ClientHello (a TCP health check
  // connects and leaves). Not a failed handshake.
  if (why.empty() || why.find("unexpected eof") != std::string::npos) {
    spdlog::debug("{}:{}: connection lost during the TLS handshake{}{}", client_ip_, client_port_,
                  why.empty() ? "" : ": ", why);
    return;
  }
  worker_.stats().countTlsFailure(listener_.config->name);
  // One line a second per worker at most: a scanner must not flood the log.
  thread_local std::chrono::steady_clock::time_point logged{};
  thread_local uint64_t unlogged = 0;
  const auto now = std::chrono::steady_clock::now();
  if (now - logged < std::chrono::seconds(1)) {
    ++unlogged;
    return;
  }
  spdlog::warn("listener {}: TLS handshake with {}:{} failed: {}{}", listener_.config->name,
               client_ip_, client_port_, why,
               unlogged ? fmt::format(" ({} more in the last second)", unlogged) : std::string());
  logged = now;
  unlogged = 0;
}

void Session::handleRequest() {
  http::Request& req = request_parser_->request();
  const std::string* host = req.header("host");
  route_ = snapshot_->route(listener_.config->name, host ? *host : std::string_view{}, req.path);
  if (route_ == nullptr) {
    respondError(404, "no route", {});
    return;
  }
  bool socketio = route_->downstream == config::Protocol::SocketIO;
  const ClusterRuntime* cluster = snapshot_->cluster(route_->cluster);
  if (socketio && cluster != nullptr &&
      (cluster->config->protocol == config::Protocol::WebSocket || eio3Session(req))) {
    // wsbridge is the (Engine.IO) server here: the Engine.IO session machinery takes the
    // connection. Translate down, or a v3 client's session adapted to a v4 upstream.
    timer_->cancel();
    bufferevent* client = client_;
    client_ = nullptr;
    startTranslateDown(worker_, snapshot_, *route_, listener_, client, std::move(req), client_ip_,
                       client_port_);
    finish();
    return;
  }
  if (socketio) {
    if (!checkSocketIoRequest()) return;
  } else {
    if (!http::isWebSocketUpgrade(req)) {
      respondError(426, "websocket upgrade required", {{"Upgrade", "websocket"}});
      return;
    }
    http::UpgradeCheck check = http::checkWebSocketUpgrade(req);
    if (!check.ok()) {
      http::Headers extra;
      if (check.status == 426) extra.push_back({"Sec-WebSocket-Version", "13"});
      respondError(check.status, check.reason, extra);
      return;
    }
  }
  const auto& factories = snapshot_->filtersOf(*route_);
  if (!factories.empty()) {
    chain_ = std::make_unique<filters::FilterChain>(factories, *this);
    handshake_ = std::make_unique<filters::HandshakeContext>(
        filters::HandshakeContext{req, client_ip_, *route_, upstream_headers_, socketio, {}});
    bufferevent_disable(client_, EV_READ);
    state_ = State::Filtering;
    // A request of an existing Socket.IO session (signed sid) was admitted at its handshake.
    if (!sticky_endpoint_ && chain_->runHandshake(*handshake_) == filters::Status::Stop) {
      return;  // rejected, or waiting for the filter to resume
    }
  }
  pickEndpoints();
}

void Session::eioError(int code, int status, std::string_view message) {
  eio::ServerError error{code, status, message};
  spdlog::debug("{}:{}: {} {} -> {} {}", client_ip_, client_port_,
                request_parser_->request().method,
                http::redactTarget(request_parser_->request().target), status, message);
  respond(http::errorResponse(status, eio::errorBody(error)));
}

bool Session::eio3Session(const http::Request& req) const {
  // Polling, or anything naming a sid (the upgrade of a polling session); a v3 client that
  // starts on websocket is adapted frame by frame by EioRelay instead.
  std::string version, transport, sid;
  if (!route_->allow_eio3 || !req.queryParam("EIO", &version) || version != "3") return false;
  return (req.queryParam("transport", &transport) && transport == "polling") ||
         req.queryParam("sid", &sid);
}

bool Session::checkSocketIoRequest() {
  namespace err = eio::server_error;
  const http::Request& req = request_parser_->request();
  std::string eio_version, transport, sid;
  req.queryParam("EIO", &eio_version);
  req.queryParam("transport", &transport);
  bool has_sid = req.queryParam("sid", &sid);
  bool upgrade = http::isWebSocketUpgrade(req);
  auto fail = [this](const eio::ServerError& e) {
    eioError(e.code, e.status, e.message);
    return false;
  };

  if (req.method == "OPTIONS") {  // CORS preflight: the upstream answers it
    mode_ = Mode::EioPolling;
    return true;
  }
  config::Transport wanted;
  if (transport == "polling") {
    wanted = config::Transport::Polling;
  } else if (transport == "websocket") {
    wanted = config::Transport::WebSocket;
  } else {
    return fail(err::kTransportUnknown);
  }
  if (std::find(route_->transports.begin(), route_->transports.end(), wanted) ==
      route_->transports.end()) {
    return fail(err::kTransportUnknown);
  }
  cluster_ = snapshot_->cluster(route_->cluster);
  if (has_sid) {
    auto opened = snapshot_->signerOf(*route_).open(sid);
    if (!opened || cluster_ == nullptr) return fail(err::kSessionIdUnknown);
    for (size_t i = 0; i < cluster_->endpoints.size(); ++i) {
      if (cluster_->endpoints[i].tag == opened->endpoint_tag) sticky_endpoint_ = i;
    }
    if (!sticky_endpoint_) return fail(err::kSessionIdUnknown);
    client_sid_ = sid;
    upstream_sid_ = opened->upstream_sid;
  } else if (req.method != "GET") {
    return fail(err::kBadHandshakeMethod);
  }
  if (wanted == config::Transport::WebSocket && !upgrade) return fail(err::kBadRequest);
  if (wanted == config::Transport::Polling && upgrade) return fail(err::kBadRequest);
  const ClusterRuntime* cluster = snapshot_->cluster(route_->cluster);
  const bool engineio = cluster != nullptr && cluster->config->protocol == config::Protocol::EngineIO;
  if (eio_version == "3" && route_->allow_eio3 && !has_sid && !engineio) {
    client_eio3_ = true;  // websocket from the start (polling went to the v3 adapter)
  } else if (!has_sid && eio_version != "4") {
    return fail(err::kUnsupportedProtocolVersion);
  }
  if (upgrade) {
    http::UpgradeCheck check = http::checkWebSocketUpgrade(req);
    if (!check.ok()) {
      http::Headers extra;
      if (check.status == 426) extra.push_back({"Sec-WebSocket-Version", "13"});
      respondError(check.status, check.reason, extra);
      return false;
    }
  }
  mode_ = upgrade ? Mode::EioWebSocket : Mode::EioPolling;
  return true;
}

void Session::resumeHandshake() {
  if (state_ != State::Filtering) return;
  if (chain_->resumeHandshake(*handshake_) == filters::Status::Stop) return;
  pickEndpoints();
}

void Session::pickEndpoints() {
  cluster_ = snapshot_->cluster(route_->cluster);
  if (cluster_ == nullptr || cluster_->endpoints.empty()) {
    respond(http::errorResponse(502, jsonError("no upstream available", "cluster", route_->cluster)));
    return;
  }
  const config::Protocol upstream = cluster_->config->protocol;
  if (route_->downstream == config::Protocol::WebSocket && upstream == config::Protocol::SocketIO) {
    mode_ = Mode::TranslateUp;
  } else if (route_->downstream != upstream &&
             !(route_->downstream == config::Protocol::SocketIO &&
               upstream == config::Protocol::EngineIO)) {
    respondError(501, "bridge not implemented for this route");
    return;
  }
  if (sticky_endpoint_) {
    // A session lives on one endpoint: no other may be tried.
    balanceOf(worker_, *route_, *cluster_);
    attempts_.assign(1, *sticky_endpoint_);
  } else {
    attempts_ = endpointOrder(worker_, *route_, *cluster_, client_ip_, attributes());
  }
  bufferevent_disable(client_, EV_READ);
  state_ = State::Connecting;
  connectNext();
}

void Session::respond(std::string response) {
  if (state_ == State::Done || state_ == State::Responding) return;
  if (reconnecting_) {  // a failed reconnection answers nobody: the bridge tries again later
    reconnecting_ = false;
    releaseUpstream();
    timer_->cancel();
    state_ = State::Bridging;
    static_cast<TranslateUp*>(bridge_.get())->reconnectFailed(last_failure_);
    return;
  }
  http_status_ = std::atoi(response.c_str() + 9);  // "HTTP/1.1 NNN"
  if (http_status_ >= 400 && response.compare(0, 5, "HTTP/") == 0) {
    worker_.stats().countRefused(http_status_);
  }

  releaseUpstream();
  timer_->cancel();
  bufferevent_disable(client_, EV_READ);
  bufferevent_setcb(client_, nullptr, &Session::onClientFlushed, &Session::onClientEvent, this);
  bufferevent_setwatermark(client_, EV_WRITE, 0, 0);
  bufferevent_write(client_, response.data(), response.size());
  bufferevent_enable(client_, EV_WRITE);
  state_ = State::Responding;
  timer_->arm(Duration(5000));
}

void Session::respondError(int status, std::string_view error, const http::Headers& extra) {
  spdlog::debug("{}:{}: {} {} -> {} {}", client_ip_, client_port_,
                request_parser_->request().method, request_parser_->request().path, status, error);
  respond(http::errorResponse(status, jsonError(error), extra));
}

void Session::onClientFlushed(bufferevent*, void* self) {
  auto* s = static_cast<Session*>(self);
  if (evbuffer_get_length(bufferevent_get_output(s->client_)) == 0) s->finish();
}

// ---- upstream ----

void Session::connectNext() {
  releaseUpstream();
  if (attempts_.empty() && sticky_endpoint_) {
    // What a Socket.IO server says of a session it does not know: the client reconnects.
    spdlog::debug("cluster '{}': session endpoint down ({})", route_->cluster, last_failure_);
    eioError(eio::server_error::kSessionIdUnknown.code, 400,
             eio::server_error::kSessionIdUnknown.message);
    return;
  }
  if (attempts_.empty()) {
    spdlog::warn("{}:{}: cluster '{}': no endpoint reachable ({})", client_ip_, client_port_,
                 route_->cluster, last_failure_);
    respond(http::errorResponse(
        502, jsonError("no upstream available", "cluster", route_->cluster)));
    return;
  }
  endpoint_ = attempts_.back();
  attempts_.pop_back();
  const Endpoint& ep = cluster_->endpoints[endpoint_];
  event_base* base = worker_.dispatcher().base();
  constexpr int kOptions = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
  if (cluster_->tls) {
    SSL* ssl = SSL_new(cluster_->tls.get());
    const std::string& name = cluster_->config->tls_server_name.empty()
                                  ? ep.address.host
                                  : cluster_->config->tls_server_name;
    SSL_set_tlsext_host_name(ssl, name.c_str());
    if (cluster_->config->tls_verify) SSL_set1_host(ssl, name.c_str());
    upstream_ = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, kOptions);
    bufferevent_openssl_set_allow_dirty_shutdown(upstream_, 1);
  } else {
    upstream_ = bufferevent_socket_new(base, -1, kOptions);
  }
  worker_.balance(route_->cluster).active[endpoint_]++;
  connect_started_ = worker_.dispatcher().now();
  bufferevent_setcb(upstream_, &Session::onUpstreamRead, nullptr, &Session::onUpstreamEvent, this);
  state_ = State::Connecting;
  timer_->arm(cluster_->config->connect_timeout);
  if (bufferevent_socket_connect(upstream_, reinterpret_cast<const sockaddr*>(&ep.sockaddr),
                                 static_cast<int>(ep.sockaddr_len)) != 0) {
    last_failure_ = ep.address.str() + ": connect failed";
    worker_.stats().countConnectFailure(route_->cluster, ep.address.str());
    // Retry from a fresh loop iteration, never recursively from here.
    worker_.dispatcher().post([this] { if (state_ == State::Connecting) connectNext(); });
  }
}

void Session::releaseUpstream() {
  if (upstream_ == nullptr) return;
  bufferevent_free(upstream_);
  upstream_ = nullptr;
  if (endpoint_ != SIZE_MAX && route_ != nullptr) {
    auto& active = worker_.balance(route_->cluster).active;
    if (endpoint_ < active.size() && active[endpoint_] > 0) active[endpoint_]--;
  }
  endpoint_ = SIZE_MAX;
}

void Session::onUpstreamEvent(bufferevent*, short what, void* self) {
  auto* s = static_cast<Session*>(self);
  if (what & BEV_EVENT_CONNECTED) {
    s->onUpstreamConnected();
    return;
  }
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
    std::string why = (what & BEV_EVENT_EOF) ? "connection closed" : "connection failed";
    if (s->cluster_->tls && (what & BEV_EVENT_ERROR)) {
      const std::string tls = sslErrors(s->upstream_);
      why += ": " + (tls.empty() ? std::string("socket error") : tls);
    }
    s->onUpstreamFailed(why);
  }
}

std::optional<std::string> Session::checkConnect(std::string_view auth) {
  if (!chain_ || !handshake_) return std::nullopt;
  handshake_->socketio_auth = auth;
  connect_refusal_.reset();
  in_connect_check_ = true;
  filters::Status status = chain_->onConnect(*handshake_);
  in_connect_check_ = false;
  handshake_->socketio_auth = {};
  if (status == filters::Status::Continue) {
    if (!client_sid_.empty()) rememberConnectAttributes(client_sid_, attributes_);
    return std::nullopt;
  }
  return connect_refusal_ ? *connect_refusal_ : std::string("unauthorized");
}

filters::Attributes& Session::attributes() {
  // A later request of a pass-through session gets what the session's CONNECT earned, looked up
  // when first asked for: the upgrade request may have started before the CONNECT was checked.
  if (attributes_.empty() && !client_sid_.empty()) {
    attributes_ = recallConnectAttributes(client_sid_);
  }
  return attributes_;
}

void Session::appendForwardedHeaders(http::Headers& headers) {
  for (auto& h : forwardedHeaders(request_parser_->request(), client_ip_, listener_.tls != nullptr,
                                  upstream_headers_, snapshot_->ownedHeadersOf(*route_))) {
    headers.push_back(std::move(h));
  }
}

std::string Session::upstreamProtocols() {
  // The client's offered subprotocols without those that carried credentials.
  std::string out;
  for (const auto& h : request_parser_->request().headers) {
    if (!http::iequals(h.name, "sec-websocket-protocol")) continue;
    std::string_view rest = h.value;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view entry = trimSpace(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      if (entry.empty()) continue;
      if (std::find(consumed_protocols_.begin(), consumed_protocols_.end(), entry) !=
          consumed_protocols_.end())
        continue;
      if (!out.empty()) out += ", ";
      out.append(entry);
    }
  }
  return out;
}

std::string Session::upstreamTarget() {
  const http::Request& req = request_parser_->request();
  if (mode_ == Mode::TranslateUp) {
    // wsbridge is the Socket.IO client; the app still sees the client's query parameters.
    std::string target = cluster_->config->path ? *cluster_->config->path : "/socket.io/";
    target += "?EIO=4&transport=websocket";
    if (!req.query.empty()) target += "&" + req.query;
    return target;
  }
  std::string target = cluster_->config->path ? *cluster_->config->path : req.path;
  if (req.query.empty()) return target;
  if (upstream_sid_.empty() && !client_eio3_) return target + "?" + req.query;
  // The upstream knows its own sid, not the signed one, and speaks Engine.IO v4.
  std::string query;
  std::string_view rest = req.query;
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view param = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    if (!query.empty()) query += '&';
    if (param.substr(0, 4) == "sid=") {
      query += "sid=" + upstream_sid_;
    } else if (client_eio3_ && param.substr(0, 4) == "EIO=") {
      query += "EIO=4";
    } else {
      query.append(param);
    }
  }
  return target + "?" + query;
}

void Session::onUpstreamConnected() {
  worker_.stats()
      .connectLatency(route_->cluster, cluster_->endpoints[endpoint_].address.str())
      .observe(std::chrono::duration_cast<std::chrono::microseconds>(worker_.dispatcher().now() -
                                                                     connect_started_));
  if (mode_ == Mode::EioPolling) {
    sendPollingRequest();
    return;
  }
  // Real-time messages go out as soon as they are relayed (as on the client side).
  int one = 1;
  setsockopt(bufferevent_getfd(upstream_), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const http::Request& req = request_parser_->request();
  const Endpoint& ep = cluster_->endpoints[endpoint_];
  upstream_key_ = http::makeWebSocketKey();

  http::Headers headers;
  const std::string* client_host = req.header("host");
  headers.push_back({"Host", cluster_->config->host ? *cluster_->config->host
                             : client_host         ? *client_host
                                                   : ep.address.str()});
  headers.push_back({"Upgrade", "websocket"});
  headers.push_back({"Connection", "Upgrade"});
  headers.push_back({"Sec-WebSocket-Key", upstream_key_});
  headers.push_back({"Sec-WebSocket-Version", "13"});
  std::string protocols = upstreamProtocols();
  if (!protocols.empty() && mode_ != Mode::TranslateUp) {
    headers.push_back({"Sec-WebSocket-Protocol", protocols});
  }
  appendForwardedHeaders(headers);

  std::string request = http::serializeRequest("GET", upstreamTarget(), headers);
  bufferevent_write(upstream_, request.data(), request.size());
  bufferevent_enable(upstream_, EV_READ | EV_WRITE);
  response_parser_ = std::make_unique<http::ResponseParser>();
  state_ = State::UpstreamHandshake;
  timer_->arm(cluster_->config->handshake_timeout);
}

void Session::onUpstreamFailed(const std::string& why) {
  const Endpoint& ep = cluster_->endpoints[endpoint_];
  if (state_ == State::Connecting) {
    last_failure_ = ep.address.str() + ": " + why;
    worker_.stats().countConnectFailure(route_->cluster, ep.address.str());
    spdlog::debug("cluster '{}': endpoint {}: {}", route_->cluster, ep.address.str(), why);
    connectNext();
    return;
  }
  if (state_ == State::UpstreamHandshake && sticky_endpoint_ && why != "timeout") {
    // The session's endpoint went away: what a Socket.IO server says of a session it does not
    // know, so the client starts a new one.
    logUpstreamFault(ep.label, "lost during a request of a session: " + why);
    eioError(eio::server_error::kSessionIdUnknown.code, 400,
             eio::server_error::kSessionIdUnknown.message);
    return;
  }
  if (state_ == State::UpstreamHandshake) {
    // The request was sent: retrying could repeat side effects, so answer now. An endpoint that
    // does not answer may still hold the session: a timeout is a 504, sticky or not.
    spdlog::warn("cluster '{}': endpoint {}: handshake {}", route_->cluster, ep.address.str(), why);
    if (why == "timeout") {
      respond(http::errorResponse(504, jsonError("upstream handshake timeout", "cluster", route_->cluster)));
    } else {
      respond(http::errorResponse(502, jsonError("upstream " + why, "cluster", route_->cluster)));
    }
  }
}

void Session::onUpstreamRead(bufferevent*, void* self) {
  auto* s = static_cast<Session*>(self);
  if (s->state_ != State::UpstreamHandshake) return;
  if (s->mode_ == Mode::EioPolling) {
    s->handlePollingResponse();
  } else {
    s->handleUpstreamResponse();
  }
}

void Session::handleUpstreamResponse() {
  evbuffer* in = bufferevent_get_input(upstream_);
  size_t len = evbuffer_get_length(in);
  const char* data = reinterpret_cast<const char*>(evbuffer_pullup(in, -1));
  size_t consumed = response_parser_->feed(data, len);
  evbuffer_drain(in, consumed);
  if (response_parser_->state() == http::ParseState::NeedMore) return;
  if (response_parser_->state() == http::ParseState::Error) {
    onUpstreamFailed("sent an invalid HTTP response: " + response_parser_->errorReason());
    return;
  }
  http::Response& res = response_parser_->response();
  if (res.status != 101) {
    // The upstream refused (401, 403, 404 ...): the client hears exactly that.
    http::Response out;
    out.status = res.status;
    out.reason = res.reason;
    for (auto& h : res.headers) {
      if (http::iequals(h.name, "connection") || http::iequals(h.name, "transfer-encoding") ||
          http::iequals(h.name, "content-length") || http::iequals(h.name, "keep-alive")) {
        continue;
      }
      out.headers.push_back(h);
    }
    out.headers.push_back({"Connection", "close"});
    out.body = res.body;
    respond(http::serializeResponse(out));
    return;
  }
  const std::string* accept = res.header("sec-websocket-accept");
  if (accept == nullptr || *accept != http::computeAcceptKey(upstream_key_)) {
    onUpstreamFailed("sent a wrong Sec-WebSocket-Accept");
    return;
  }
  std::string protocol;
  if (const std::string* p = res.header("sec-websocket-protocol")) {
    std::string sent = upstreamProtocols();
    if (!offered(&sent, *p)) {
      onUpstreamFailed("chose a subprotocol the client did not offer");
      return;
    }
    protocol = *p;
  }
  onUpstreamUpgraded(protocol);
}

bufferevent* Session::acceptClient(const std::string& protocol) {
  const http::Request& req = request_parser_->request();
  http::Response res;
  res.status = 101;
  res.headers.push_back({"Upgrade", "websocket"});
  res.headers.push_back({"Connection", "Upgrade"});
  res.headers.push_back(
      {"Sec-WebSocket-Accept", http::computeAcceptKey(*req.header("sec-websocket-key"))});
  if (!protocol.empty()) {
    res.headers.push_back({"Sec-WebSocket-Protocol", protocol});
  } else if (!consumed_protocols_.empty()) {
    // The client offered only credentials: it must still hear one of its offers back.
    res.headers.push_back({"Sec-WebSocket-Protocol", consumed_protocols_.front()});
  }
  std::string bytes = http::serializeResponse(res);
  bufferevent_write(client_, bytes.data(), bytes.size());
  bufferevent* client = client_;
  client_ = nullptr;
  return client;
}

void Session::onUpstreamUpgraded(const std::string& protocol) {
  timer_->cancel();
  state_ = State::Bridging;
  if (reconnecting_) {
    reconnecting_ = false;
    bufferevent* upstream = upstream_;
    upstream_ = nullptr;
    const std::string* label = &cluster_->endpoints[endpoint_].label;
    // Balance counts the session once, on the endpoint it started with.
    auto& active = worker_.balance(route_->cluster).active;
    if (endpoint_ < active.size() && active[endpoint_] > 0) active[endpoint_]--;
    endpoint_ = SIZE_MAX;
    static_cast<TranslateUp*>(bridge_.get())->upstreamReconnected(upstream, label);
    releaseHandshake();
    return;
  }
  WsEndpointOptions options;
  options.max_message = route_->max_message;
  options.relay_latency = &worker_.stats().relayLatency();
  options.upstream_label = &cluster_->endpoints[endpoint_].label;
  bufferevent* upstream = upstream_;
  upstream_ = nullptr;  // the bridge owns it now; the endpoint count stays until it is done
  size_t endpoint = endpoint_;
  // Small enough for std::function to hold without a heap block: route_ lives as long as the
  // session's snapshot_.
  auto on_done = [this, endpoint] {
    auto& active = worker_.balance(route_->cluster).active;
    if (endpoint < active.size() && active[endpoint] > 0) active[endpoint]--;
    endpoint_ = SIZE_MAX;
    finish();
  };
  if (mode_ == Mode::TranslateUp) {
    startTranslateUp(upstream, options, on_done);
    releaseHandshake();
    return;
  }
  bufferevent* client = acceptClient(protocol);
  countOpened();
  if (mode_ == Mode::EioWebSocket) {
    EioRelayOptions eio;
    eio.signer = &snapshot_->signerOf(*route_);
    eio.endpoint_tag = cluster_->endpoints[endpoint].tag;
    eio.rewrite_open = upstream_sid_.empty();
    eio.ping_interval = route_->ping_interval;
    eio.ping_timeout = route_->ping_timeout;
    eio.client_eio3 = client_eio3_;
    eio.max_namespaces = route_->max_namespaces;
    eio.socketio = cluster_->config->protocol == config::Protocol::SocketIO;
    eio.count_event = [&stats = worker_.stats(), &route = route_->path](std::string_view name) {
      stats.countEvent(route, name);
    };
    eio.parse_error = [this](bool from_upstream, std::string_view why) {
      noteParseError(from_upstream, why);
    };
    if (chain_) {
      eio.connect_check = [this](std::string_view, std::string_view auth) {
        return checkConnect(auth);
      };
    }
    auto relay = std::make_unique<EioRelay>(worker_.dispatcher(), worker_.masks(), client,
                                            upstream, options, chain_.get(), eio, on_done);
    EioRelay* r = relay.get();
    bridge_ = std::move(relay);
    r->start();
  } else {
    auto relay = std::make_unique<WsRelay>(worker_.dispatcher(), worker_.masks(), client,
                                           upstream, options, chain_.get(), on_done);
    WsRelay* r = relay.get();
    bridge_ = std::move(relay);
    r->start();
  }
  if (chain_) chain_->onEstablished();
  releaseHandshake();
}

// An idle bridged connection should cost little more than its bridge. Every mode is done with
// the upstream's response, our key and the endpoint list (a reconnection starts them afresh).
// The client's request stays only while something may read it again: translate up rebuilds the
// upstream request on reconnect and answers the client's key once the CONNECT is accepted; a
// Socket.IO relay's filters see it again in onConnect. Without the request, nothing calls
// respond() either (filters act through the bridge), so the deadline timer goes with it.
// Swapping with empty containers releases their heap blocks; clear() would keep them.
void Session::releaseHandshake() {
  response_parser_.reset();
  std::string().swap(upstream_key_);
  std::string().swap(last_failure_);
  std::vector<size_t>().swap(attempts_);
  if (mode_ == Mode::TranslateUp || (mode_ == Mode::EioWebSocket && chain_)) {
    request_parser_->request().headers.shrink_to_fit();  // reserved for a large request
    return;
  }
  request_parser_.reset();
  handshake_.reset();
  http::Headers().swap(upstream_headers_);
  std::vector<std::string>().swap(consumed_protocols_);
  timer_.reset();
}

void Session::startTranslateUp(bufferevent* upstream, const WsEndpointOptions& options,
                               std::function<void()> on_done) {
  // The client's upgrade waits until the upstream accepted the namespace CONNECT.
  state_ = State::UpstreamHandshake;
  timer_->arm(cluster_->config->handshake_timeout);
  TranslateUpOptions translate;
  translate.nsp = route_->namespace_;
  translate.auth_json =
      renderUpstreamAuth(route_->upstream_auth, request_parser_->request(), attributes_);
  translate.shape = route_->envelope == config::Envelope::Array ? envelope::Shape::Array
                                                                 : envelope::Shape::Json;
  translate.allow_nsp = route_->allow_nsp;
  translate.binary_event = route_->binary_event;
  translate.text_event = route_->text_event;
  translate.close_on_bad_envelope = route_->close_on_bad_envelope;
  translate.reconnect = route_->reconnect;
  translate.join_timeout = cluster_->config->handshake_timeout;
  TranslateUp::Callbacks callbacks;
  callbacks.reconnect = [this] { reconnectUpstream(); };
  callbacks.parse_error = [this](std::string_view why) { noteParseError(true, why); };
  callbacks.ready = [this] {
    timer_->cancel();
    state_ = State::Bridging;
    countOpened();
    static_cast<TranslateUp*>(bridge_.get())->attachClient(acceptClient(""));
    if (chain_) chain_->onEstablished();
  };
  callbacks.refused = [this](std::string message) {
    spdlog::info("{}:{}: upstream refused the Socket.IO CONNECT: {}", client_ip_, client_port_,
                 message);
    if (route_->connect_error_as_event) {
      // Routes that prefer it hear the refusal as an event, then close 1008.
      bufferevent* client = acceptClient("");
      std::string event = "{\"event\":\"connect_error\",\"data\":{\"message\":\"" +
                          http::jsonEscape(message) + "\"}}";
      std::string bytes = ws::makeFrame(ws::Opcode::Text, event) +
                          ws::makeFrame(ws::Opcode::Close,
                                        ws::makeClosePayload(ws::close_code::kPolicy, message));
      client_ = client;
      state_ = State::UpstreamHandshake;
      respond(std::move(bytes));
      return;
    }
    state_ = State::UpstreamHandshake;
    respondError(403, message);
  };
  callbacks.done = std::move(on_done);
  auto bridge = std::make_unique<TranslateUp>(worker_.dispatcher(), worker_.masks(), upstream,
                                              options, chain_.get(), std::move(translate),
                                              std::move(callbacks));
  TranslateUp* b = bridge.get();
  bridge_ = std::move(bridge);
  b->start();
}

// Translate up with `reconnect`: a new upstream connection for the live bridge, through the
// same endpoint choice, connect and upgrade as the first one;
// the outcome goes to the bridge (onUpstreamUpgraded, or respond() when all failed).
void Session::reconnectUpstream() {
  reconnecting_ = true;
  attempts_ = endpointOrder(worker_, *route_, *cluster_, client_ip_, attributes());
  connectNext();
}

// ---- filters::FilterCallbacks ----

void Session::reject(int status, std::string_view message, const http::Headers& extra) {
  countFilterAction("reject_" + std::to_string(status));
  if (in_connect_check_) {
    connect_refusal_ = std::string(message);
    return;
  }
  if (bridge_) {
    bridge_->close(ws::close_code::kPolicy, message);
    return;
  }
  respondError(status, message, extra);
}

void Session::notify(filters::Side toward, std::string_view notice) {
  countFilterAction("notify");
  if (bridge_) {
    bridge_->notify(toward, notice);
  } else if (mode_ == Mode::EioPolling && toward == filters::Side::Client && !client_sid_.empty()) {
    postNotice(client_sid_, renderNoticeMessage(notice, "/"));
  }
}

void Session::ackError(filters::Side toward, const filters::Event& event,
                       std::string_view args_json) {
  if (bridge_) {
    bridge_->ackError(toward, event, args_json);
  } else if (mode_ == Mode::EioPolling && toward == filters::Side::Client && event.ack &&
             !client_sid_.empty()) {
    postNotice(client_sid_, renderAckMessage(event.nsp, *event.ack, args_json));
  }
}

void Session::close(uint16_t code, std::string_view reason) {
  countFilterAction("close_" + std::to_string(code));
  if (!bridge_) {
    respondError(code == ws::close_code::kTooBig ? 413 : 403, reason);
    return;
  }
  bridge_->close(code, reason);
}

bool Session::ping(filters::Side side) { return bridge_ && bridge_->ping(side); }

void Session::pauseReading(filters::Side side, Duration delay) {
  if (!bridge_) return;
  countFilterAction("shape");
  auto& timer = shape_timers_[side == filters::Side::Client ? 0 : 1];
  if (!timer) {
    timer = std::make_unique<proxy::Timer>(worker_.dispatcher(), [this, side] {
      if (bridge_) bridge_->resumeReading(side);
    });
  }
  bridge_->pauseReading(side);
  timer->arm(delay);
}

namespace {
class FilterTimer final : public filters::FilterCallbacks::Timer {
 public:
  FilterTimer(Dispatcher& dispatcher, std::function<void()> cb) : timer_(dispatcher, std::move(cb)) {}
  void arm(Duration after) override { timer_.arm(after); }
  void cancel() override { timer_.cancel(); }

 private:
  proxy::Timer timer_;
};
}  // namespace

std::unique_ptr<filters::FilterCallbacks::Timer> Session::createTimer(std::function<void()> cb) {
  return std::make_unique<FilterTimer>(worker_.dispatcher(), std::move(cb));
}

const filters::Clock& Session::clock() const { return filters::SystemClock::instance(); }

}  // namespace wsb::proxy

// ---- Engine.IO polling pass-through ----

namespace wsb::proxy {

namespace {
// A CONNECT refused over polling must be answered on the client's pending GET, which the
// upstream holds. wsbridge keeps no session state, so it sends the upstream a CONNECT to a
// namespace that cannot exist, carrying the refusal; the upstream answers it at once on that
// GET with CONNECT_ERROR "Invalid namespace", and whichever wsbridge relays that answer turns it
// back into the refusal for the real namespace.
constexpr std::string_view kRefusedNsp = "/__wsbridge_refused/";

std::string refusalProbe(std::string_view nsp, std::string_view message) {
  std::string carried(nsp);
  carried += '\n';
  carried.append(message);
  std::string out = "0";
  out.append(kRefusedNsp);
  out += http::base64Encode(carried);
  out += ',';
  return out;
}

// `44/__wsbridge_refused/<b64>,{...}` -> the CONNECT_ERROR it stands for; empty if not one.
std::string refusalFromProbe(std::string_view packet) {
  if (packet.substr(0, 1 + kRefusedNsp.size()) != std::string("4") + std::string(kRefusedNsp)) {
    return {};
  }
  std::string_view rest = packet.substr(1 + kRefusedNsp.size());
  std::string carried;
  if (!http::base64Decode(rest.substr(0, rest.find(',')), &carried)) return {};
  size_t nl = carried.find('\n');
  if (nl == std::string::npos) return {};
  std::string out;
  sio::appendConnectError(out, sio::Version::V5, std::string_view(carried).substr(0, nl),
                          std::string_view(carried).substr(nl + 1));
  return out;
}
}  // namespace

std::string Session::filterPayload(std::string_view body, filters::Direction direction) {
  const bool to_upstream = direction == filters::Direction::ToUpstream;
  // What a payload that does not decode becomes: the Engine.IO close packet, so the server's
  // session (a POST) or the client's (a GET) ends as a server ends it on a parse error.
  constexpr std::string_view kClose = "1";
  std::vector<eio::Packet> packets;
  std::string storage;
  if (eio::decodePayload(eio::Version::V4, eio::PayloadFormat::Text, body, SIZE_MAX, packets,
                         storage) != eio::DecodeError::None) {
    noteParseError(!to_upstream, "invalid Engine.IO payload");
    return std::string(kClose);
  }
  if (cluster_->config->protocol != config::Protocol::SocketIO) return std::string(body);
  SioInspector inspector(direction);
  inspector.setLooseAttachments();  // a packet's attachments may come in the next request
  if (to_upstream && chain_) {
    inspector.setConnectCheck([this](std::string_view, std::string_view auth) {
      return checkConnect(auth);
    });
  }
  std::vector<eio::Packet> kept;
  std::vector<std::string> made;  // storage for rewritten packets
  made.reserve(packets.size());
  bool changed = false;
  for (const auto& packet : packets) {
    if (packet.type != eio::PacketType::Message) {
      if (packet.type == eio::PacketType::Close) forgetNamespaces(client_sid_);
      kept.push_back(packet);
      continue;
    }
    if (!packet.binary && !to_upstream) {
      std::string error = refusalFromProbe(packet.data);
      if (!error.empty()) {
        made.push_back(std::move(error));
        kept.push_back({eio::PacketType::Message, false, made.back()});
        changed = true;
        continue;
      }
    }
    SioInspector::Verdict verdict = packet.binary ? inspector.onBinary()
                                                  : inspector.onText(packet.data, chain_.get());
    if (verdict != SioInspector::Verdict::Invalid && !packet.binary) {
      // max_namespaces over the session's requests (the session's sid names it).
      const sio::Packet& decoded = inspector.current();
      if (decoded.type == sio::PacketType::Disconnect ||
          (decoded.type == sio::PacketType::ConnectError && !to_upstream)) {
        leaveNamespace(client_sid_, decoded.nsp);
      } else if (decoded.type == sio::PacketType::Connect && to_upstream &&
                 verdict == SioInspector::Verdict::Forward &&
                 !admitNamespace(client_sid_, decoded.nsp, route_->max_namespaces)) {
        made.push_back(refusalProbe(decoded.nsp, "too many namespaces"));
        kept.push_back({eio::PacketType::Message, false, made.back()});
        changed = true;
        continue;
      }
    }
    if (verdict == SioInspector::Verdict::Forward) {
      kept.push_back(packet);
      continue;
    }
    changed = true;
    if (verdict == SioInspector::Verdict::Invalid) {
      // Nothing from here on is forwarded; what came before was judged already.
      noteParseError(!to_upstream, inspector.error());
      kept.push_back({eio::PacketType::Close, false, {}});
      break;
    }
    std::string reply = inspector.takeReply();
    if (!reply.empty()) {
      // A refused CONNECT: the probe wakes the client's held GET with the refusal.
      const sio::Packet& connect = inspector.current();
      std::string message = "unauthorized";
      if (auto pos = reply.find("\"message\":\""); pos != std::string::npos) {
        size_t start = pos + 11;
        message = reply.substr(start, reply.find('"', start) - start);
      }
      made.push_back(refusalProbe(connect.nsp, message));
      kept.push_back({eio::PacketType::Message, false, made.back()});
    }
  }
  if (!changed) return std::string(body);
  std::string out;
  if (kept.empty()) kept.push_back({eio::PacketType::Noop, false, {}});
  eio::encodePayload(eio::Version::V4, eio::PayloadFormat::Text, kept, out);
  return out;
}

void Session::sendPollingRequest() {
  const http::Request& req = request_parser_->request();
  const Endpoint& ep = cluster_->endpoints[endpoint_];
  std::string body = req.body;
  if (req.method == "POST") countPayloadEvents(body, worker_.stats().events(route_->path));
  if (req.method == "POST" && !body.empty()) {
    body = filterPayload(body, filters::Direction::ToUpstream);
  }
  http::Headers headers;
  const std::string* client_host = req.header("host");
  headers.push_back({"Host", cluster_->config->host ? *cluster_->config->host
                             : client_host         ? *client_host
                                                   : ep.address.str()});
  appendForwardedHeaders(headers);
  if (!body.empty() || req.method == "POST") {
    headers.push_back({"Content-Length", std::to_string(body.size())});
  }
  headers.push_back({"Connection", "close"});
  std::string request = http::serializeRequest(req.method, upstreamTarget(), headers, body);
  bufferevent_write(upstream_, request.data(), request.size());
  bufferevent_enable(upstream_, EV_READ | EV_WRITE);
  response_parser_ = std::make_unique<http::ResponseParser>();
  response_parser_->expectNoBody(req.method == "HEAD");
  state_ = State::UpstreamHandshake;
  // Watch the client while the upstream holds the request: a client giving up on its poll
  // (EOF) must reach the upstream as an aborted request, which closes the session there.
  // onClientRead leaves pipelined bytes alone until the answer; the read watermark bounds them.
  bufferevent_enable(client_, EV_READ);
  // A session's GET is held by the upstream until it has packets, a ping at the latest; every
  // other request (the handshake, a POST, a preflight) is answered at once.
  const bool held = req.method == "GET" && !client_sid_.empty();
  timer_->arm(held ? route_->ping_interval + route_->ping_timeout + Duration(5000)
                   : cluster_->config->handshake_timeout);
}

void Session::handlePollingResponse() {
  evbuffer* in = bufferevent_get_input(upstream_);
  size_t len = evbuffer_get_length(in);
  const char* data = reinterpret_cast<const char*>(evbuffer_pullup(in, -1));
  size_t consumed = response_parser_->feed(data, len);
  evbuffer_drain(in, consumed);
  if (response_parser_->state() == http::ParseState::NeedMore) return;
  if (response_parser_->state() == http::ParseState::Error) {
    onUpstreamFailed("sent an invalid HTTP response: " + response_parser_->errorReason());
    return;
  }
  const http::Request& req = request_parser_->request();
  http::Response& res = response_parser_->response();
  std::string body = std::move(res.body);
  if (res.status == 400 && !client_sid_.empty()) forgetNamespaces(client_sid_);  // session gone
  if (res.status == 200 && req.method == "GET") {
    if (client_sid_.empty() && !body.empty() && body[0] == '0') {
      // The handshake: the client gets a sid that names this endpoint, signed.
      size_t end = body.find('\x1e');
      std::string_view open = std::string_view(body).substr(1, end == std::string::npos ? end : end - 1);
      eio::Handshake handshake;
      std::string rewritten;
      if (eio::parseHandshake(open, &handshake) &&
          eio::replaceSid(open, snapshot_->signerOf(*route_).sign(
                                    handshake.sid, cluster_->endpoints[endpoint_].tag),
                          &rewritten)) {
        body = "0" + rewritten + (end == std::string::npos ? std::string() : body.substr(end));
      }
    } else if (!client_sid_.empty()) {
      countPayloadEvents(body, worker_.stats().events(route_->path));
      body = filterPayload(body, filters::Direction::ToClient);
      for (std::string& notice : takeNotices(client_sid_)) {
        body += '\x1e';
        body += notice;  // already an Engine.IO message packet
      }
    }
  }
  http::Response out;
  out.status = res.status;
  out.reason = res.reason;
  for (auto& h : res.headers) {
    if (http::iequals(h.name, "connection") || http::iequals(h.name, "transfer-encoding") ||
        http::iequals(h.name, "content-length") || http::iequals(h.name, "keep-alive") ||
        http::iequals(h.name, "content-encoding")) {
      continue;
    }
    out.headers.push_back(h);
  }
  out.body = std::move(body);
  bool keep_alive = req.keep_alive;
  out.headers.push_back({"Connection", keep_alive ? "keep-alive" : "close"});
  std::string bytes = http::serializeResponse(out);
  releaseUpstream();
  if (!keep_alive) {
    respond(std::move(bytes));
    return;
  }
  bufferevent_write(client_, bytes.data(), bytes.size());
  nextRequest();
}

void Session::nextRequest() {
  if (chain_) {
    filters::CloseInfo info;
    info.code = static_cast<uint16_t>(response_parser_ ? response_parser_->response().status : 0);
    info.closed_by = "wsbridge";
    chain_->onClose(info);
  }
  ++requests_served_;
  request_parser_->reset();
  response_parser_.reset();
  chain_.reset();
  handshake_.reset();
  consumed_protocols_.clear();
  upstream_headers_.clear();
  attributes_.clear();  // the next request may belong to another session or user
  attempts_.clear();
  sticky_endpoint_.reset();
  client_sid_.clear();
  upstream_sid_.clear();
  mode_ = Mode::WebSocket;
  state_ = State::ReadingRequest;
  bufferevent_setwatermark(client_, EV_READ, 0, kHandshakeReadLimit);
  bufferevent_enable(client_, EV_READ);
  timer_->arm(kKeepAliveTimeout);
  if (evbuffer_get_length(bufferevent_get_input(client_)) > 0) onClientRead(client_, this);
}

}  // namespace wsb::proxy
