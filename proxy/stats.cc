// Stats: summing worker counters and rendering them as JSON and Prometheus text.
#include "proxy/stats.h"

#include "codec/http1.h"

namespace wsb::proxy {

std::string_view flowName(Flow flow) {
  return flow == Flow::ToUpstream ? "to_upstream" : "to_client";
}

void StatsTotals::add(const WorkerStats& worker) {
  constexpr auto relaxed = std::memory_order_relaxed;
  tcp_accepted += worker.tcp_accepted_.load(relaxed);
  worker.routes_.forEach([this](const std::string& path, const RouteCounters& counters) {
    RouteTotals& route = routes[path];
    route.accepted += counters.accepted.load(relaxed);
    route.active += counters.active.load(relaxed);
    for (int i = 0; i < 2; ++i) {
      route.messages[i] += counters.messages[i].load(relaxed);
      route.bytes[i] += counters.bytes[i].load(relaxed);
    }
    counters.closed.forEach([&route](uint16_t code, const std::atomic<uint64_t>& n) {
      route.closed[code] += n.load(relaxed);
    });
  });
  worker.refused_.forEach(
      [this](int status, const std::atomic<uint64_t>& n) { refused[status] += n.load(relaxed); });
  worker.connect_failures_.forEach(
      [this](const std::pair<std::string, std::string>& key, const std::atomic<uint64_t>& n) {
        connect_failures[key] += n.load(relaxed);
      });
}

std::string escapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {
class PromWriter {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    name_ = name;
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  // `labels`: name/value pairs.
  template <typename Value>
  void sample(std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              Value value) {
    out_ += name_;
    if (labels.size() > 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [name, v] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += name;
        out_ += "=\"";
        out_ += escapeLabelValue(v);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += std::to_string(value);
    out_ += '\n';
  }
  std::string take() { return std::move(out_); }

 private:
  std::string_view name_;
  std::string out_;
};

constexpr Flow kFlows[] = {Flow::ToUpstream, Flow::ToClient};
}  // namespace

std::string renderPrometheus(const StatsTotals& totals) {
  PromWriter w;
  w.family("wsbridge_tcp_connections_accepted_total", "counter",
           "TCP connections accepted by the listeners.");
  w.sample({}, totals.tcp_accepted);

  w.family("wsbridge_connections_accepted_total", "counter",
           "Connections whose handshake completed, by route.");
  for (const auto& [route, t] : totals.routes) w.sample({{"route", route}}, t.accepted);

  w.family("wsbridge_connections_active", "gauge", "Connections open now, by route.");
  for (const auto& [route, t] : totals.routes) w.sample({{"route", route}}, t.active);

  w.family("wsbridge_connections_closed_total", "counter",
           "Connections closed, by route and WebSocket close code.");
  for (const auto& [route, t] : totals.routes) {
    for (const auto& [code, n] : t.closed) {
      std::string c = std::to_string(code);
      w.sample({{"route", route}, {"code", c}}, n);
    }
  }

  w.family("wsbridge_handshakes_refused_total", "counter",
           "Requests answered with an HTTP error instead of an upgrade, by status.");
  for (const auto& [status, n] : totals.refused) {
    std::string s = std::to_string(status);
    w.sample({{"status", s}}, n);
  }

  w.family("wsbridge_messages_total", "counter",
           "Messages of closed connections, counted at the client, by route and direction.");
  for (const auto& [route, t] : totals.routes) {
    for (Flow f : kFlows) {
      w.sample({{"route", route}, {"direction", flowName(f)}},
               t.messages[static_cast<int>(f)]);
    }
  }

  w.family("wsbridge_bytes_total", "counter",
           "Message payload bytes of closed connections, by route and direction.");
  for (const auto& [route, t] : totals.routes) {
    for (Flow f : kFlows) {
      w.sample({{"route", route}, {"direction", flowName(f)}}, t.bytes[static_cast<int>(f)]);
    }
  }

  w.family("wsbridge_upstream_connect_failures_total", "counter",
           "Failed TCP/TLS connects to an upstream endpoint.");
  for (const auto& [key, n] : totals.connect_failures) {
    w.sample({{"cluster", key.first}, {"endpoint", key.second}}, n);
  }

  w.family("wsbridge_upstream_up", "gauge",
           "1 when the admin listener's last TCP probe of the endpoint succeeded.");
  for (const auto& [key, h] : totals.health) {
    if (h.probed) w.sample({{"cluster", key.first}, {"endpoint", key.second}}, h.reachable ? 1 : 0);
  }
  return w.take();
}

namespace {
std::string quoted(std::string_view s) { return "\"" + http::jsonEscape(s) + "\""; }
}  // namespace

std::string renderStatsJson(const StatsTotals& totals) {
  std::string out = "{\"connections\":{\"tcp_accepted\":" + std::to_string(totals.tcp_accepted);
  uint64_t accepted = 0;
  int64_t active = 0;
  for (const auto& [route, t] : totals.routes) {
    accepted += t.accepted;
    active += t.active;
  }
  out += ",\"accepted\":" + std::to_string(accepted) + ",\"active\":" + std::to_string(active);
  out += "},\"routes\":{";
  bool first = true;
  for (const auto& [route, t] : totals.routes) {
    if (!first) out += ',';
    first = false;
    out += quoted(route) + ":{\"accepted\":" + std::to_string(t.accepted) +
           ",\"active\":" + std::to_string(t.active) + ",\"closed\":{";
    bool first_code = true;
    for (const auto& [code, n] : t.closed) {
      if (!first_code) out += ',';
      first_code = false;
      out += "\"" + std::to_string(code) + "\":" + std::to_string(n);
    }
    out += "}";
    for (const char* what : {"messages", "bytes"}) {
      const uint64_t* counts = what[0] == 'm' ? t.messages : t.bytes;
      out += ",\"" + std::string(what) + "\":{";
      for (Flow f : kFlows) {
        if (f != kFlows[0]) out += ',';
        out += quoted(flowName(f)) + ":" + std::to_string(counts[static_cast<int>(f)]);
      }
      out += "}";
    }
    out += "}";
  }
  out += "},\"handshakes_refused\":{";
  first = true;
  for (const auto& [status, n] : totals.refused) {
    if (!first) out += ',';
    first = false;
    out += "\"" + std::to_string(status) + "\":" + std::to_string(n);
  }
  // Every endpoint that was probed or failed, grouped by cluster.
  std::map<std::string, std::map<std::string, std::pair<uint64_t, const EndpointHealth*>>> ups;
  for (const auto& [key, n] : totals.connect_failures) ups[key.first][key.second].first = n;
  for (const auto& [key, h] : totals.health) ups[key.first][key.second].second = &h;
  out += "},\"upstreams\":{";
  first = true;
  for (const auto& [cluster, endpoints] : ups) {
    if (!first) out += ',';
    first = false;
    out += quoted(cluster) + ":{";
    bool first_ep = true;
    for (const auto& [endpoint, v] : endpoints) {
      if (!first_ep) out += ',';
      first_ep = false;
      const EndpointHealth* h = v.second;
      out += quoted(endpoint) + ":{\"connect_failures\":" + std::to_string(v.first) +
             ",\"reachable\":" +
             (h == nullptr || !h->probed ? "null" : h->reachable ? "true" : "false") + "}";
    }
    out += "}";
  }
  out += "}}";
  return out;
}

}  // namespace wsb::proxy
