// FilterChain: every callback a filter makes reaches the connection with that filter marked as
// acting (the stats attribute filter actions by it), from a hook or later from a timer.
#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "filters/chain.h"

using namespace wsb::filters;

namespace {

// A filter that notifies from onMessage when told to, and closes when its test calls later().
class ProbeFilter final : public Filter {
 public:
  ProbeFilter(FilterCallbacks& callbacks, bool notifies)
      : callbacks_(callbacks), notifies_(notifies) {}
  Status onMessage(Message&) override {
    if (notifies_) callbacks_.notify(Side::Client, "hello");
    return Status::Continue;
  }
  void later() { callbacks_.close(1008, "policy"); }

 private:
  FilterCallbacks& callbacks_;
  bool notifies_;
};

class ProbeFactory final : public FilterFactory {
 public:
  ProbeFactory(bool notifies, std::vector<ProbeFilter*>* made)
      : notifies_(notifies), made_(made) {}
  std::unique_ptr<Filter> create(FilterCallbacks& callbacks) const override {
    auto filter = std::make_unique<ProbeFilter>(callbacks, notifies_);
    made_->push_back(filter.get());
    return filter;
  }

 private:
  bool notifies_;
  std::vector<ProbeFilter*>* made_;
};

// Records, for each action, which filter the chain says is acting.
class ActingRecorder final : public FilterCallbacks {
 public:
  const FilterChain* chain = nullptr;
  std::vector<std::string> seen;

  void reject(int, std::string_view, const wsb::http::Headers&) override { note("reject"); }
  void resumeHandshake() override { note("resume"); }
  void notify(Side, std::string_view) override { note("notify"); }
  void ackError(Side, const Event&, std::string_view) override { note("ack"); }
  void close(uint16_t, std::string_view) override { note("close"); }
  bool ping(Side) override {
    note("ping");
    return true;
  }
  void pauseReading(Side, Duration) override { note("pause"); }
  std::unique_ptr<Timer> createTimer(std::function<void()>) override { return nullptr; }
  const Clock& clock() const override { return SystemClock::instance(); }
  Attributes& attributes() override { return attributes_; }

 private:
  void note(const char* what) {
    seen.push_back(std::string(what) + " by " + std::to_string(chain->acting()));
  }
  Attributes attributes_;
};

}  // namespace

TEST_CASE("each filter's callbacks name it as the acting filter") {
  std::vector<ProbeFilter*> made;
  std::vector<FactoryPtr> factories{std::make_shared<ProbeFactory>(false, &made),
                                    std::make_shared<ProbeFactory>(true, &made),
                                    std::make_shared<ProbeFactory>(false, &made)};
  ActingRecorder recorder;
  FilterChain chain(factories, recorder);
  recorder.chain = &chain;
  REQUIRE(made.size() == 3);

  Message message{Direction::ToUpstream, wsb::ws::Opcode::Text, "hi"};
  CHECK(chain.onMessage(message) == Status::Continue);
  made[2]->later();  // as from a timer, after the chain walked on
  made[0]->later();
  CHECK(recorder.seen == std::vector<std::string>{"notify by 1", "close by 2", "close by 0"});
}
