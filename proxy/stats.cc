// Stats: summing worker counters and rendering them as JSON and Prometheus text.
#include "proxy/stats.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "codec/http1.h"

namespace wsb::proxy {

std::string_view flowName(Flow flow) {
  return flow == Flow::ToUpstream ? "to_upstream" : "to_client";
}

void Histogram::observe(std::chrono::microseconds elapsed) {
  double ms = static_cast<double>(elapsed.count()) / 1000.0;
  size_t i = std::lower_bound(std::begin(kLatencyBucketsMs), std::end(kLatencyBucketsMs), ms) -
             std::begin(kLatencyBucketsMs);
  bump<uint64_t>(buckets[i], 1);
  bump(sum_us, static_cast<uint64_t>(std::max<int64_t>(elapsed.count(), 0)));
}

void RouteEvents::count(std::string_view name) {
  std::atomic<uint64_t>* slot = names_.find(name);
  if (slot == nullptr) {
    // A new name: its own slot while the route has fewer than kTopEvents, else "other".
    if (distinct_ < kTopEvents) {
      ++distinct_;
      slot = &names_.at(name);
    } else {
      slot = &names_.at(kOtherEvent);
    }
  }
  bump<uint64_t>(*slot, 1);
}

void HistogramTotals::add(const Histogram& h) {
  for (size_t i = 0; i < kLatencyBuckets; ++i) {
    buckets[i] += h.buckets[i].load(std::memory_order_relaxed);
  }
  sum_us += h.sum_us.load(std::memory_order_relaxed);
}

void HistogramTotals::add(const HistogramTotals& h) {
  for (size_t i = 0; i < kLatencyBuckets; ++i) buckets[i] += h.buckets[i];
  sum_us += h.sum_us;
}

uint64_t HistogramTotals::count() const {
  uint64_t n = 0;
  for (uint64_t b : buckets) n += b;
  return n;
}

namespace {
void addRoute(RouteTotals& to, const RouteTotals& from) {
  to.accepted += from.accepted;
  to.active += from.active;
  for (int i = 0; i < 2; ++i) {
    to.messages[i] += from.messages[i];
    to.bytes[i] += from.bytes[i];
  }
  for (const auto& [code, n] : from.closed) to.closed[code] += n;
}

template <typename K>
void addCounts(std::map<K, uint64_t>& to, const std::map<K, uint64_t>& from) {
  for (const auto& [key, n] : from) to[key] += n;
}
}  // namespace

void StatsTotals::addLive(const ConnectionInfo& c) {
  RouteTotals& route = routes[c.route];
  for (int i = 0; i < 2; ++i) {
    route.messages[i] += c.messages[i];
    route.bytes[i] += c.bytes[i];
  }
}

void StatsTotals::merge(const StatsTotals& o) {
  tcp_accepted += o.tcp_accepted;
  for (const auto& [k, r] : o.routes) addRoute(routes[k], r);
  for (const auto& [k, r] : o.clusters) addRoute(clusters[k], r);
  addCounts(refused, o.refused);
  addCounts(accept_errors, o.accept_errors);
  addCounts(tls_failures, o.tls_failures);
  addCounts(redis_errors, o.redis_errors);
  addCounts(connect_failures, o.connect_failures);
  for (const auto& [k, h] : o.connect_latency) connect_latency[k].add(h);
  addCounts(filter_actions, o.filter_actions);
  addCounts(events, o.events);
  addCounts(parse_errors, o.parse_errors);
  relay_latency.add(o.relay_latency);
  for (const auto& [k, h] : o.health) health[k] = h;
}

std::map<StatsTotals::Pair, uint64_t> StatsTotals::topEvents(size_t n) const {
  std::map<std::string, std::vector<std::pair<uint64_t, std::string>>> by_route;
  for (const auto& [key, count] : events) by_route[key.first].emplace_back(count, key.second);
  std::map<Pair, uint64_t> out;
  for (auto& [route, names] : by_route) {
    // Busiest first; ties by name so the choice is stable.
    std::sort(names.begin(), names.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    size_t kept = 0;
    for (const auto& [count, name] : names) {
      bool keep = kept < n && name != kOtherEvent;
      out[{route, keep ? name : std::string(kOtherEvent)}] += count;
      kept += keep;
    }
  }
  return out;
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
  worker.clusters_.forEach([this](const std::string& name, const RouteCounters& counters) {
    RouteTotals& cluster = clusters[name];
    cluster.accepted += counters.accepted.load(relaxed);
    cluster.active += counters.active.load(relaxed);
    counters.closed.forEach([&cluster](uint16_t code, const std::atomic<uint64_t>& n) {
      cluster.closed[code] += n.load(relaxed);
    });
  });
  worker.accept_errors_.forEach([this](const std::string& reason, const std::atomic<uint64_t>& n) {
    accept_errors[reason] += n.load(relaxed);
  });
  worker.tls_failures_.forEach([this](const std::string& listener, const std::atomic<uint64_t>& n) {
    tls_failures[listener] += n.load(relaxed);
  });
  worker.refused_.forEach(
      [this](int status, const std::atomic<uint64_t>& n) { refused[status] += n.load(relaxed); });
  auto sum_into = [](std::map<Pair, uint64_t>& to) {
    return [&to](const Pair& key, const std::atomic<uint64_t>& n) { to[key] += n.load(relaxed); };
  };
  worker.connect_failures_.forEach(sum_into(connect_failures));
  worker.redis_errors_.forEach(sum_into(redis_errors));
  worker.filter_actions_.forEach(sum_into(filter_actions));
  worker.parse_errors_.forEach(sum_into(parse_errors));
  worker.events_.forEach([this](const std::string& route, const RouteEvents& names) {
    names.names_.forEach([&](const std::string& name, const std::atomic<uint64_t>& n) {
      events[{route, name}] += n.load(relaxed);
    });
  });
  worker.connect_latency_.forEach(
      [this](const Pair& key, const Histogram& h) { connect_latency[key].add(h); });
  relay_latency.add(worker.relay_latency_);
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
using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

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
  template <typename Value>
  void sample(const Labels& labels, Value value) {
    line("", labels, std::to_string(value));
  }
  // The _bucket (cumulative, `le` in seconds), _sum and _count samples of one histogram.
  void histogram(Labels labels, const HistogramTotals& h) {
    uint64_t cumulative = 0;
    labels.emplace_back("le", "");
    for (size_t i = 0; i < kLatencyBuckets; ++i) {
      cumulative += h.buckets[i];
      std::string le = i + 1 < kLatencyBuckets ? number(kLatencyBucketsMs[i] / 1000) : "+Inf";
      labels.back().second = le;
      line("_bucket", labels, std::to_string(cumulative));
    }
    labels.pop_back();
    line("_sum", labels, number(static_cast<double>(h.sum_us) / 1e6));
    line("_count", labels, std::to_string(cumulative));
  }
  std::string take() { return std::move(out_); }

 private:
  static std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
  }
  void line(std::string_view suffix, const Labels& labels, const std::string& value) {
    out_ += name_;
    out_ += suffix;
    if (!labels.empty()) {
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
    out_ += value;
    out_ += '\n';
  }

  std::string name_;  // the family being written (a caller may pass a temporary)
  std::string out_;
};

constexpr Flow kFlows[] = {Flow::ToUpstream, Flow::ToClient};

// The accepted, active and closed (by code) families of connections grouped by `label`.
void connectionFamilies(PromWriter& w, const std::string& prefix, const std::string& label,
                        const std::map<std::string, RouteTotals>& groups) {
  w.family(prefix + "accepted_total", "counter",
           "Connections whose handshake completed, by " + label + ".");
  for (const auto& [name, t] : groups) w.sample({{label, name}}, t.accepted);

  w.family(prefix + "active", "gauge", "Connections open now, by " + label + ".");
  for (const auto& [name, t] : groups) w.sample({{label, name}}, t.active);

  w.family(prefix + "closed_total", "counter",
           "Connections closed, by " + label + " and WebSocket close code.");
  for (const auto& [name, t] : groups) {
    for (const auto& [code, n] : t.closed) {
      std::string c = std::to_string(code);
      w.sample({{label, name}, {"code", c}}, n);
    }
  }
}
}  // namespace

std::string renderPrometheus(const StatsTotals& totals) {
  PromWriter w;
  w.family("wsbridge_tcp_connections_accepted_total", "counter",
           "TCP connections accepted by the listeners.");
  w.sample({}, totals.tcp_accepted);

  connectionFamilies(w, "wsbridge_connections_", "route", totals.routes);
  connectionFamilies(w, "wsbridge_cluster_connections_", "cluster", totals.clusters);

  w.family("wsbridge_accept_errors_total", "counter",
           "Connections the listeners could not take, by reason (no_descriptors: accept() failed "
           "with EMFILE, ENFILE, ENOBUFS or ENOMEM, the listener pauses 100 ms; "
           "handshakes_per_ip: closed at accept, its source had max_handshakes_per_ip "
           "connections in the handshake; other: another accept() error).");
  for (const auto& [reason, n] : totals.accept_errors) w.sample({{"reason", reason}}, n);

  w.family("wsbridge_tls_handshake_failures_total", "counter",
           "TLS handshakes (or TLS errors before the request) that failed, by listener.");
  for (const auto& [listener, n] : totals.tls_failures) w.sample({{"listener", listener}}, n);

  w.family("wsbridge_redis_errors_total", "counter",
           "Connections to a rate_limit Redis that failed or were dropped, by Redis "
           "(host:port/db) and reason (connect, closed, timeout: no reply within redis_timeout, "
           "error: an error reply). Each worker has its own connection.");
  for (const auto& [key, n] : totals.redis_errors) {
    w.sample({{"redis", key.first}, {"reason", key.second}}, n);
  }

  w.family("wsbridge_handshakes_refused_total", "counter",
           "Requests answered with an HTTP error instead of an upgrade, by status.");
  for (const auto& [status, n] : totals.refused) {
    std::string s = std::to_string(status);
    w.sample({{"status", s}}, n);
  }

  w.family("wsbridge_socketio_parse_errors_total", "counter",
           "Socket.IO / Engine.IO packets that did not decode (never forwarded; the connection "
           "was closed), by route and sender.");
  for (const auto& [key, n] : totals.parse_errors) {
    w.sample({{"route", key.first}, {"from", key.second}}, n);
  }

  w.family("wsbridge_messages_total", "counter",
           "Messages counted at the client, by route and direction.");
  for (const auto& [route, t] : totals.routes) {
    for (Flow f : kFlows) {
      w.sample({{"route", route}, {"direction", flowName(f)}},
               t.messages[static_cast<int>(f)]);
    }
  }

  w.family("wsbridge_bytes_total", "counter",
           "Message payload bytes counted at the client, by route and direction.");
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

  w.family("wsbridge_upstream_connect_seconds", "histogram",
           "Time to connect (TCP, and TLS where configured) to an upstream endpoint.");
  for (const auto& [key, h] : totals.connect_latency) {
    w.histogram({{"cluster", key.first}, {"endpoint", key.second}}, h);
  }

  w.family("wsbridge_relay_latency_seconds", "histogram",
           "From reading a batch of frames to having queued what they became on the other side.");
  w.histogram({}, totals.relay_latency);

  w.family("wsbridge_socketio_events_total", "counter",
           "Socket.IO events (both directions) by route and event name; the top names per route, "
           "the rest as \"other\".");
  for (const auto& [key, n] : totals.topEvents()) {
    w.sample({{"route", key.first}, {"event", key.second}}, n);
  }

  w.family("wsbridge_filter_actions_total", "counter",
           "Filter decisions that changed a connection's course, by filter type and action.");
  for (const auto& [key, n] : totals.filter_actions) {
    w.sample({{"filter", key.first}, {"action", key.second}}, n);
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

std::string decimal(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

// The upper bound (ms) of the bucket holding quantile `q`: a histogram's honest answer.
double quantileMs(const HistogramTotals& h, double q) {
  uint64_t total = h.count();
  if (total == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(total - 1)) + 1, seen = 0;
  for (size_t i = 0; i < kLatencyBuckets; ++i) {
    seen += h.buckets[i];
    if (seen >= rank) {
      return i < std::size(kLatencyBucketsMs) ? kLatencyBucketsMs[i] : kLatencyBucketsMs[i - 1];
    }
  }
  return 0;
}

// {"count":n,"avg":ms,"p50":ms,"p99":ms}
std::string latencyJson(const HistogramTotals& h) {
  uint64_t n = h.count();
  double avg = n == 0 ? 0 : static_cast<double>(h.sum_us) / 1000.0 / static_cast<double>(n);
  return "{\"count\":" + std::to_string(n) + ",\"avg\":" + decimal(avg) +
         ",\"p50\":" + decimal(quantileMs(h, 0.5)) + ",\"p99\":" + decimal(quantileMs(h, 0.99)) +
         "}";
}

std::string closedJson(const std::map<uint16_t, uint64_t>& closed) {
  std::string out = "{";
  for (const auto& [code, n] : closed) {
    if (out.size() > 1) out += ',';
    out += "\"" + std::to_string(code) + "\":" + std::to_string(n);
  }
  return out + "}";
}

// {"a":{"x":1,...},...} from (a, x) -> 1.
std::string nestedCounts(const std::map<StatsTotals::Pair, uint64_t>& counts) {
  std::string out = "{";
  std::string_view group;
  for (const auto& [key, n] : counts) {
    if (key.first != group || out.size() == 1) {
      if (out.size() > 1) out += "},";
      out += quoted(key.first) + ":{";
      group = key.first;
    } else {
      out += ',';
    }
    out += quoted(key.second) + ":" + std::to_string(n);
  }
  return out + (counts.empty() ? "}" : "}}");
}
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
           ",\"active\":" + std::to_string(t.active) + ",\"closed\":" + closedJson(t.closed);
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
  out += "},\"clusters\":{";
  first = true;
  for (const auto& [cluster, t] : totals.clusters) {
    if (!first) out += ',';
    first = false;
    out += quoted(cluster) + ":{\"accepted\":" + std::to_string(t.accepted) +
           ",\"active\":" + std::to_string(t.active) + ",\"closed\":" + closedJson(t.closed) + "}";
  }
  out += "},\"events\":" + nestedCounts(totals.topEvents());
  out += ",\"filter_actions\":" + nestedCounts(totals.filter_actions);
  out += ",\"relay_latency_ms\":" + latencyJson(totals.relay_latency);
  // Every endpoint that was probed, failed or connected, grouped by cluster.
  struct Upstream {
    uint64_t failures = 0;
    const EndpointHealth* health = nullptr;
    const HistogramTotals* connect = nullptr;
  };
  std::map<std::string, std::map<std::string, Upstream>> ups;
  for (const auto& [key, n] : totals.connect_failures) ups[key.first][key.second].failures = n;
  for (const auto& [key, h] : totals.health) ups[key.first][key.second].health = &h;
  for (const auto& [key, h] : totals.connect_latency) ups[key.first][key.second].connect = &h;
  out += ",\"upstreams\":{";
  first = true;
  for (const auto& [cluster, endpoints] : ups) {
    if (!first) out += ',';
    first = false;
    out += quoted(cluster) + ":{";
    bool first_ep = true;
    for (const auto& [endpoint, v] : endpoints) {
      if (!first_ep) out += ',';
      first_ep = false;
      const EndpointHealth* h = v.health;
      out += quoted(endpoint) + ":{\"connect_failures\":" + std::to_string(v.failures) +
             ",\"reachable\":" +
             (h == nullptr || !h->probed ? "null" : h->reachable ? "true" : "false") +
             ",\"connect_ms\":" + latencyJson(v.connect ? *v.connect : HistogramTotals{}) + "}";
    }
    out += "}";
  }
  out += "}}";
  return out;
}

}  // namespace wsb::proxy
