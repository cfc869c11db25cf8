// FilterChain: the one place that walks filters.
#include "filters/chain.h"

namespace wsb::filters {

const SystemClock& SystemClock::instance() {
  static const SystemClock clock;
  return clock;
}

FilterChain::FilterChain(const std::vector<FactoryPtr>& factories, FilterCallbacks& callbacks) {
  filters_.reserve(factories.size());
  for (const auto& factory : factories) filters_.push_back(factory->create(callbacks));
}

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
