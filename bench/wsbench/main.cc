// wsbench command line: parses the run, starts the workers, times the phases, prints the result.
#include <arpa/inet.h>
#include <event2/thread.h>
#include <sys/resource.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/wsbench/load.h"

namespace {

using wsb::bench::Flavour;
using wsb::bench::Mode;
using wsb::bench::Options;
using wsb::bench::Worker;

constexpr const char* kUsage =
    "usage: wsbench MODE [options] ws://HOST:PORT/PATH\n"
    "modes:\n"
    "  throughput  C connections each keep D messages of S bytes in flight; after the warm-up,\n"
    "              round trips per second, MB/s and latency percentiles over T seconds\n"
    "  idle        open C connections (R handshakes at a time), then hold them H seconds\n"
    "  connrate    C slots each upgrade, close and start over; completed cycles per second\n"
    "options:\n"
    "  -f, --flavour raw|socketio|envelope  raw WebSocket echo (default); Engine.IO v4 +\n"
    "                       Socket.IO v5 handshake and 42[\"echo\",..] events; envelope JSON\n"
    "                       {\"event\":\"echo\",\"data\":..}\n"
    "  -c, --connections C  connections (throughput, idle) or slots (connrate); default 50\n"
    "  -d, --depth D        messages in flight per connection; default 8\n"
    "  -s, --size S         payload bytes per message; default 64\n"
    "  -t, --duration T     seconds measured; default 10\n"
    "  -w, --warmup W       seconds before measuring; default 2\n"
    "      --hold H         idle: seconds to hold the connections; default 10\n"
    "      --text           raw flavour: text frames instead of binary\n"
    "  -j, --threads N      worker threads; default 1\n"
    "      --sources N      spread over source addresses 127.0.0.2..; 0 = none; default 16\n"
    "      --ramp R         handshakes in flight while opening; default 256\n"
    "      --connect-timeout S  give up when the connections are not all open; default 30\n"
    "      --ready-file P   idle: create P once every connection is open\n"
    "      --json           also print the result as one JSON line\n"
    "The socketio flavour's default path is /socket.io/?EIO=4&transport=websocket.\n"
    "Exit status: 0 when traffic flowed and nothing failed, 1 otherwise, 2 on bad usage.\n";

bool parseNumber(const char* text, double* out) {
  char* end = nullptr;
  *out = std::strtod(text, &end);
  return end != text && *end == '\0' && *out >= 0;
}

bool parseCount(const char* text, uint32_t* out) {
  char* end = nullptr;
  unsigned long value = std::strtoul(text, &end, 10);
  if (end == text || *end != '\0' || value > 10000000) return false;
  *out = static_cast<uint32_t>(value);
  return true;
}

bool parseUrl(const std::string& url, Options* options) {
  constexpr std::string_view kScheme = "ws://";
  if (url.rfind(kScheme, 0) != 0) return false;
  std::string rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  options->path = slash == std::string::npos ? "/" : rest.substr(slash);
  size_t colon = authority.rfind(':');
  if (colon == std::string::npos) return false;
  options->host = authority.substr(0, colon);
  uint32_t port = 0;
  if (!parseCount(authority.c_str() + colon + 1, &port) || port == 0 || port > 65535) return false;
  std::string ip = options->host == "localhost" ? "127.0.0.1" : options->host;
  options->target.sin_family = AF_INET;
  options->target.sin_port = htons(static_cast<uint16_t>(port));
  return inet_pton(AF_INET, ip.c_str(), &options->target.sin_addr) == 1;
}

int usageError(const std::string& what) {
  std::fprintf(stderr, "wsbench: %s\n\n%s", what.c_str(), kUsage);
  return 2;
}

int parseArgs(int argc, char** argv, Options* options) {
  bool have_mode = false;
  std::string url;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char** out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    const char* v = nullptr;
    bool ok = true;
    if (arg == "-c" || arg == "--connections") {
      ok = value(&v) && parseCount(v, &options->connections);
    } else if (arg == "-d" || arg == "--depth") {
      ok = value(&v) && parseCount(v, &options->depth);
    } else if (arg == "-s" || arg == "--size") {
      ok = value(&v) && parseCount(v, &options->size);
    } else if (arg == "-t" || arg == "--duration") {
      ok = value(&v) && parseNumber(v, &options->duration);
    } else if (arg == "-w" || arg == "--warmup") {
      ok = value(&v) && parseNumber(v, &options->warmup);
    } else if (arg == "--hold") {
      ok = value(&v) && parseNumber(v, &options->hold);
    } else if (arg == "--connect-timeout") {
      ok = value(&v) && parseNumber(v, &options->connect_timeout);
    } else if (arg == "-j" || arg == "--threads") {
      ok = value(&v) && parseCount(v, &options->threads);
    } else if (arg == "--sources") {
      ok = value(&v) && parseCount(v, &options->sources);
    } else if (arg == "--ramp") {
      ok = value(&v) && parseCount(v, &options->ramp);
    } else if (arg == "--ready-file") {
      ok = value(&v);
      if (ok) options->ready_file = v;
    } else if (arg == "-f" || arg == "--flavour" || arg == "--flavor") {
      ok = value(&v);
      std::string f = ok ? v : "";
      if (f == "raw") {
        options->flavour = Flavour::Raw;
      } else if (f == "socketio") {
        options->flavour = Flavour::SocketIO;
      } else if (f == "envelope") {
        options->flavour = Flavour::Envelope;
      } else {
        return usageError("unknown flavour '" + f + "'");
      }
    } else if (arg == "--text") {
      options->text = true;
    } else if (arg == "--json") {
      options->json = true;
    } else if (arg == "-h" || arg == "--help") {
      std::printf("%s", kUsage);
      std::exit(0);
    } else if (!have_mode && (arg == "throughput" || arg == "idle" || arg == "connrate")) {
      have_mode = true;
      options->mode = arg == "throughput" ? Mode::Throughput
                      : arg == "idle"     ? Mode::Idle
                                          : Mode::ConnRate;
    } else if (arg.rfind("ws://", 0) == 0 && url.empty()) {
      url = arg;
    } else {
      return usageError("unexpected argument '" + arg + "'");
    }
    if (!ok) return usageError("bad or missing value for " + arg);
  }
  if (!have_mode) return usageError("missing MODE (throughput, idle or connrate)");
  if (url.empty()) return usageError("missing ws://HOST:PORT/PATH");
  if (!parseUrl(url, options)) return usageError("cannot use URL '" + url + "' (IPv4 ws:// only)");
  if (options->flavour == Flavour::SocketIO && options->path == "/") {
    options->path = "/socket.io/?EIO=4&transport=websocket";
  }
  if (options->connections == 0) return usageError("--connections must be at least 1");
  if (options->depth == 0 || options->depth > 1024) return usageError("--depth must be 1..1024");
  if (options->threads == 0 || options->threads > 64) return usageError("--threads must be 1..64");
  if (options->threads > options->connections) options->threads = options->connections;
  if (options->sources > 250) return usageError("--sources must be 0..250");
  if (options->ramp == 0) return usageError("--ramp must be at least 1");
  if (options->duration <= 0 && options->mode != Mode::Idle) {
    return usageError("--duration must be positive");
  }
  // Source addresses only make sense toward loopback.
  if ((ntohl(options->target.sin_addr.s_addr) >> 24) != 127) options->sources = 0;
  return 0;
}

void raiseFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

const char* modeName(Mode mode) {
  switch (mode) {
    case Mode::Throughput:
      return "throughput";
    case Mode::Idle:
      return "idle";
    case Mode::ConnRate:
      return "connrate";
  }
  return "?";
}

const char* flavourName(Flavour flavour) {
  switch (flavour) {
    case Flavour::Raw:
      return "raw";
    case Flavour::SocketIO:
      return "socketio";
    case Flavour::Envelope:
      return "envelope";
  }
  return "?";
}

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void sleepSeconds(double seconds) {
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

struct Totals {
  uint64_t round_trips = 0;
  uint64_t payload_bytes = 0;
  uint64_t established = 0;
  uint64_t completed = 0;
  uint64_t failed = 0;
  uint64_t mismatched = 0;
};

Totals sum(const std::vector<std::unique_ptr<Worker>>& workers) {
  Totals t;
  for (const auto& w : workers) {
    t.round_trips += w->counters.round_trips.load(std::memory_order_relaxed);
    t.payload_bytes += w->counters.payload_bytes.load(std::memory_order_relaxed);
    t.established += w->counters.established.load(std::memory_order_relaxed);
    t.completed += w->counters.completed.load(std::memory_order_relaxed);
    t.failed += w->counters.failed.load(std::memory_order_relaxed);
    t.mismatched += w->counters.mismatched.load(std::memory_order_relaxed);
  }
  return t;
}

// Waits until every connection is open or has failed; false on timeout.
bool waitForRamp(const std::vector<std::unique_ptr<Worker>>& workers, const Options& options,
                 Clock::time_point start) {
  for (;;) {
    Totals t = sum(workers);
    if (t.established + t.failed >= options.connections) return true;
    if (secondsSince(start) > options.connect_timeout) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (int rc = parseArgs(argc, argv, &options); rc != 0) return rc;
  raiseFileLimit();
  evthread_use_pthreads();

  std::atomic<bool> measuring{false};
  std::vector<std::unique_ptr<Worker>> workers;
  uint32_t first = 0;
  for (uint32_t i = 0; i < options.threads; ++i) {
    uint32_t count =
        options.connections / options.threads + (i < options.connections % options.threads ? 1 : 0);
    workers.push_back(std::make_unique<Worker>(options, i, count, first, &measuring));
    first += count;
  }
  Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
  auto stopAll = [&] {
    for (auto& w : workers) w->stop();
    for (auto& t : threads) t.join();
  };

  const char* mode = modeName(options.mode);
  const char* flavour = flavourName(options.flavour);
  bool ok = true;
  std::string line;
  std::string json;
  char buf[1024];

  if (options.mode == Mode::ConnRate) {
    sleepSeconds(options.warmup);
    Totals before = sum(workers);
    Clock::time_point t0 = Clock::now();
    sleepSeconds(options.duration);
    Totals after = sum(workers);
    double seconds = secondsSince(t0);
    stopAll();
    uint64_t completed = after.completed - before.completed;
    double rate = static_cast<double>(completed) / seconds;
    ok = completed > 0 && after.mismatched == 0;
    std::snprintf(buf, sizeof(buf),
                  "connrate %s: %u in flight, %.1f s: %.0f connections/s (upgrade and close), "
                  "failed %" PRIu64,
                  flavour, options.connections, seconds, rate, after.failed);
    line = buf;
    std::snprintf(buf, sizeof(buf),
                  "{\"mode\":\"%s\",\"flavour\":\"%s\",\"concurrency\":%u,\"seconds\":%.3f,"
                  "\"completed\":%" PRIu64 ",\"conns_per_s\":%.1f,\"failed\":%" PRIu64
                  ",\"mismatched\":%" PRIu64 ",\"ok\":%s}",
                  mode, flavour, options.connections, seconds, completed, rate, after.failed,
                  after.mismatched, ok ? "true" : "false");
    json = buf;
  } else {
    bool all_open = waitForRamp(workers, options, start);
    double ramp_s = secondsSince(start);
    Totals opened = sum(workers);
    if (!all_open || opened.failed > 0) {
      ok = false;
    }
    if (options.mode == Mode::Idle) {
      if (ok && !options.ready_file.empty())
        std::ofstream(options.ready_file) << opened.established;
      std::fprintf(stderr, "wsbench: %" PRIu64 " of %u connections open after %.2f s%s\n",
                   opened.established, options.connections, ramp_s, ok ? "; holding" : "");
      if (ok) sleepSeconds(options.hold);
      Totals after = sum(workers);
      stopAll();
      uint64_t lost = after.failed - opened.failed;
      ok = ok && lost == 0 && after.established == options.connections;
      double rate = static_cast<double>(opened.established) / ramp_s;
      std::snprintf(buf, sizeof(buf),
                    "idle %s: %" PRIu64
                    "/%u connections open in %.2f s (%.0f/s), held %.1f s, "
                    "lost %" PRIu64 ", failed %" PRIu64,
                    flavour, opened.established, options.connections, ramp_s, rate, options.hold,
                    lost, after.failed);
      line = buf;
      std::snprintf(
          buf, sizeof(buf),
          "{\"mode\":\"%s\",\"flavour\":\"%s\",\"connections\":%u,\"established\":%" PRIu64
          ",\"ramp_s\":%.3f,\"connects_per_s\":%.1f,\"hold_s\":%.1f,\"lost\":%" PRIu64
          ",\"failed\":%" PRIu64 ",\"ok\":%s}",
          mode, flavour, options.connections, opened.established, ramp_s, rate, options.hold, lost,
          after.failed, ok ? "true" : "false");
      json = buf;
    } else {
      Totals before{};
      Totals after{};
      double seconds = 0;
      if (ok) {
        sleepSeconds(options.warmup);
        before = sum(workers);
        measuring.store(true);
        Clock::time_point t0 = Clock::now();
        sleepSeconds(options.duration);
        after = sum(workers);
        seconds = secondsSince(t0);
        measuring.store(false);
      } else {
        after = opened;
      }
      stopAll();
      wsb::bench::Histogram histogram;
      for (const auto& w : workers) histogram.merge(w->histogram());
      uint64_t trips = after.round_trips - before.round_trips;
      double rate = seconds > 0 ? static_cast<double>(trips) / seconds : 0;
      double mbps = seconds > 0 ? static_cast<double>(after.payload_bytes - before.payload_bytes) /
                                      seconds / 1e6
                                : 0;
      ok = ok && trips > 0 && after.failed == 0 && after.mismatched == 0;
      auto us = [&](double percent) {
        return static_cast<double>(histogram.percentile(percent)) / 1e3;
      };
      double max_us = static_cast<double>(histogram.max()) / 1e3;
      std::snprintf(buf, sizeof(buf),
                    "throughput %s: %u conns x %u in flight x %u B, %.1f s: %.0f msgs/s, "
                    "%.2f MB/s, latency ms p50 %.3f p90 %.3f p99 %.3f p99.9 %.3f max %.3f; "
                    "failed %" PRIu64 ", mismatched %" PRIu64,
                    flavour, options.connections, options.depth, options.size, seconds, rate, mbps,
                    us(50) / 1e3, us(90) / 1e3, us(99) / 1e3, us(99.9) / 1e3, max_us / 1e3,
                    after.failed, after.mismatched);
      line = buf;
      std::snprintf(buf, sizeof(buf),
                    "{\"mode\":\"%s\",\"flavour\":\"%s\",\"connections\":%u,\"depth\":%u,"
                    "\"size\":%u,\"seconds\":%.3f,\"round_trips\":%" PRIu64
                    ",\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,\"latency_us\":{\"p50\":%.1f,"
                    "\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f},\"established\":%" PRIu64
                    ",\"ramp_s\":%.3f,\"failed\":%" PRIu64 ",\"mismatched\":%" PRIu64 ",\"ok\":%s}",
                    mode, flavour, options.connections, options.depth, options.size, seconds, trips,
                    rate, mbps, us(50), us(90), us(99), us(99.9), max_us, opened.established,
                    ramp_s, after.failed, after.mismatched, ok ? "true" : "false");
      json = buf;
    }
  }

  std::printf("%s\n", line.c_str());
  if (options.json) std::printf("%s\n", json.c_str());
  std::fflush(stdout);
  for (const auto& w : workers) {
    if (!w->firstError().empty()) {
      std::fprintf(stderr, "wsbench: first error: %s\n", w->firstError().c_str());
      break;
    }
  }
  return ok ? 0 : 1;
}
