// A running configuration: the loaded Config plus what is built from it once (TLS contexts,
// resolved endpoints, the route table), shared read-only by every worker.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "filters/filter.h"
#include "proxy/sticky_sid.h"
#include "proxy/tls.h"

namespace wsb::proxy {

struct Endpoint {
  config::Address address;
  sockaddr_storage sockaddr{};
  socklen_t sockaddr_len = 0;
  uint32_t tag = 0;  // SidSigner::endpointTag of the address
  std::string label;  // how logs name it: "cluster 'chat': endpoint 127.0.0.1:9000"
};

struct ClusterRuntime {
  const config::Cluster* config = nullptr;
  std::vector<Endpoint> endpoints;
  SslCtxPtr tls;  // set when the cluster speaks TLS
};

struct ListenerRuntime {
  const config::Listener* config = nullptr;
  SslCtxPtr tls;  // set for wss listeners
  // How long a client has from accept to send its whole request. The route is unknown until
  // the request is parsed, so this is the longest `handshake_timeout` of the limits filters on
  // the listener's routes, a route without one counting as the default 10 s.
  std::chrono::milliseconds handshake_timeout{10000};
};

class Snapshot {
 public:
  // Builds everything the config names; on failure returns null and fills `errors`.
  static std::shared_ptr<const Snapshot> build(config::ConfigPtr config,
                                               std::vector<std::string>* errors);

  const config::Config& config() const { return *config_; }
  const std::vector<ListenerRuntime>& listeners() const { return listeners_; }
  const ClusterRuntime* cluster(const std::string& name) const;
  // Longest path prefix among the listener's routes; a route with a matching host wins over one
  // without at the same length. Null when nothing matches.
  const config::Route* route(std::string_view listener, std::string_view host,
                             std::string_view path) const;
  // The route's filter factories, in the route's order.
  const std::vector<filters::FactoryPtr>& filtersOf(const config::Route& route) const;
  // The headers the route's filters own toward the upstream (FilterFactory::ownedUpstreamHeaders),
  // stripped from what the client sent on every upstream request of the route.
  const std::vector<std::string>& ownedHeadersOf(const config::Route& route) const;
  // The type of the route's `index`th filter ("auth.jwt"), or null past the last one: how
  // filter actions are labelled (the index being the chain's acting()).
  const std::string* filterType(const config::Route& route, size_t index) const;
  // The route's sticky-sid signer (its sid_key, or the process key).
  const SidSigner& signerOf(const config::Route& route) const;

 private:
  config::ConfigPtr config_;
  std::vector<ListenerRuntime> listeners_;
  std::vector<std::pair<std::string, ClusterRuntime>> clusters_;
  std::vector<std::vector<filters::FactoryPtr>> route_filters_;  // by route index
  std::vector<std::vector<std::string>> route_owned_headers_;    // by route index
  std::vector<SidSigner> route_signers_;                        // by route index
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

}  // namespace wsb::proxy
