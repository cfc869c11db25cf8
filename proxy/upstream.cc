// Upstream connections of the bridges that open their own WebSockets.
#include "proxy/upstream.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "proxy/stats.h"
#include "proxy/worker.h"

namespace wsb::proxy {

bool isHopByHop(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "connection",          "upgrade",           "keep-alive",
      "proxy-connection",    "te",                "trailer",
      "transfer-encoding",   "content-length",    "host",
      "sec-websocket-key",   "sec-websocket-version", "sec-websocket-extensions",
      "sec-websocket-protocol", "x-forwarded-proto", "proxy-authorization"};
  return std::any_of(std::begin(kNames), std::end(kNames),
                     [&](std::string_view n) { return http::iequals(name, n); });
}

ClusterBalance& balanceOf(Worker& worker, const config::Route& route,
                          const ClusterRuntime& cluster) {
  ClusterBalance& balance = worker.balance(route.cluster);
  if (balance.active.size() != cluster.endpoints.size()) {
    balance.active.assign(cluster.endpoints.size(), 0);
  }
  return balance;
}

std::vector<size_t> endpointOrder(Worker& worker, const config::Route& route,
                                  const ClusterRuntime& cluster, std::string_view client_ip,
                                  const filters::Attributes& attributes) {
  ClusterBalance& balance = balanceOf(worker, route, cluster);
  const size_t n = cluster.endpoints.size();
  size_t first = 0;
  switch (cluster.config->lb) {
    case config::LoadBalance::RoundRobin:
      first = balance.next++ % n;
      break;
    case config::LoadBalance::LeastConn:
      for (size_t i = 1; i < n; ++i) {
        if (balance.active[i] < balance.active[first]) first = i;
      }
      break;
    case config::LoadBalance::HashIp:
      first = std::hash<std::string_view>{}(client_ip) % n;
      break;
    case config::LoadBalance::HashSub: {
      auto sub = attributes.find("jwt.sub");
      first = std::hash<std::string_view>{}(sub != attributes.end() ? std::string_view(sub->second)
                                                                    : client_ip) %
              n;
      break;
    }
  }
  std::vector<size_t> order;
  for (size_t i = 0; i < n; ++i) order.push_back((first + i) % n);
  std::reverse(order.begin(), order.end());  // pop_back() takes the next to try
  return order;
}

http::Headers forwardedHeaders(const http::Request& request, std::string_view client_ip, bool tls,
                               const http::Headers& filter_headers,
                               const std::vector<std::string>& owned) {
  http::Headers headers;
  std::string xff(client_ip);
  for (const auto& h : request.headers) {
    if (isHopByHop(h.name)) continue;
    // A forwarded claim is never taken from the client, whether or not this token has it.
    bool claimed =
        std::any_of(owned.begin(), owned.end(),
                    [&](const std::string& name) { return http::iequals(name, h.name); }) ||
        std::any_of(filter_headers.begin(), filter_headers.end(),
                    [&](const http::Header& u) { return http::iequals(u.name, h.name); });
    if (claimed) continue;
    if (http::iequals(h.name, "x-forwarded-for")) {
      xff = h.value + ", " + std::string(client_ip);
      continue;
    }
    headers.push_back(h);
  }
  headers.push_back({"X-Forwarded-For", xff});
  headers.push_back({"X-Forwarded-Proto", tls ? "https" : "http"});
  headers.insert(headers.end(), filter_headers.begin(), filter_headers.end());
  return headers;
}

// ---- UpstreamConnector ----

UpstreamConnector::UpstreamConnector(Worker& worker, const ClusterRuntime& cluster,
                                     std::vector<size_t> order, std::string target,
                                     http::Headers headers, Done done)
    : worker_(worker),
      cluster_(cluster),
      order_(std::move(order)),
      target_(std::move(target)),
      headers_(std::move(headers)),
      done_(std::move(done)),
      timer_(worker.dispatcher(), [this] {
        handshake_timed_out_ = handshaking_;
        attemptFailed(handshaking_ ? "handshake timeout" : "connect timeout");
      }) {}

UpstreamConnector::~UpstreamConnector() {
  if (bev_ != nullptr) bufferevent_free(bev_);
}

void UpstreamConnector::next() {
  if (bev_ != nullptr) {
    bufferevent_free(bev_);
    bev_ = nullptr;
  }
  if (order_.empty()) {
    finish(nullptr, last_error_.empty() ? "no upstream endpoint" : last_error_);
    return;
  }
  endpoint_ = order_.back();
  order_.pop_back();
  handshake_timed_out_ = false;
  const Endpoint& ep = cluster_.endpoints[endpoint_];
  event_base* base = worker_.dispatcher().base();
  constexpr int kOptions = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
  if (cluster_.tls) {
    SSL* ssl = SSL_new(cluster_.tls.get());
    const std::string& name = cluster_.config->tls_server_name.empty()
                                  ? ep.address.host
                                  : cluster_.config->tls_server_name;
    SSL_set_tlsext_host_name(ssl, name.c_str());
    if (cluster_.config->tls_verify) SSL_set1_host(ssl, name.c_str());
    bev_ = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, kOptions);
    bufferevent_openssl_set_allow_dirty_shutdown(bev_, 1);
  } else {
    bev_ = bufferevent_socket_new(base, -1, kOptions);
  }
  bufferevent_setcb(bev_, &UpstreamConnector::onRead, nullptr, &UpstreamConnector::onEvent,
                    this);
  handshaking_ = false;
  timer_.arm(cluster_.config->connect_timeout);
  if (bufferevent_socket_connect(bev_, reinterpret_cast<const sockaddr*>(&ep.sockaddr),
                                 static_cast<int>(ep.sockaddr_len)) != 0) {
    last_error_ = ep.address.str() + ": connect failed";
    timer_.arm(Duration(0));  // retry from a fresh loop iteration
  }
}

void UpstreamConnector::onEvent(bufferevent*, short what, void* self) {
  auto* c = static_cast<UpstreamConnector*>(self);
  if (what & BEV_EVENT_CONNECTED) {
    c->sendUpgrade();
  } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
    c->attemptFailed((what & BEV_EVENT_EOF) ? "connection closed" : "connection failed");
  }
}

void UpstreamConnector::onRead(bufferevent*, void* self) { static_cast<UpstreamConnector*>(self)->read(); }

void UpstreamConnector::sendUpgrade() {
  const Endpoint& ep = cluster_.endpoints[endpoint_];
  key_ = http::makeWebSocketKey();
  http::Headers headers;
  headers.push_back({"Host", cluster_.config->host ? *cluster_.config->host : ep.address.str()});
  headers.push_back({"Upgrade", "websocket"});
  headers.push_back({"Connection", "Upgrade"});
  headers.push_back({"Sec-WebSocket-Key", key_});
  headers.push_back({"Sec-WebSocket-Version", "13"});
  headers.insert(headers.end(), headers_.begin(), headers_.end());
  std::string request = http::serializeRequest("GET", target_, headers);
  bufferevent_write(bev_, request.data(), request.size());
  bufferevent_enable(bev_, EV_READ | EV_WRITE);
  parser_ = std::make_unique<http::ResponseParser>();
  handshaking_ = true;
  timer_.arm(cluster_.config->handshake_timeout);
}

void UpstreamConnector::read() {
  if (!handshaking_) return;
  evbuffer* in = bufferevent_get_input(bev_);
  size_t len = evbuffer_get_length(in);
  const char* data = reinterpret_cast<const char*>(evbuffer_pullup(in, -1));
  evbuffer_drain(in, parser_->feed(data, len));
  if (parser_->state() == http::ParseState::NeedMore) return;
  if (parser_->state() == http::ParseState::Error) {
    attemptFailed("invalid HTTP response");
    return;
  }
  const http::Response& res = parser_->response();
  if (res.status != 101) {
    // The server answered: trying another endpoint would repeat the refusal.
    order_.clear();
    refused_status_ = res.status;
    attemptFailed("refused with HTTP " + std::to_string(res.status));
    return;
  }
  const std::string* accept = res.header("sec-websocket-accept");
  if (accept == nullptr || *accept != http::computeAcceptKey(key_)) {
    attemptFailed("wrong Sec-WebSocket-Accept");
    return;
  }
  timer_.cancel();
  bufferevent* bev = bev_;
  bev_ = nullptr;
  bufferevent_setcb(bev, nullptr, nullptr, nullptr, nullptr);
  bufferevent_disable(bev, EV_READ);
  worker_.balance(cluster_.config->name).active[endpoint_]++;
  finish(bev, {});
}

void UpstreamConnector::attemptFailed(const std::string& why) {
  if (finished_) return;
  last_error_ = cluster_.endpoints[endpoint_].address.str() + ": " + why;
  spdlog::debug("upstream {}", last_error_);
  next();
}

void UpstreamConnector::finish(bufferevent* bev, std::string error) {
  finished_ = true;
  timer_.cancel();
  done_(bev, endpoint_, std::move(error));
}

// ---- LiveObjects ----

std::vector<ConnectionInfo> LiveObjects::connectionsOf(Dispatcher* loop) {
  std::vector<Describe> describers;
  {
    std::lock_guard lock(mutex_);
    for (auto& [object, entry] : objects_) {
      if (entry.loop == loop && entry.describe) describers.push_back(entry.describe);
    }
  }
  std::vector<ConnectionInfo> out;
  for (auto& describe : describers) {
    ConnectionInfo info;
    if (describe(info)) out.push_back(std::move(info));
  }
  return out;
}

}  // namespace wsb::proxy
