// A small, fast WebSocket echo server for benchmarks, with a --socketio mode that speaks just
// enough Engine.IO v4 / Socket.IO v5 over the websocket transport to echo 42["echo",x] events.
#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "codec/http1.h"
#include "codec/ws_frame.h"

namespace {

using wsb::ws::Opcode;

constexpr size_t kScratchSize = 256 * 1024;
constexpr int kMaxReadsPerEvent = 4;
constexpr size_t kPauseAbove = 4 << 20;  // stop reading a peer that does not read its echoes
constexpr int kPingIntervalMs = 25000;

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 9000;
  unsigned threads = 1;
  bool socketio = false;
};

class Loop;

struct Conn {
  Loop* loop = nullptr;
  int fd = -1;
  event rev{};
  event wev{};
  bool write_armed = false;
  bool reading = true;
  bool upgraded = false;
  bool closing = false;  // close frame sent: close the socket once the output is out
  std::unique_ptr<wsb::http::RequestParser> request;
  wsb::ws::FrameParser<wsb::ws::Role::Server> parser;
  std::vector<uint8_t> pending;
  size_t pending_off = 0;
  // The message being received: a view into the read buffer while it lies in one piece.
  Opcode op = Opcode::Binary;
  const uint8_t* piece = nullptr;
  size_t piece_len = 0;
  bool copied = false;
  std::string message;
  std::string sid;
  Conn* prev = nullptr;  // Socket.IO connections, for the ping sweep
  Conn* next = nullptr;
};

class Loop {
 public:
  Loop(const Options& options, unsigned index, int listen_fd)
      : options_(options), index_(index), listen_fd_(listen_fd), scratch_(kScratchSize) {
    base_ = event_base_new();
    event_assign(&accept_ev_, base_, listen_fd_, EV_READ | EV_PERSIST, onAccept, this);
    event_add(&accept_ev_, nullptr);
    if (options_.socketio) {
      event_assign(&ping_ev_, base_, -1, EV_PERSIST, onPingTimer, this);
      timeval interval{kPingIntervalMs / 1000, (kPingIntervalMs % 1000) * 1000};
      event_add(&ping_ev_, &interval);
    }
  }

  void run() { event_base_dispatch(base_); }

 private:
  struct Sink {
    Loop* loop;
    Conn* conn;
    void onMessageBegin(Opcode op) {
      conn->op = op;
      conn->piece = nullptr;
      conn->piece_len = 0;
      conn->copied = false;
      conn->message.clear();
    }
    void onMessageData(const uint8_t* data, size_t len) {
      if (!conn->copied && conn->piece == nullptr) {
        conn->piece = data;
        conn->piece_len = len;
        return;
      }
      if (!conn->copied) {
        conn->message.assign(reinterpret_cast<const char*>(conn->piece), conn->piece_len);
        conn->copied = true;
      }
      conn->message.append(reinterpret_cast<const char*>(data), len);
    }
    bool onMessageEnd() {
      std::string_view payload =
          conn->copied
              ? std::string_view(conn->message)
              : std::string_view(reinterpret_cast<const char*>(conn->piece), conn->piece_len);
      conn->piece = nullptr;
      conn->copied = false;
      loop->onMessage(*conn, payload);
      return true;
    }
    bool onControl(Opcode op, const uint8_t* payload, size_t len) {
      return loop->onControl(*conn, op, payload, len);
    }
  };

  static void onAccept(evutil_socket_t fd, short, void* arg) {
    auto* self = static_cast<Loop*>(arg);
    for (int i = 0; i < 64; ++i) {
      int client = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (client < 0) return;
      int one = 1;
      setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      auto* c = new Conn;
      c->loop = self;
      c->fd = client;
      c->request = std::make_unique<wsb::http::RequestParser>();
      event_assign(&c->rev, self->base_, client, EV_READ | EV_PERSIST, onReadable, c);
      event_assign(&c->wev, self->base_, client, EV_WRITE | EV_PERSIST, onWritable, c);
      event_add(&c->rev, nullptr);
    }
  }

  static void onReadable(evutil_socket_t, short, void* arg) {
    auto* c = static_cast<Conn*>(arg);
    c->loop->handleRead(c);
  }

  static void onWritable(evutil_socket_t, short, void* arg) {
    auto* c = static_cast<Conn*>(arg);
    c->loop->handleWrite(c);
  }

  static void onPingTimer(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<Loop*>(arg);
    for (Conn* c = self->sio_head_; c != nullptr;) {
      Conn* next = c->next;
      self->appendFrame(Opcode::Text, "2");
      self->flush(c);
      c = next;
    }
  }

  void handleRead(Conn* c) {
    for (int i = 0; i < kMaxReadsPerEvent; ++i) {
      ssize_t n = read(c->fd, scratch_.data(), scratch_.size());
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        destroy(c);
        return;
      }
      if (n < 0) break;
      uint8_t* data = scratch_.data();
      size_t len = static_cast<size_t>(n);
      if (!c->upgraded && !handshake(c, data, len)) return;
      if (len > 0 && c->upgraded && !c->closing) {
        Sink sink{this, c};
        c->parser.consume(data, len, sink);
        if (c->parser.failed()) {
          std::string payload =
              wsb::ws::makeClosePayload(c->parser.error().code, c->parser.error().reason);
          appendFrame(Opcode::Close, payload);
          c->closing = true;
        } else if (c->piece != nullptr && !c->copied) {
          // The rest of this message comes with a later read, into the same scratch buffer.
          c->message.assign(reinterpret_cast<const char*>(c->piece), c->piece_len);
          c->copied = true;
        }
      }
      if (static_cast<size_t>(n) < scratch_.size() || c->closing) break;
    }
    flush(c);
  }

  // Parses the upgrade request; answers 101 (or 400 and closes). False when `c` is gone.
  bool handshake(Conn* c, uint8_t*& data, size_t& len) {
    size_t used = c->request->feed(reinterpret_cast<const char*>(data), len);
    data += used;
    len -= used;
    wsb::http::ParseState state = c->request->state();
    if (state == wsb::http::ParseState::NeedMore) return true;
    const wsb::http::Request& request = c->request->request();
    wsb::http::UpgradeCheck check;
    if (state == wsb::http::ParseState::Error) {
      check.status = c->request->errorStatus() ? c->request->errorStatus() : 400;
    } else {
      check = wsb::http::checkWebSocketUpgrade(request);
    }
    if (!check.ok()) {
      std::string response =
          wsb::http::errorResponse(check.status, "{\"error\":\"not a WebSocket upgrade\"}");
      ssize_t ignored = write(c->fd, response.data(), response.size());
      (void)ignored;
      destroy(c);
      return false;
    }
    std::string response =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        wsb::http::computeAcceptKey(*request.header("sec-websocket-key")) + "\r\n\r\n";
    out_.insert(out_.end(), response.begin(), response.end());
    c->request.reset();
    c->upgraded = true;
    if (options_.socketio) {
      char sid[32];
      std::snprintf(sid, sizeof(sid), "bench%02u%015llu", index_, ++sid_counter_);
      c->sid = sid;
      std::string open = "0{\"sid\":\"" + c->sid +
                         "\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,"
                         "\"maxPayload\":1000000}";
      appendFrame(Opcode::Text, open);
      c->next = sio_head_;
      if (sio_head_ != nullptr) sio_head_->prev = c;
      sio_head_ = c;
    }
    return true;
  }

  void onMessage(Conn& c, std::string_view payload) {
    if (!options_.socketio) {
      appendFrame(c.op, payload);
      return;
    }
    if (c.op != Opcode::Text) return;  // binary attachments are not part of the echo
    if (payload.substr(0, 2) == "42") {
      appendFrame(Opcode::Text, payload);
    } else if (payload.substr(0, 2) == "40") {
      // CONNECT to the default namespace (any auth payload accepted): 40{"sid":"..."}
      appendFrame(Opcode::Text, "40{\"sid\":\"" + c.sid + "-sio\"}");
    } else if (payload == "1") {
      appendFrame(Opcode::Close, wsb::ws::makeClosePayload(wsb::ws::close_code::kNormal, ""));
      c.closing = true;
    }
    // 3 (pong), 41 (disconnect) and anything else: nothing to answer.
  }

  bool onControl(Conn& c, Opcode op, const uint8_t* payload, size_t len) {
    std::string_view data(reinterpret_cast<const char*>(payload), len);
    if (op == Opcode::Ping) {
      appendFrame(Opcode::Pong, data);
    } else if (op == Opcode::Close) {
      appendFrame(Opcode::Close, data.substr(0, std::min<size_t>(len, 2)));
      c.closing = true;
      return false;
    }
    return true;
  }

  void appendFrame(Opcode op, std::string_view payload) {
    uint8_t header[wsb::ws::kMaxHeaderSize];
    size_t n = wsb::ws::writeFrameHeader(header, op, true, payload.size());
    out_.insert(out_.end(), header, header + n);
    out_.insert(out_.end(), payload.begin(), payload.end());
  }

  // Sends what the handlers queued in out_ for `c`, keeping what the socket does not take.
  void flush(Conn* c) {
    if (!out_.empty()) {
      size_t written = 0;
      if (c->pending.empty()) {
        ssize_t n = write(c->fd, out_.data(), out_.size());
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
          out_.clear();
          destroy(c);
          return;
        }
        written = n > 0 ? static_cast<size_t>(n) : 0;
      }
      c->pending.insert(c->pending.end(), out_.begin() + static_cast<ptrdiff_t>(written),
                        out_.end());
      out_.clear();
    }
    if (c->pending.size() - c->pending_off > 0) {
      armWrite(c, true);
      if (c->pending.size() - c->pending_off > kPauseAbove) pauseReading(c, true);
    } else if (c->closing) {
      destroy(c);
    }
  }

  void handleWrite(Conn* c) {
    while (c->pending_off < c->pending.size()) {
      ssize_t n =
          write(c->fd, c->pending.data() + c->pending_off, c->pending.size() - c->pending_off);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        destroy(c);
        return;
      }
      c->pending_off += static_cast<size_t>(n);
    }
    std::vector<uint8_t>().swap(c->pending);  // idle connections keep no buffers
    c->pending_off = 0;
    armWrite(c, false);
    pauseReading(c, false);
    if (c->closing) destroy(c);
  }

  void armWrite(Conn* c, bool on) {
    if (on == c->write_armed) return;
    c->write_armed = on;
    if (on) {
      event_add(&c->wev, nullptr);
    } else {
      event_del(&c->wev);
    }
  }

  void pauseReading(Conn* c, bool pause) {
    if (pause == !c->reading) return;
    c->reading = !pause;
    if (pause) {
      event_del(&c->rev);
    } else {
      event_add(&c->rev, nullptr);
    }
  }

  void destroy(Conn* c) {
    event_del(&c->rev);
    event_del(&c->wev);
    close(c->fd);
    if (!c->sid.empty()) {
      if (c->prev != nullptr) c->prev->next = c->next;
      if (c->next != nullptr) c->next->prev = c->prev;
      if (sio_head_ == c) sio_head_ = c->next;
    }
    delete c;
  }

  const Options& options_;
  unsigned index_;
  int listen_fd_;
  event_base* base_ = nullptr;
  event accept_ev_{};
  event ping_ev_{};
  std::vector<uint8_t> scratch_;
  std::vector<uint8_t> out_;  // frames for the connection being served, written in one go
  Conn* sio_head_ = nullptr;
  unsigned long long sid_counter_ = 0;
};

constexpr const char* kUsage =
    "usage: echo-backend [--host ADDR] [--port PORT] [--threads N] [--socketio]\n"
    "  Echoes every WebSocket message back as is (default 127.0.0.1:9000; port 0 = any).\n"
    "  --socketio  Engine.IO v4 / Socket.IO v5 over the websocket transport: sends OPEN,\n"
    "              answers 40 with 40{\"sid\":..}, echoes 42[\"echo\",x] as is, pings every 25 s\n"
    "  --threads N one event loop per thread, each with its own SO_REUSEPORT listener\n"
    "Prints 'echo-backend: listening on HOST:PORT' once ready; stops on SIGINT or SIGTERM.\n";

int listenOn(const Options& options, uint16_t port, uint16_t* bound) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, options.host.c_str(), &addr.sin_addr) != 1 ||
      bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 4096) != 0) {
    close(fd);
    return -1;
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *bound = ntohs(addr.sin_port);
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--socketio") {
      options.socketio = true;
    } else if (arg == "--port" && i + 1 < argc) {
      options.port = static_cast<uint16_t>(std::atoi(argv[++i]));
    } else if (arg == "--host" && i + 1 < argc) {
      options.host = argv[++i];
    } else if (arg == "--threads" && i + 1 < argc) {
      options.threads = static_cast<unsigned>(std::clamp(std::atoi(argv[++i]), 1, 64));
    } else if (arg == "-h" || arg == "--help") {
      std::printf("%s", kUsage);
      return 0;
    } else {
      std::fprintf(stderr, "echo-backend: unexpected argument '%s'\n\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  signal(SIGPIPE, SIG_IGN);
  // Signals go to the main thread's sigwait only.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  uint16_t port = options.port;
  std::vector<std::unique_ptr<Loop>> loops;
  for (unsigned i = 0; i < options.threads; ++i) {
    int fd = listenOn(options, port, &port);
    if (fd < 0) {
      std::fprintf(stderr, "echo-backend: cannot listen on %s:%u: %s\n", options.host.c_str(),
                   unsigned{port}, std::strerror(errno));
      return 1;
    }
    loops.push_back(std::make_unique<Loop>(options, i, fd));
  }
  std::vector<std::thread> threads;
  for (auto& loop : loops) threads.emplace_back([&loop] { loop->run(); });
  std::printf("echo-backend: listening on %s:%u (%s, %u thread%s)\n", options.host.c_str(),
              unsigned{port}, options.socketio ? "socketio" : "raw", options.threads,
              options.threads == 1 ? "" : "s");
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  // Nothing to flush or save: leave without tearing down loops that are still running.
  std::_Exit(0);
}
