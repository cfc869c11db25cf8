// FilterChain: the one place that walks filters.
#include "filters/chain.h"

namespace wsb::filters {

const SystemClock& SystemClock::instance() {
  static const SystemClock clock;
  return clock;
}

class FilterChain::Attributed final : public FilterCallbacks {
 public:
  Attributed(FilterChain& chain, FilterCallbacks& target, size_t index)
      : chain_(chain), target_(target), index_(index) {}

  void reject(int status, std::string_view message, const http::Headers& extra) override {
    act().reject(status, message, extra);
  }
  void resumeHandshake() override { act().resumeHandshake(); }
  void consumeProtocols(std::vector<std::string> entries) override {
    target_.consumeProtocols(std::move(entries));
  }
  void notify(Side toward, std::string_view notice) override { act().notify(toward, notice); }
  void ackError(Side toward, const Event& event, std::string_view args_json) override {
    act().ackError(toward, event, args_json);
  }
  void close(uint16_t code, std::string_view reason) override { act().close(code, reason); }
  bool ping(Side side) override { return act().ping(side); }
  void pauseReading(Side side, Duration delay) override { act().pauseReading(side, delay); }
  std::unique_ptr<Timer> createTimer(std::function<void()> callback) override {
    return target_.createTimer(std::move(callback));
  }
  const Clock& clock() const override { return target_.clock(); }
  Attributes& attributes() override { return target_.attributes(); }

 private:
  FilterCallbacks& act() {
    chain_.acting_ = index_;
    return target_;
  }
  FilterChain& chain_;
  FilterCallbacks& target_;
  size_t index_;
};

FilterChain::FilterChain(const std::vector<FactoryPtr>& factories, FilterCallbacks& callbacks) {
  filters_.reserve(factories.size());
  for (size_t i = 0; i < factories.size(); ++i) {
    callbacks_.push_back(std::make_unique<Attributed>(*this, callbacks, i));
    filters_.push_back(factories[i]->create(*callbacks_.back()));
  }
}

FilterChain::~FilterChain() = default;

Status FilterChain::runHandshake(HandshakeContext& context) { return runHandshakeFrom(0, context); }

Status FilterChain::resumeHandshake(HandshakeContext& context) {
  return runHandshakeFrom(stopped_at_ + 1, context);
}

Status FilterChain::runHandshakeFrom(size_t index, HandshakeContext& context) {
  for (size_t i = index; i < filters_.size(); ++i) {
    if (filters_[i]->onHandshake(context) == Status::Stop) {
      stopped_at_ = i;
      return Status::Stop;
    }
  }
  return Status::Continue;
}

void FilterChain::onEstablished() {
  for (auto& f : filters_) f->onEstablished();
}

Status FilterChain::onMessage(Message& message) {
  for (auto& f : filters_) {
    if (f->onMessage(message) != Status::Continue) return Status::Drop;
  }
  return Status::Continue;
}

Status FilterChain::onEvent(Event& event) {
  for (auto& f : filters_) {
    if (f->onEvent(event) != Status::Continue) return Status::Drop;
  }
  return Status::Continue;
}

Status FilterChain::onConnect(HandshakeContext& context) {
  for (auto& f : filters_) {
    if (f->onConnect(context) == Status::Stop) return Status::Stop;
  }
  return Status::Continue;
}

void FilterChain::onPong(Side side) {
  for (auto& f : filters_) f->onPong(side);
}

void FilterChain::onClose(const CloseInfo& info) {
  if (closed_) return;
  closed_ = true;
  for (auto& f : filters_) f->onClose(info);
}

}  // namespace wsb::filters
