// Test doubles for filters: callbacks that record every call, a manual clock, manual timers, and
// helpers that build a filter's config table and handshake context from literals.
#pragma once

#include <toml++/toml.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codec/http1.h"
#include "config/config.h"
#include "filters/filter.h"

namespace wsb::filters::testing {

using namespace std::chrono_literals;

class ManualClock final : public Clock {
 public:
  TimePoint now() const override { return now_; }
  int64_t unixSeconds() const override {
    return unix_base_ + std::chrono::duration_cast<std::chrono::seconds>(now_ - start_).count();
  }
  void advance(Duration by) { now_ += by; }
  void setUnixSeconds(int64_t seconds) {
    unix_base_ = seconds;
    start_ = now_;
  }

 private:
  // Far from the epoch so that "now - interval" never underflows in the code under test.
  TimePoint start_ = TimePoint{} + std::chrono::hours(1000);
  TimePoint now_ = start_;
  int64_t unix_base_ = 1'700'000'000;
};

inline const char* sideName(Side side) { return side == Side::Client ? "client" : "upstream"; }

// Records each call both typed and as one line in `calls`, in order, so a test can assert the
// exact sequence ("close 1009 message too big").
class FakeCallbacks final : public FilterCallbacks {
 public:
  struct Rejection {
    int status;
    std::string message;
    http::Headers extra;
  };
  struct Closing {
    uint16_t code;
    std::string reason;
  };

  void reject(int status, std::string_view message, const http::Headers& extra) override {
    rejections.push_back({status, std::string(message), extra});
    std::string line = "reject " + std::to_string(status) + " " + std::string(message);
    for (const auto& h : extra) line += " [" + h.name + ": " + h.value + "]";
    calls.push_back(line);
  }
  void resumeHandshake() override { calls.push_back("resume"); }
  void consumeProtocols(std::vector<std::string> entries) override {
    consumed_protocols = std::move(entries);
  }
  void notify(Side toward, std::string_view notice) override {
    calls.push_back(std::string("notify ") + sideName(toward) + " " + std::string(notice));
  }
  void ackError(Side toward, const Event& event, std::string_view args_json) override {
    calls.push_back(std::string("ack ") + sideName(toward) + " " + std::string(event.name) + " " +
                    (event.ack ? std::to_string(*event.ack) : "-") + " " + std::string(args_json));
  }
  void close(uint16_t code, std::string_view reason) override {
    closings.push_back({code, std::string(reason)});
    calls.push_back("close " + std::to_string(code) + " " + std::string(reason));
  }
  bool ping(Side side) override {
    calls.push_back(std::string("ping ") + sideName(side));
    return pingable;
  }
  void pauseReading(Side side, Duration delay) override {
    calls.push_back(std::string("pause ") + sideName(side) + " " + std::to_string(delay.count()) +
                    "ms");
  }

  class ManualTimer final : public Timer {
   public:
    ManualTimer(FakeCallbacks& owner, std::function<void()> callback)
        : owner_(owner), callback_(std::move(callback)) {
      owner_.timers_.push_back(this);
    }
    ~ManualTimer() override {
      owner_.timers_.erase(std::find(owner_.timers_.begin(), owner_.timers_.end(), this));
    }
    void arm(Duration after) override {
      armed_ = true;
      deadline_ = owner_.clock_.now() + after;
    }
    void cancel() override { armed_ = false; }

   private:
    friend class FakeCallbacks;
    FakeCallbacks& owner_;
    std::function<void()> callback_;
    bool armed_ = false;
    TimePoint deadline_{};
  };

  std::unique_ptr<Timer> createTimer(std::function<void()> callback) override {
    return std::make_unique<ManualTimer>(*this, std::move(callback));
  }
  const Clock& clock() const override { return clock_; }
  Attributes& attributes() override { return attributes_; }

  // Moves time forward, firing due timers in deadline order at their own deadlines.
  void advance(Duration by) {
    TimePoint target = clock_.now() + by;
    for (;;) {
      ManualTimer* next = nullptr;
      for (ManualTimer* t : timers_) {
        if (t->armed_ && t->deadline_ <= target &&
            (next == nullptr || t->deadline_ < next->deadline_))
          next = t;
      }
      if (next == nullptr) break;
      if (next->deadline_ > clock_.now())
        clock_.advance(std::chrono::duration_cast<Duration>(next->deadline_ - clock_.now()));
      next->armed_ = false;
      next->callback_();
    }
    clock_.advance(std::chrono::duration_cast<Duration>(target - clock_.now()));
  }
  size_t armedTimers() const {
    return static_cast<size_t>(
        std::count_if(timers_.begin(), timers_.end(), [](ManualTimer* t) { return t->armed_; }));
  }

  // Returns the calls recorded so far and forgets them.
  std::vector<std::string> take() { return std::exchange(calls, {}); }

  ManualClock clock_;
  Attributes attributes_;
  std::vector<std::string> calls;
  bool pingable = true;  // what ping() answers: false for a side without a WebSocket
  std::vector<Rejection> rejections;
  std::vector<Closing> closings;
  std::vector<std::string> consumed_protocols;

 private:
  std::vector<ManualTimer*> timers_;
};

// A [filter.test] table parsed from `body` as if it were the file "test.toml": the table header
// is line 1, so the first line of `body` is line 2.
inline config::FilterSpec specFrom(std::string_view body, std::string name = "test") {
  std::string text = "[filter." + name + "]\n" + std::string(body);
  auto document = std::make_shared<toml::table>(
      toml::parse(std::string_view(text), std::string_view("test.toml")));
  const toml::table* table = (*document)["filter"][name].as_table();
  config::FilterSpec spec;
  spec.name = name;
  if (const auto* type = table->get_as<std::string>("type")) spec.type = type->get();
  spec.pos.file = "test.toml";
  spec.pos.line = 1;
  spec.pos.column = 1;
  spec.table = std::shared_ptr<const toml::table>(document, table);
  return spec;
}

// A request, a route and the headers a handshake context refers to, kept alive together.
struct Handshake {
  http::Request request;
  config::Route route;
  http::Headers upstream_headers;
  std::string client_ip = "192.0.2.7";
  std::string socketio_auth;
  bool socketio_client = false;

  Handshake() {
    request.method = "GET";
    request.target = "/chat";
    request.path = "/chat";
    route.path = "/chat";
  }
  Handshake& header(std::string name, std::string value) {
    request.headers.push_back({std::move(name), std::move(value)});
    return *this;
  }
  Handshake& query(std::string q) {
    request.query = q;
    request.target = request.path + "?" + q;
    return *this;
  }
  HandshakeContext context() {
    return HandshakeContext{request,          client_ip,       route,
                            upstream_headers, socketio_client, socketio_auth};
  }
};

inline Message textMessage(Direction direction, std::string_view payload) {
  return Message{direction, ws::Opcode::Text, payload};
}

inline Event event(Direction direction, std::string_view name, std::optional<uint64_t> ack = {},
                   size_t size = 0) {
  Event e;
  e.direction = direction;
  e.nsp = "/";
  e.name = name;
  e.ack = ack;
  e.size = size;
  e.args = [] { return std::string_view("[]"); };
  return e;
}

}  // namespace wsb::filters::testing
