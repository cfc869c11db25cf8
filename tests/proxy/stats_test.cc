// Stats: per-worker counters summed over workers, Prometheus text checked by parsing it back,
// and the stats JSON.
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "proxy/admin.h"
#include "proxy/stats.h"

using namespace wsb::proxy;

namespace {

// Parses Prometheus text exposition 0.0.4 back into "name{l1="v1",...}" -> value, checking the
// grammar on the way: every sample belongs to the family announced by the last # TYPE, label
// values are quoted with only \\, \" and \n escapes, and the value is a number.
struct Parsed {
  std::map<std::string, double> samples;             // key with unescaped label values
  std::map<std::string, std::string> types;          // family -> counter | gauge
  std::vector<std::string> errors;
};

Parsed parsePrometheus(const std::string& text) {
  Parsed p;
  std::istringstream in(text);
  std::string line, family;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      std::string type;
      t >> family >> type;
      p.types[family] = type;
      continue;
    }
    size_t i = 0;
    while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_')) ++i;
    std::string name = line.substr(0, i);
    bool in_family = name == family;
    if (p.types[family] == "histogram") {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) in_family |= name == family + suffix;
    }
    if (!in_family) p.errors.push_back("sample outside its family: " + line);
    std::string key = name;
    if (i < line.size() && line[i] == '{') {
      key += '{';
      ++i;
      bool first = true;
      while (i < line.size() && line[i] != '}') {
        if (!first) {
          if (line[i] != ',') p.errors.push_back("expected , in " + line);
          ++i;
        }
        first = false;
        size_t eq = line.find('=', i);
        std::string label = line.substr(i, eq - i);
        i = eq + 1;
        if (line[i] != '"') p.errors.push_back("unquoted label value: " + line);
        ++i;
        std::string value;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\') {
            char c = line[++i];
            if (c == 'n') value += '\n';
            else if (c == '\\' || c == '"') value += c;
            else p.errors.push_back("bad escape in " + line);
          } else {
            value += line[i];
          }
          ++i;
        }
        ++i;  // closing quote
        key += (key.back() == '{' ? "" : ",") + label + "=\"" + value + "\"";
      }
      key += '}';
      ++i;
    }
    if (i >= line.size() || line[i] != ' ') {
      p.errors.push_back("no value in " + line);
      continue;
    }
    std::string value = line.substr(i + 1);
    char* end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    if (end == value.c_str() || *end != '\0') p.errors.push_back("bad value in " + line);
    p.samples[key] = v;
  }
  return p;
}

void record(WorkerStats& w, const std::string& route, uint16_t code, uint64_t up, uint64_t down) {
  RouteCounters& r = w.route(route);
  r.countOpened();
  uint64_t messages[2] = {up, down};
  uint64_t bytes[2] = {up * 10, down * 10};
  r.countClosed(code, messages, bytes);
}

}  // namespace

TEST_CASE("totals sum every worker's counters by label") {
  WorkerStats a, b;
  record(a, "/chat", 1000, 3, 4);
  record(b, "/chat", 1000, 1, 1);
  record(b, "/chat", 1001, 2, 0);
  b.route("/chat").countOpened();  // still open
  a.route("/feed").countOpened();
  a.countAccepted();
  b.countAccepted();
  b.countAccepted();
  a.countRefused(404);
  b.countRefused(404);
  b.countRefused(429);
  a.countConnectFailure("chat", "127.0.0.1:1");

  StatsTotals t;
  t.add(a);
  t.add(b);
  CHECK(t.tcp_accepted == 3);
  REQUIRE(t.routes.size() == 2);
  const RouteTotals& chat = t.routes.at("/chat");
  CHECK(chat.accepted == 4);
  CHECK(chat.active == 1);
  CHECK(chat.closed == std::map<uint16_t, uint64_t>{{1000, 2}, {1001, 1}});
  CHECK(chat.messages[0] == 6);
  CHECK(chat.messages[1] == 5);
  CHECK(chat.bytes[0] == 60);
  CHECK(chat.bytes[1] == 50);
  CHECK(t.routes.at("/feed").active == 1);
  CHECK(t.refused == std::map<int, uint64_t>{{404, 2}, {429, 1}});
  CHECK(t.connect_failures.at({"chat", "127.0.0.1:1"}) == 1);
}

TEST_CASE("a reader summing while a worker counts sees every increment once it stops") {
  WorkerStats w;
  constexpr int kConnections = 20000;
  std::thread worker([&w] {
    for (int i = 0; i < kConnections; ++i) {
      // New label sets appear while the reader iterates.
      record(w, "/r" + std::to_string(i % 50), static_cast<uint16_t>(1000 + i % 7), 1, 2);
      w.countRefused(400 + i % 30);
    }
  });
  uint64_t last = 0;
  for (int i = 0; i < 200; ++i) {
    StatsTotals t;
    t.add(w);
    uint64_t accepted = 0;
    for (const auto& [route, r] : t.routes) accepted += r.accepted;
    CHECK(accepted >= last);  // counters only grow
    last = accepted;
  }
  worker.join();
  StatsTotals t;
  t.add(w);
  uint64_t accepted = 0, up = 0, closed = 0, refused = 0;
  for (const auto& [route, r] : t.routes) {
    accepted += r.accepted;
    up += r.messages[0];
    for (const auto& [code, n] : r.closed) closed += n;
    CHECK(r.active == 0);
  }
  for (const auto& [status, n] : t.refused) refused += n;
  CHECK(accepted == kConnections);
  CHECK(closed == kConnections);
  CHECK(up == kConnections);
  CHECK(refused == kConnections);
}

TEST_CASE("prometheus text parses back to the exact counts") {
  WorkerStats w;
  record(w, "/chat", 1000, 3, 4);
  record(w, "/chat", 1008, 1, 0);
  w.route("/chat").countOpened();
  w.countAccepted();
  w.countAccepted();
  w.countRefused(404);
  w.countConnectFailure("backend", "127.0.0.1:9000");
  StatsTotals t;
  t.add(w);
  t.health[{"backend", "127.0.0.1:9000"}] = EndpointHealth{true, false};
  t.health[{"backend", "127.0.0.1:9001"}] = EndpointHealth{false, false};  // not probed: no sample

  std::string text = renderPrometheus(t);
  Parsed p = parsePrometheus(text);
  CHECK(p.errors.empty());
  for (const auto& e : p.errors) INFO(e);
  CHECK(text.back() == '\n');
  CHECK(p.types.at("wsbridge_connections_accepted_total") == "counter");
  CHECK(p.types.at("wsbridge_connections_active") == "gauge");
  CHECK(p.types.at("wsbridge_upstream_up") == "gauge");
  std::map<std::string, double> expected{
      {"wsbridge_tcp_connections_accepted_total", 2},
      {R"(wsbridge_connections_accepted_total{route="/chat"})", 3},
      {R"(wsbridge_connections_active{route="/chat"})", 1},
      {R"(wsbridge_connections_closed_total{route="/chat",code="1000"})", 1},
      {R"(wsbridge_connections_closed_total{route="/chat",code="1008"})", 1},
      {R"(wsbridge_handshakes_refused_total{status="404"})", 1},
      {R"(wsbridge_messages_total{route="/chat",direction="to_upstream"})", 4},
      {R"(wsbridge_messages_total{route="/chat",direction="to_client"})", 4},
      {R"(wsbridge_bytes_total{route="/chat",direction="to_upstream"})", 40},
      {R"(wsbridge_bytes_total{route="/chat",direction="to_client"})", 40},
      {R"(wsbridge_upstream_connect_failures_total{cluster="backend",endpoint="127.0.0.1:9000"})",
       1},
      {R"(wsbridge_upstream_up{cluster="backend",endpoint="127.0.0.1:9000"})", 0},
  };
  std::map<std::string, double> plain;  // the histograms are checked on their own
  for (const auto& [key, v] : p.samples) {
    if (key.find("_seconds") == std::string::npos) plain[key] = v;
  }
  CHECK(plain == expected);
  CHECK(p.types.at("wsbridge_relay_latency_seconds") == "histogram");
  CHECK(p.samples.at("wsbridge_relay_latency_seconds_count") == 0);
}

TEST_CASE("histograms render cumulative buckets, sum and count in seconds") {
  WorkerStats a, b;
  using us = std::chrono::microseconds;
  a.connectLatency("chat", "127.0.0.1:9000").observe(us(800));    // <= 1 ms
  a.connectLatency("chat", "127.0.0.1:9000").observe(us(3000));   // <= 5 ms
  b.connectLatency("chat", "127.0.0.1:9000").observe(us(9000000));  // above every bound
  a.relayLatency().observe(us(50));
  StatsTotals t;
  t.add(a);
  t.add(b);
  Parsed p = parsePrometheus(renderPrometheus(t));
  for (const auto& e : p.errors) INFO(e);
  CHECK(p.errors.empty());
  CHECK(p.types.at("wsbridge_upstream_connect_seconds") == "histogram");
  const std::string labels = R"(cluster="chat",endpoint="127.0.0.1:9000")";
  auto bucket = [&](const std::string& le) {
    return p.samples.at("wsbridge_upstream_connect_seconds_bucket{" + labels + ",le=\"" + le +
                        "\"}");
  };
  CHECK(bucket("0.0005") == 0);
  CHECK(bucket("0.001") == 1);
  CHECK(bucket("0.0025") == 1);
  CHECK(bucket("0.005") == 2);
  CHECK(bucket("5") == 2);
  CHECK(bucket("+Inf") == 3);
  CHECK(p.samples.at("wsbridge_upstream_connect_seconds_count{" + labels + "}") == 3);
  CHECK(p.samples.at("wsbridge_upstream_connect_seconds_sum{" + labels + "}") ==
        Approx(9.0038));
  CHECK(p.samples.at(R"(wsbridge_relay_latency_seconds_bucket{le="0.0001"})") == 1);
  CHECK(p.samples.at("wsbridge_relay_latency_seconds_count") == 1);
}

TEST_CASE("event names past the per-route limit count as other, and the top names are kept") {
  WorkerStats w;
  for (size_t i = 0; i < kTopEvents + 5; ++i) {
    // Name i is sent i + 1 times.
    for (size_t n = 0; n <= i; ++n) w.countEvent("/chat", "e" + std::to_string(i));
  }
  w.countEvent("/feed", "tick");
  StatsTotals t;
  t.add(w);
  // The worker keeps the first kTopEvents names; the 5 later ones went to "other".
  CHECK(t.events.size() == kTopEvents + 2);
  uint64_t late = 0;
  for (size_t i = kTopEvents; i < kTopEvents + 5; ++i) late += i + 1;
  CHECK(t.events.at({"/chat", "other"}) == late);
  CHECK(t.events.at({"/chat", "e0"}) == 1);
  // Rendering keeps the 3 busiest and folds the rest (named and "other") into "other".
  auto top = t.topEvents(3);
  uint64_t all = 0;
  for (size_t i = 0; i < kTopEvents + 5; ++i) all += i + 1;
  std::string last = "e" + std::to_string(kTopEvents - 1);
  std::string second = "e" + std::to_string(kTopEvents - 2);
  std::string third = "e" + std::to_string(kTopEvents - 3);
  CHECK(top.at({"/chat", "other"}) == all - kTopEvents - (kTopEvents - 1) - (kTopEvents - 2));
  CHECK(top.at({"/chat", last}) == kTopEvents);
  CHECK(top.at({"/chat", second}) == kTopEvents - 1);
  CHECK(top.at({"/chat", third}) == kTopEvents - 2);
  CHECK(top.at({"/feed", "tick"}) == 1);
  CHECK(top.size() == 5);
  Parsed p = parsePrometheus(renderPrometheus(t));
  CHECK(p.samples.at(R"(wsbridge_socketio_events_total{route="/feed",event="tick"})") == 1);
}

TEST_CASE("worker reports merge with live connections counted once") {
  WorkerStats a, b;
  record(a, "/chat", 1000, 2, 3);
  a.route("/chat").countOpened();  // open: its counts come from the live report
  a.cluster("echo").countOpened();
  b.cluster("echo").countOpened();
  b.cluster("echo").countClosed(1001, {0, 0}, {0, 0});
  a.countFilterAction("rate_limit", "notify");
  b.countFilterAction("rate_limit", "notify");
  b.countFilterAction("auth.jwt", "reject_401");
  WorkerReport ra, rb;
  ra.totals.add(a);
  ConnectionInfo live;
  live.route = "/chat";
  live.messages[0] = 5;
  live.messages[1] = 7;
  live.bytes[0] = 50;
  live.bytes[1] = 70;
  ra.totals.addLive(live);
  rb.totals.add(b);
  StatsTotals t;
  t.merge(ra.totals);
  t.merge(rb.totals);
  const RouteTotals& chat = t.routes.at("/chat");
  CHECK(chat.accepted == 2);
  CHECK(chat.active == 1);
  CHECK(chat.messages[0] == 7);
  CHECK(chat.messages[1] == 10);
  CHECK(chat.bytes[0] == 70);
  CHECK(chat.bytes[1] == 100);
  CHECK(t.clusters.at("echo").accepted == 2);
  CHECK(t.clusters.at("echo").active == 1);
  CHECK(t.clusters.at("echo").closed == std::map<uint16_t, uint64_t>{{1001, 1}});
  CHECK(t.filter_actions ==
        std::map<StatsTotals::Pair, uint64_t>{{{"auth.jwt", "reject_401"}, 1},
                                              {{"rate_limit", "notify"}, 2}});
  Parsed p = parsePrometheus(renderPrometheus(t));
  CHECK(p.errors.empty());
  CHECK(p.samples.at(R"(wsbridge_cluster_connections_active{cluster="echo"})") == 1);
  CHECK(p.samples.at(R"(wsbridge_cluster_connections_closed_total{cluster="echo",code="1001"})") ==
        1);
  CHECK(p.samples.at(R"(wsbridge_filter_actions_total{filter="rate_limit",action="notify"})") == 2);
  CHECK(p.samples.at(R"(wsbridge_messages_total{route="/chat",direction="to_client"})") == 10);
}

TEST_CASE("connections JSON lists the oldest first, up to the limit") {
  std::vector<ConnectionInfo> list(3);
  list[0].route = "/a";
  list[0].age_us = 10000;
  list[1].route = "/b";
  list[1].age_us = 30999;
  list[1].user = "alice";
  list[1].client = "127.0.0.1:5000";
  list[1].cluster = "echo";
  list[1].messages[0] = 4;
  list[1].bytes[1] = 9;
  list[2].route = "/c";
  list[2].age_us = 20000;
  CHECK(renderConnectionsJson(list, 1) ==
        R"({"total":3,"connections":[{"route":"/b","cluster":"echo","client":"127.0.0.1:5000",)"
        R"("user":"alice","age_ms":30,"messages":{"to_upstream":4,"to_client":0},)"
        R"("bytes":{"to_upstream":0,"to_client":9}}]})"
        "\n");
  std::string all = renderConnectionsJson(list, 100);
  CHECK(all.find("\"/b\"") < all.find("\"/c\""));
  CHECK(all.find("\"/c\"") < all.find("\"/a\""));
  CHECK(all.find(R"("user":null)") != std::string::npos);
}

TEST_CASE("prometheus label values escape backslash, quote and newline") {
  CHECK(escapeLabelValue("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
  WorkerStats w;
  w.route("/we\"ird\\path\n").countOpened();
  StatsTotals t;
  t.add(w);
  Parsed p = parsePrometheus(renderPrometheus(t));
  CHECK(p.errors.empty());
  CHECK(p.samples.at("wsbridge_connections_active{route=\"/we\"ird\\path\n\"}") == 1);
}

TEST_CASE("stats JSON lists routes, refusals and upstreams") {
  WorkerStats w;
  record(w, "/chat", 1000, 2, 3);
  w.countAccepted();
  w.countRefused(404);
  w.countConnectFailure("backend", "127.0.0.1:9000");
  StatsTotals t;
  t.add(w);
  t.health[{"backend", "127.0.0.1:9001"}] = EndpointHealth{true, true};
  CHECK(renderStatsJson(t) ==
        R"({"connections":{"tcp_accepted":1,"accepted":1,"active":0},)"
        R"("routes":{"/chat":{"accepted":1,"active":0,"closed":{"1000":1},)"
        R"("messages":{"to_upstream":2,"to_client":3},"bytes":{"to_upstream":20,"to_client":30}}},)"
        R"("handshakes_refused":{"404":1},"clusters":{},"events":{},"filter_actions":{},)"
        R"("relay_latency_ms":{"count":0,"avg":0.000,"p50":0.000,"p99":0.000},)"
        R"("upstreams":{"backend":{"127.0.0.1:9000":{"connect_failures":1,"reachable":null,)"
        R"("connect_ms":{"count":0,"avg":0.000,"p50":0.000,"p99":0.000}},)"
        R"("127.0.0.1:9001":{"connect_failures":0,"reachable":true,)"
        R"("connect_ms":{"count":0,"avg":0.000,"p50":0.000,"p99":0.000}}}}})");
}
