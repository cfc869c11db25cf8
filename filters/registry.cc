// Filter registry: one line per built-in filter type.
#include "filters/registry.h"

#include "filters/access_log.h"
#include "filters/event_acl.h"
#include "filters/heartbeat.h"
#include "filters/jwt_auth.h"
#include "filters/limits.h"
#include "filters/origin.h"
#include "filters/rate_limit.h"

namespace wsb::filters {

namespace {
using Builder = FactoryPtr (*)(const config::FilterSpec&, std::vector<std::string>*);

struct Entry {
  const char* type;
  Builder build;
};

// Adding a filter: its own files plus one line here.
constexpr Entry kFilters[] = {
    {"heartbeat", buildHeartbeatFactory},
    {"auth.jwt", buildJwtAuthFactory},
    {"rate_limit", buildRateLimitFactory},
    {"origin", buildOriginFactory},
    {"limits", buildLimitsFactory},
    {"event_acl", buildEventAclFactory},
    {"access_log", buildAccessLogFactory},
};
}  // namespace

FactoryPtr buildFactory(const config::FilterSpec& spec, std::vector<std::string>* errors) {
  for (const Entry& e : kFilters) {
    if (e.type != nullptr && spec.type == e.type) return e.build(spec, errors);
  }
  std::string known;
  for (const std::string& t : filterTypes()) known += (known.empty() ? "" : ", ") + t;
  errors->push_back(spec.pos.str() + ": [filter." + spec.name + "]: unknown filter type '" +
                    spec.type + "'" + (known.empty() ? "" : " (known: " + known + ")"));
  return nullptr;
}

std::vector<std::string> filterTypes() {
  std::vector<std::string> out;
  for (const Entry& e : kFilters) {
    if (e.type != nullptr) out.emplace_back(e.type);
  }
  return out;
}

}  // namespace wsb::filters
