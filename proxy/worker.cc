// Worker: accept loop and connection registry of one thread.
#include "proxy/worker.h"

#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "codec/http1.h"
#include "proxy/redis_leases.h"
#include "proxy/session.h"
#include "proxy/translate_down.h"
#include "proxy/upstream.h"

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

Worker::Worker(int index, SnapshotPtr snapshot, HandshakeCounts& handshakes)
    : index_(index), snapshot_(std::move(snapshot)), handshakes_(handshakes) {}

Worker::~Worker() {
  join();
  closeListeners();
}

namespace {
// A listening socket with SO_REUSEPORT, so every worker binds the same address.
int openListenSocket(const ListenerRuntime& runtime, std::string* error) {
  const config::Listener& l = *runtime.config;
  sockaddr_storage addr;
  socklen_t len;
  if (!toSockaddr(l.address, &addr, &len)) {
    *error = l.pos.str() + ": listener '" + l.name +
             "': address must be a numeric IP (or localhost): " + l.address.str();
    return -1;
  }
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 1024) != 0) {
    *error = l.pos.str() + ": listener '" + l.name + "': cannot listen on " + l.address.str() +
             ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}
}  // namespace

Worker::ListenerKey Worker::keyOf(const ListenerRuntime& runtime) {
  return {runtime.config->name, runtime.config->address.str()};
}

bool Worker::bind(std::string* error) {
  for (const auto& runtime : snapshot_->listeners()) {
    int fd = openListenSocket(runtime, error);
    if (fd < 0) return false;
    listen(runtime, fd);
    bound_.insert(keyOf(runtime));
  }
  return true;
}

void Worker::listen(const ListenerRuntime& runtime, int fd) {
  auto listening = std::make_unique<Listening>();
  listening->runtime = &runtime;
  listening->worker = this;
  // Backlog 0: the socket listens already.
  listening->listener = evconnlistener_new(dispatcher_.base(), &Worker::onAccept, listening.get(),
                                           LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
  if (listening->listener != nullptr) {
    evconnlistener_set_error_cb(listening->listener, &Worker::onAcceptError);
    Listening* l = listening.get();
    listening->resume = std::make_unique<Timer>(dispatcher_, [l] {
      if (l->listener != nullptr) evconnlistener_enable(l->listener);
    });
  }
  listening_.push_back(std::move(listening));
}

bool Worker::prepareListeners(const Snapshot& next, PreparedListeners* out,
                              std::string* error) const {
  for (const auto& runtime : next.listeners()) {
    ListenerKey key = keyOf(runtime);
    if (bound_.count(key) != 0) continue;
    int fd = openListenSocket(runtime, error);
    if (fd < 0) {
      closePrepared(*out);
      out->clear();
      return false;
    }
    (*out)[key] = fd;
  }
  return true;
}

void Worker::closePrepared(const PreparedListeners& prepared) {
  for (const auto& [key, fd] : prepared) ::close(fd);
}

void Worker::start() {
  thread_ = std::thread([this] {
    // Redis-backed rate-limit stores live on this loop, and end with it.
    WorkerSharedStores shared(dispatcher_, &stats_);
    filters::SharedStores::setCurrent(&shared);
    dispatcher_.run();
    filters::SharedStores::setCurrent(nullptr);
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::setSnapshot(SnapshotPtr snapshot, PreparedListeners prepared) {
  bound_.clear();
  for (const auto& runtime : snapshot->listeners()) bound_.insert(keyOf(runtime));
  dispatcher_.post([this, snapshot = std::move(snapshot), prepared = std::move(prepared)] {
    SnapshotPtr old = std::move(snapshot_);  // the listeners' runtimes live in it until then
    snapshot_ = snapshot;
    applyListeners(prepared);
  });
}

// Worker thread: the listeners follow snapshot_. Kept ones point at its runtimes (TLS context
// included), removed ones close (their accepted connections stay), new ones take their sockets.
void Worker::applyListeners(PreparedListeners prepared) {
  if (draining_) {
    closePrepared(prepared);
    return;
  }
  std::map<ListenerKey, const ListenerRuntime*> wanted;
  for (const auto& runtime : snapshot_->listeners()) wanted[keyOf(runtime)] = &runtime;
  std::vector<std::unique_ptr<Listening>> kept;
  for (auto& l : listening_) {
    auto it = l->listener != nullptr ? wanted.find(keyOf(*l->runtime)) : wanted.end();
    if (it == wanted.end()) {
      if (l->listener != nullptr) evconnlistener_free(l->listener);
      continue;
    }
    l->runtime = it->second;
    wanted.erase(it);
    kept.push_back(std::move(l));
  }
  listening_ = std::move(kept);
  for (const auto& [key, fd] : prepared) {
    auto it = wanted.find(key);
    if (it != wanted.end()) {
      listen(*it->second, fd);
    } else {
      ::close(fd);
    }
  }
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
    // Engine.IO sessions wsbridge serves itself (translate down, the v3 adapter).
    for (ConnectionInfo& info : LiveObjects::instance().connectionsOf(&dispatcher_)) {
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

void Worker::onAcceptError(evconnlistener* listener, void* self) {
  const int error = EVUTIL_SOCKET_ERROR();
  auto* listening = static_cast<Listening*>(self);
  Worker* worker = listening->worker;
  const bool exhausted =
      error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
  worker->stats_.countAcceptError(exhausted ? "no_descriptors" : "other");
  if (exhausted) {
    // The pending connection stays in the backlog; try again once some have closed.
    evconnlistener_disable(listener);
    listening->resume->arm(Duration(100));
  }
  ++worker->accept_errors_unlogged_;
  const auto now = std::chrono::steady_clock::now();
  if (now - worker->accept_error_logged_ >= std::chrono::seconds(1)) {
    spdlog::warn("listener {}: accept() failed {} time(s) in the last second: {}{}",
                 listening->runtime->config->name, worker->accept_errors_unlogged_,
                 evutil_socket_error_to_string(error),
                 exhausted ? " (paused 100 ms; raise the descriptor limit or lower the limits)"
                           : "");
    worker->accept_errors_unlogged_ = 0;
    worker->accept_error_logged_ = now;
  }
}

void Worker::onAccept(evconnlistener*, int fd, sockaddr* addr, int, void* self) {
  auto* listening = static_cast<Listening*>(self);
  Worker* worker = listening->worker;
  worker->stats_.countAccepted();
  uint16_t port = 0;
  std::string ip = peerAddress(addr, &port);
  const config::Listener& config = *listening->runtime->config;
  std::optional<HandshakeSlot> slot =
      worker->handshakes_.admit(config.name, sourceKey(addr), config.max_handshakes_per_ip);
  if (!slot) {
    worker->refuseHandshake(*listening, fd, ip);
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // The listener runtime belongs to the worker's current snapshot, which the session holds.
  auto* session = new Session(*worker, worker->snapshot_, *listening->runtime, fd, std::move(ip),
                              port, std::move(*slot));
  worker->add(session);
  session->start();
}

void Worker::refuseHandshake(const Listening& listening, int fd, const std::string& ip) {
  stats_.countAcceptError("handshakes_per_ip");
  const config::Listener& config = *listening.runtime->config;
  if (!listening.runtime->tls) {
    // One non-blocking write into an empty socket buffer, so a client behind a busy NAT hears
    // why. What the client sent already is read first (a bounded amount): close() with unread
    // input sends RST, which may discard the answer before the client reads it.
    static const std::string kRefusal = http::errorResponse(
        429, "{\"error\":\"too many connections in the handshake from this address\"}",
        {{"Retry-After", "1"}});
    char scratch[4096];
    for (int i = 0; i < 4 && ::recv(fd, scratch, sizeof scratch, MSG_DONTWAIT) > 0; ++i) {
    }
    static_cast<void>(::send(fd, kRefusal.data(), kRefusal.size(), MSG_DONTWAIT | MSG_NOSIGNAL));
  }
  ::close(fd);
  ++handshake_refusals_unlogged_;
  refused_listener_ = config.name;
  refused_ip_ = ip;
  refused_cap_ = config.max_handshakes_per_ip;
  // The first refusal after a quiet second is logged at once; the rest of a burst in one line
  // when the second is up, so a flood costs one line a second and its count is never lost.
  const auto now = std::chrono::steady_clock::now();
  const auto next = handshake_refusal_logged_ + std::chrono::seconds(1);
  if (now >= next) {
    logHandshakeRefusals();
    return;
  }
  if (!refusal_log_timer_) {
    refusal_log_timer_ = std::make_unique<Timer>(dispatcher_, [this] { logHandshakeRefusals(); });
  }
  if (!refusal_log_timer_->armed()) {
    refusal_log_timer_->arm(std::chrono::ceil<Duration>(next - now));
  }
}

void Worker::logHandshakeRefusals() {
  if (handshake_refusals_unlogged_ == 0) return;
  spdlog::warn("listener {}: refused {} connection(s) at accept in the last second: the source "
               "had max_handshakes_per_ip ({}) connections in the handshake already (last from "
               "{})",
               refused_listener_, handshake_refusals_unlogged_, refused_cap_, refused_ip_);
  handshake_refusals_unlogged_ = 0;
  handshake_refusal_logged_ = std::chrono::steady_clock::now();
}

}  // namespace wsb::proxy
