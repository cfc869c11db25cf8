// Fuzzes the config loader with arbitrary text: it must answer with a config or with positioned
// errors, never crash, and what it accepts must hold together.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/loader.h"

using namespace wsb::config;

namespace {

void require(bool condition) {
  if (!condition) std::abort();
}

void checkConfig(const Config& config) {
  require(!config.listeners.empty() && !config.routes.empty());
  for (const Route& route : config.routes) {
    bool listener_known = false;
    for (const Listener& listener : config.listeners)
      listener_known |= listener.name == route.listener;
    require(listener_known);
    require(config.clusters.count(route.cluster) == 1);
    for (const std::string& filter : route.filters) require(config.filters.count(filter) == 1);
    require(route.path.starts_with('/') && route.namespace_.starts_with('/'));
    require(!route.transports.empty());
  }
  for (const auto& [name, cluster] : config.clusters) {
    require(!cluster.endpoints.empty());
    for (const Address& endpoint : cluster.endpoints) require(endpoint.port != 0);
  }
  for (const auto& [name, spec] : config.filters) require(spec.table && !spec.type.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  LoadResult result = loadString(text, "fuzz.toml");
  require(result.ok() == result.errors.empty());
  for (const std::string& error : result.errors) require(error.starts_with("fuzz.toml:"));
  if (result.ok()) checkConfig(*result.config);

  // The value parsers see the raw text too; an address must survive its own printing.
  if (std::optional<Address> address = parseAddress(text)) {
    std::optional<Address> again = parseAddress(address->str());
    require(again && again->host == address->host && again->port == address->port);
  }
  if (std::optional<Duration> duration = parseDuration(text)) require(duration->count() >= 0);
  parseSize(text);
  return 0;
}
