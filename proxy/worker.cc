// Worker: accept loop and connection registry of one thread.
#include "proxy/worker.h"

#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>

#include <cstring>

#include "proxy/session.h"
#include "proxy/translate_down.h"

namespace wsb::proxy {

namespace {
bool toSockaddr(const config::Address& address, sockaddr_storage* out, socklen_t* len) {
  std::memset(out, 0, sizeof *out);
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, address.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(address.port);
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  std::string host = address.host;
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(address.port);
    *len = sizeof(sockaddr_in6);
    return true;
  }
  if (host == "localhost") {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(address.port);
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *len = sizeof(sockaddr_in);
    return true;
  }
  if (host.empty() || host == "*") {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(address.port);
    v4->sin_addr.s_addr = htonl(INADDR_ANY);
    *len = sizeof(sockaddr_in);
    return true;
  }
  return false;
}

std::string peerAddress(const sockaddr* addr, uint16_t* port) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (addr->sa_family == AF_INET) {
    auto* v4 = reinterpret_cast<const sockaddr_in*>(addr);
    inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf);
    *port = ntohs(v4->sin_port);
  } else if (addr->sa_family == AF_INET6) {
    auto* v6 = reinterpret_cast<const sockaddr_in6*>(addr);
    inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
    *port = ntohs(v6->sin6_port);
  }
  return buf;
}
}  // namespace

Worker::Worker(int index, SnapshotPtr snapshot) : index_(index), snapshot_(std::move(snapshot)) {}

Worker::~Worker() {
  join();
  closeListeners();
}

bool Worker::bind(std::string* error) {
  bound_snapshot_ = snapshot_;
  for (const auto& runtime : bound_snapshot_->listeners()) {
    sockaddr_storage addr;
    socklen_t len;
    if (!toSockaddr(runtime.config->address, &addr, &len)) {
      *error = runtime.config->pos.str() + ": listener '" + runtime.config->name +
               "': address must be a numeric IP (or localhost): " + runtime.config->address.str();
      return false;
    }
    auto listening = std::make_unique<Listening>();
    listening->runtime = &runtime;
    listening->worker = this;
    listening->listener = evconnlistener_new_bind(
        dispatcher_.base(), &Worker::onAccept, listening.get(),
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC,
        1024, reinterpret_cast<sockaddr*>(&addr), static_cast<int>(len));
    if (listening->listener == nullptr) {
      *error = runtime.config->pos.str() + ": listener '" + runtime.config->name +
               "': cannot listen on " + runtime.config->address.str() + ": " + std::strerror(errno);
      return false;
    }
    listening_.push_back(std::move(listening));
  }
  return true;
}

void Worker::start() {
  thread_ = std::thread([this] { dispatcher_.run(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::setSnapshot(SnapshotPtr snapshot) {
  dispatcher_.post([this, snapshot = std::move(snapshot)]() mutable {
    snapshot_ = std::move(snapshot);
  });
}

void Worker::drain(Duration timeout) {
  dispatcher_.post([this, timeout] {
    if (draining_) return;
    draining_ = true;
    closeListeners();
    // Copy: drain() may remove sessions from the set.
    std::vector<Session*> live(sessions_.begin(), sessions_.end());
    for (Session* s : live) s->drain();
    drainTranslateDown(*this);  // Engine.IO sessions of translate-down routes live outside sessions_
    drain_timer_ = std::make_unique<Timer>(dispatcher_, [this] {
      spdlog::warn("worker {}: drain timeout with {} connections left; closing them", index_,
                   sessions_.size());
      std::vector<Session*> left(sessions_.begin(), sessions_.end());
      for (Session* s : left) s->abort();
      dispatcher_.exit();
    });
    drain_timer_->arm(timeout);
    maybeFinishDrain();
  });
}

void Worker::report(std::function<void(WorkerReport)> done) {
  dispatcher_.post([this, done = std::move(done)] {
    WorkerReport report;
    report.totals.add(stats_);
    for (const Session* s : sessions_) {
      ConnectionInfo info;
      if (!s->describe(&info)) continue;
      report.totals.addLive(info);
      report.connections.push_back(std::move(info));
    }
    done(std::move(report));
  });
}

void Worker::remove(Session* session) {
  sessions_.erase(session);
  if (draining_) maybeFinishDrain();
}

void Worker::maybeFinishDrain() {
  if (draining_ && sessions_.empty()) dispatcher_.exit();
}

void Worker::closeListeners() {
  for (auto& l : listening_) {
    if (l->listener != nullptr) evconnlistener_free(l->listener);
    l->listener = nullptr;
  }
}

void Worker::onAccept(evconnlistener*, int fd, sockaddr* addr, int, void* self) {
  auto* listening = static_cast<Listening*>(self);
  Worker* worker = listening->worker;
  worker->stats_.countAccepted();
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  uint16_t port = 0;
  std::string ip = peerAddress(addr, &port);
  // The listener runtime belongs to the snapshot the listener was bound with; routes come from
  // the worker's current snapshot, looked up by listener name.
  auto* session = new Session(*worker, worker->snapshot_, *listening->runtime, fd, std::move(ip), port);
  worker->add(session);
  session->start();
}

}  // namespace wsb::proxy
