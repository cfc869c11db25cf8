// Runs a route's filters in order for one connection and remembers where a stopped handshake
// resumes.
#pragma once

#include <memory>
#include <vector>

#include "filters/filter.h"

namespace wsb::filters {

class FilterChain {
 public:
  FilterChain(const std::vector<FactoryPtr>& factories, FilterCallbacks& callbacks);
  ~FilterChain();

  bool empty() const { return filters_.empty(); }

  // Continue: every filter passed. Stop: a filter stopped (it resumes through
  // FilterCallbacks::resumeHandshake -> resumeHandshake() here) or rejected.
  Status runHandshake(HandshakeContext& context);
  // Runs the filters after the one that stopped.
  Status resumeHandshake(HandshakeContext& context);

  void onEstablished();
  // Continue or Drop; the first filter that drops ends the walk.
  Status onMessage(Message& message);
  Status onEvent(Event& event);
  // Continue, or Stop when a filter refused the Socket.IO CONNECT.
  Status onConnect(HandshakeContext& context);
  void onPong(Side side);
  void onClose(const CloseInfo& info);
  // Inside a FilterCallbacks call made by a filter: that filter's position in the chain (so the
  // connection can attribute the action, e.g. in the stats).
  size_t acting() const { return acting_; }

 private:
  class Attributed;  // the callbacks one filter sees: marks it acting, then forwards
  Status runHandshakeFrom(size_t index, HandshakeContext& context);

  std::vector<std::unique_ptr<Attributed>> callbacks_;  // outlive the filters using them
  std::vector<std::unique_ptr<Filter>> filters_;
  size_t stopped_at_ = 0;
  bool closed_ = false;
  size_t acting_ = 0;
};

}  // namespace wsb::filters
