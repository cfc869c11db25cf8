// Snapshot: builds TLS contexts, resolves endpoints and answers route lookups.
#include "proxy/snapshot.h"

#include <netdb.h>

#include <algorithm>
#include <cstring>

#include "filters/limits.h"
#include "filters/registry.h"

namespace wsb::proxy {

namespace {
bool resolve(const config::Address& address, Endpoint* out, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  std::string port = std::to_string(address.port);
  int rc = getaddrinfo(address.host.c_str(), port.c_str(), &hints, &result);
  if (rc != 0 || result == nullptr) {
    *error = "cannot resolve " + address.str() + ": " + gai_strerror(rc);
    return false;
  }
  out->address = address;
  std::memcpy(&out->sockaddr, result->ai_addr, result->ai_addrlen);
  out->sockaddr_len = static_cast<socklen_t>(result->ai_addrlen);
  freeaddrinfo(result);
  return true;
}

constexpr std::chrono::milliseconds kDefaultHandshakeTimeout{10000};

// A route's client request deadline: its limits filter's handshake_timeout, or the default.
std::chrono::milliseconds handshakeTimeoutOf(const std::vector<filters::FactoryPtr>& chain) {
  for (const auto& factory : chain) {
    const filters::LimitsSettings* limits = filters::limitsSettings(*factory);
    if (limits != nullptr && limits->handshake_timeout.count() > 0)
      return limits->handshake_timeout;
  }
  return kDefaultHandshakeTimeout;
}

std::string hostWithoutPort(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    size_t end = host.find(']');
    return std::string(host.substr(0, end == std::string_view::npos ? host.size() : end + 1));
  }
  size_t colon = host.find(':');
  std::string out(host.substr(0, colon));
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace

std::shared_ptr<const Snapshot> Snapshot::build(config::ConfigPtr config,
                                                std::vector<std::string>* errors) {
  auto snap = std::make_shared<Snapshot>();
  snap->config_ = config;
  size_t before = errors->size();
  for (const auto& listener : config->listeners) {
    ListenerRuntime rt;
    rt.config = &listener;
    rt.handshake_timeout = std::chrono::milliseconds{0};  // the routes below set it
    if (listener.tls()) {
      std::string error;
      rt.tls = makeServerContext(listener.tls_cert, listener.tls_key, &error);
      if (!rt.tls) errors->push_back(listener.pos.str() + ": listener '" + listener.name + "': " + error);
    }
    snap->listeners_.push_back(std::move(rt));
  }
  for (const auto& [name, cluster] : config->clusters) {
    ClusterRuntime rt;
    rt.config = &cluster;
    for (const auto& address : cluster.endpoints) {
      Endpoint endpoint;
      std::string error;
      if (resolve(address, &endpoint, &error)) {
        endpoint.tag = SidSigner::endpointTag(address.str());
        endpoint.label = "cluster '" + name + "': endpoint " + address.str();
        rt.endpoints.push_back(endpoint);
      } else {
        errors->push_back(cluster.pos.str() + ": cluster '" + name + "': " + error);
      }
    }
    if (cluster.tls) {
      std::string error;
      rt.tls = makeClientContext(cluster.tls_ca, cluster.tls_verify, &error);
      if (!rt.tls) errors->push_back(cluster.pos.str() + ": cluster '" + name + "': " + error);
    }
    snap->clusters_.emplace_back(name, std::move(rt));
  }
  std::map<std::string, filters::FactoryPtr> factories;
  for (const auto& [name, spec] : config->filters) {
    if (auto factory = filters::buildFactory(spec, errors)) factories[name] = std::move(factory);
  }
  for (const auto& route : config->routes) {
    std::vector<filters::FactoryPtr> chain;
    for (const auto& name : route.filters) {
      auto it = factories.find(name);
      if (it != factories.end()) chain.push_back(it->second);
    }
    snap->route_signers_.emplace_back(route.sid_key);
    // The listener's deadline is the longest of its routes' (see ListenerRuntime).
    for (ListenerRuntime& listener : snap->listeners_) {
      if (listener.config->name != route.listener) continue;
      listener.handshake_timeout = std::max(listener.handshake_timeout, handshakeTimeoutOf(chain));
    }
    std::vector<std::string> owned;
    for (const auto& factory : chain) {
      for (auto& name : factory->ownedUpstreamHeaders()) owned.push_back(std::move(name));
    }
    snap->route_owned_headers_.push_back(std::move(owned));
    snap->route_filters_.push_back(std::move(chain));
  }
  for (ListenerRuntime& listener : snap->listeners_) {
    if (listener.handshake_timeout.count() == 0) listener.handshake_timeout = kDefaultHandshakeTimeout;
  }
  if (errors->size() != before) return nullptr;
  return snap;
}

const ClusterRuntime* Snapshot::cluster(const std::string& name) const {
  for (const auto& [n, rt] : clusters_) {
    if (n == name) return &rt;
  }
  return nullptr;
}

const std::vector<filters::FactoryPtr>& Snapshot::filtersOf(const config::Route& route) const {
  size_t index = static_cast<size_t>(&route - config_->routes.data());
  return route_filters_.at(index);
}

const std::vector<std::string>& Snapshot::ownedHeadersOf(const config::Route& route) const {
  return route_owned_headers_.at(static_cast<size_t>(&route - config_->routes.data()));
}

const std::string* Snapshot::filterType(const config::Route& route, size_t index) const {
  if (index >= route.filters.size()) return nullptr;
  auto spec = config_->filters.find(route.filters[index]);
  return spec != config_->filters.end() ? &spec->second.type : nullptr;
}

const SidSigner& Snapshot::signerOf(const config::Route& route) const {
  return route_signers_.at(static_cast<size_t>(&route - config_->routes.data()));
}

const config::Route* Snapshot::route(std::string_view listener, std::string_view host,
                                     std::string_view path) const {
  std::string bare_host = hostWithoutPort(host);
  const config::Route* best = nullptr;
  size_t best_len = 0;
  bool best_has_host = false;
  for (const auto& route : config_->routes) {
    if (route.listener != listener) continue;
    if (path.substr(0, route.path.size()) != route.path) continue;
    bool has_host = route.host.has_value();
    if (has_host && hostWithoutPort(*route.host) != bare_host) continue;
    size_t len = route.path.size();
    if (best == nullptr || len > best_len || (len == best_len && has_host && !best_has_host)) {
      best = &route;
      best_len = len;
      best_has_host = has_host;
    }
  }
  return best;
}

}  // namespace wsb::proxy
