// The load generator's worker: connections driven by one libevent loop, with the replies to a
// read sent in one writev and a prebuilt masked frame reused for every message.
#include "bench/wsbench/load.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

#include "codec/http1.h"

namespace wsb::bench {

uint64_t monotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

namespace {

constexpr size_t kScratchSize = 256 * 1024;
constexpr size_t kMaxResponse = 8192;
constexpr int kMaxReadsPerEvent = 4;  // then yield to the other connections

// Letters only, so the payload is valid UTF-8 and needs no JSON escaping.
std::string makePayload(uint32_t size) {
  std::string payload(size, 'a');
  for (uint32_t i = 0; i < size; ++i) payload[i] = static_cast<char>('a' + i % 26);
  return payload;
}

bool startsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// The value of header `name` (lowercase) in a raw response head, or empty.
std::string_view headerValue(std::string_view head, std::string_view name) {
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    size_t line_start = pos + 2;
    size_t line_end = head.find("\r\n", line_start);
    if (line_end == std::string_view::npos) break;
    std::string_view line = head.substr(line_start, line_end - line_start);
    size_t colon = line.find(':');
    if (colon == name.size() && http::iequals(line.substr(0, colon), name)) {
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
        value.remove_suffix(1);
      return value;
    }
    pos = line_end;
  }
  return {};
}

}  // namespace

struct Worker::Sink {
  Worker* worker;
  Conn* conn;

  void onMessageBegin(ws::Opcode op) {
    conn->msg_op = op;
    conn->msg_match = true;
    conn->msg_len = 0;
    conn->head_len = 0;
  }
  void onMessageData(const uint8_t* data, size_t len) {
    if (conn->head_len < sizeof(conn->head)) {
      size_t take = std::min(len, sizeof(conn->head) - conn->head_len);
      std::memcpy(conn->head + conn->head_len, data, take);
      conn->head_len = static_cast<uint8_t>(conn->head_len + take);
    }
    const std::string& expect = worker->expect_;
    if (conn->msg_match && (conn->msg_len + len > expect.size() ||
                            std::memcmp(expect.data() + conn->msg_len, data, len) != 0)) {
      conn->msg_match = false;
    }
    conn->msg_len += static_cast<uint32_t>(std::min<size_t>(len, UINT32_MAX - conn->msg_len));
  }
  bool onMessageEnd() { return worker->onMessage(*conn); }
  bool onControl(ws::Opcode op, const uint8_t* payload, size_t len) {
    return worker->onControl(*conn, op, payload, len);
  }
};

Worker::Worker(const Options& options, uint32_t index, uint32_t conn_count, uint32_t first_conn,
               const std::atomic<bool>* measuring)
    : options_(options),
      index_(index),
      first_conn_(first_conn),
      measuring_(measuring),
      conns_(new Conn[conn_count]),
      conn_count_(conn_count) {
  base_ = event_base_new();
  stop_event_ = event_new(base_, -1, 0, onStop, this);
  for (uint32_t i = 0; i < conn_count_; ++i) {
    conns_[i].worker = this;
    conns_[i].slot = i;
  }
  RAND_bytes(mask_, sizeof(mask_));

  std::string payload = makePayload(options_.size);
  switch (options_.flavour) {
    case Flavour::Raw:
      expect_ = payload;
      expect_op_ = options_.text ? ws::Opcode::Text : ws::Opcode::Binary;
      break;
    case Flavour::SocketIO:
      expect_ = "42[\"echo\",\"" + payload + "\"]";
      expect_op_ = ws::Opcode::Text;
      break;
    case Flavour::Envelope:
      expect_ = "{\"event\":\"echo\",\"data\":\"" + payload + "\"}";
      expect_op_ = ws::Opcode::Text;
      break;
  }
  frame_.resize(ws::kMaxHeaderSize + expect_.size());
  size_t header = ws::writeFrameHeader(frame_.data(), expect_op_, true, expect_.size(), mask_);
  std::memcpy(frame_.data() + header, expect_.data(), expect_.size());
  ws::applyMask(frame_.data() + header, expect_.size(), mask_);
  frame_.resize(header + expect_.size());

  uint32_t depth = std::max<uint32_t>(options_.depth, 1);
  if (options_.mode == Mode::Throughput) send_times_.resize(size_t{conn_count_} * depth);
  iov_.resize(depth);
  scratch_.resize(kScratchSize);
}

Worker::~Worker() {
  for (uint32_t i = 0; i < conn_count_; ++i) {
    if (conns_[i].fd >= 0) closeConn(conns_[i]);
  }
  event_free(stop_event_);
  event_base_free(base_);
}

void Worker::run() {
  if (options_.mode == Mode::ConnRate) {
    for (uint32_t i = 0; i < conn_count_; ++i) startConnection(conns_[i]);
  } else {
    startMore();
  }
  event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
}

void Worker::stop() { event_active(stop_event_, EV_READ, 0); }

void Worker::onStop(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  self->stopping_ = true;
  for (uint32_t i = 0; i < self->conn_count_; ++i) {
    if (self->conns_[i].fd >= 0) self->closeConn(self->conns_[i]);
  }
  event_base_loopbreak(self->base_);
}

void Worker::startMore() {
  // A connect refused on the spot calls back here through fail(); the loop below goes on instead.
  if (in_start_more_) return;
  in_start_more_ = true;
  uint32_t ramp = std::max<uint32_t>(1, options_.ramp / std::max<uint32_t>(options_.threads, 1));
  while (!stopping_ && next_to_open_ < conn_count_ && handshaking_ < ramp) {
    startConnection(conns_[next_to_open_++]);
  }
  in_start_more_ = false;
}

void Worker::startConnection(Conn& c) {
  if (stopping_) return;
  c.parser = ws::FrameParser<ws::Role::Client>();
  c.state = State::Connecting;
  ++handshaking_;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    c.state = State::Idle;
    --handshaking_;
    counters.failed.fetch_add(1, std::memory_order_relaxed);
    if (first_error_.empty()) first_error_ = std::string("socket: ") + std::strerror(errno);
    return;
  }
  c.fd = fd;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (options_.sources > 0) {
    // Several source addresses multiply the ephemeral ports available toward one listener;
    // IP_BIND_ADDRESS_NO_PORT leaves the port choice to connect(), which knows the 4-tuple.
    uint64_t n = options_.mode == Mode::ConnRate ? cycles_started_++ * options_.threads + index_
                                                 : uint64_t{first_conn_} + c.slot;
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl((127u << 24) | static_cast<uint32_t>(2 + n % options_.sources));
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) {
      fail(c, std::string("bind: ") + std::strerror(errno));
      return;
    }
  }
  event_assign(&c.rev, base_, fd, EV_READ | EV_PERSIST, onReadable, &c);
  event_assign(&c.wev, base_, fd, EV_WRITE | EV_PERSIST, onWritable, &c);
  event_add(&c.rev, nullptr);
  int rc = connect(fd, reinterpret_cast<const sockaddr*>(&options_.target), sizeof(sockaddr_in));
  if (rc != 0 && errno != EINPROGRESS) {
    fail(c, std::string("connect: ") + std::strerror(errno));
    return;
  }
  armWrite(c, true);  // writable = connected (or failed, which SO_ERROR tells)
}

void Worker::onReadable(evutil_socket_t, short, void* arg) {
  auto* c = static_cast<Conn*>(arg);
  c->worker->handleRead(*c);
}

void Worker::onWritable(evutil_socket_t, short, void* arg) {
  auto* c = static_cast<Conn*>(arg);
  c->worker->handleWrite(*c);
}

void Worker::handleWrite(Conn& c) {
  if (c.state == State::Connecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      fail(c, std::string("connect: ") + std::strerror(err));
      return;
    }
    armWrite(c, false);
    char request[1024];
    std::string key = http::makeWebSocketKey();
    std::snprintf(c.key, sizeof(c.key), "%s", key.c_str());
    int n = std::snprintf(request, sizeof(request),
                          "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n",
                          options_.path.c_str(), options_.host.c_str(),
                          unsigned{ntohs(options_.target.sin_port)}, c.key);
    c.state = State::Upgrading;
    iovec iov{request, static_cast<size_t>(std::min<int>(n, sizeof(request) - 1))};
    writeOut(c, &iov, 1);
    return;
  }
  while (c.pending_off < c.pending.size()) {
    ssize_t n = write(c.fd, c.pending.data() + c.pending_off, c.pending.size() - c.pending_off);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      fail(c, std::string("write: ") + std::strerror(errno));
      return;
    }
    c.pending_off += static_cast<size_t>(n);
  }
  c.pending.clear();
  c.pending_off = 0;
  armWrite(c, false);
}

void Worker::handleRead(Conn& c) {
  now_ = monotonicNs();
  batch_round_trips_ = 0;
  for (int i = 0; i < kMaxReadsPerEvent; ++i) {
    ssize_t n = read(c.fd, scratch_.data(), scratch_.size());
    if (n > 0) {
      uint8_t* data = scratch_.data();
      size_t len = static_cast<size_t>(n);
      if (c.state == State::Upgrading && !handleUpgradeBytes(c, data, len)) return;
      if (len > 0 && !handleFrames(c, data, len)) break;
      if (static_cast<size_t>(n) < scratch_.size()) break;
    } else if (n == 0) {
      if (c.state == State::Closing) {
        finishCycle(c);
      } else {
        fail(c, "connection closed by the server");
      }
      break;
    } else {
      if (errno != EAGAIN && errno != EINTR) fail(c, std::string("read: ") + std::strerror(errno));
      break;
    }
  }
  if (batch_round_trips_ > 0) {
    counters.round_trips.fetch_add(batch_round_trips_, std::memory_order_relaxed);
    counters.payload_bytes.fetch_add(batch_round_trips_ * options_.size, std::memory_order_relaxed);
  }
  if (c.fd >= 0 && c.echoes_due > 0) {
    uint32_t due = c.echoes_due;
    c.echoes_due = 0;
    sendEchoes(c, due);
  }
}

bool Worker::handleUpgradeBytes(Conn& c, uint8_t*& data, size_t& len) {
  size_t old = c.http.size();
  c.http.append(reinterpret_cast<const char*>(data), std::min(len, kMaxResponse - old));
  size_t end = c.http.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
  if (end == std::string::npos) {
    if (c.http.size() >= kMaxResponse) {
      fail(c, "upgrade response too large");
      return false;
    }
    len = 0;
    return true;
  }
  size_t head_end = end + 4;
  data += head_end - old;
  len -= head_end - old;
  std::string_view head(c.http.data(), head_end);
  std::string_view status = head.substr(0, head.find("\r\n"));
  if (!startsWith(status, "HTTP/1.1 101")) {
    fail(c, "upgrade refused: " + std::string(status));
    return false;
  }
  if (headerValue(head, "sec-websocket-accept") != http::computeAcceptKey(c.key)) {
    fail(c, "upgrade response with a wrong Sec-WebSocket-Accept");
    return false;
  }
  std::string().swap(c.http);  // idle connections keep no buffers
  if (options_.flavour == Flavour::SocketIO) {
    c.state = State::SioOpen;
  } else {
    onRunning(c);
  }
  return c.fd >= 0;
}

bool Worker::handleFrames(Conn& c, uint8_t* data, size_t len) {
  Sink sink{this, &c};
  c.parser.consume(data, len, sink);
  if (c.fd < 0) return false;  // closed by a callback
  if (c.parser.failed()) {
    fail(c, std::string("protocol error from the server: ") + c.parser.error().reason);
    return false;
  }
  return true;
}

void Worker::onRunning(Conn& c) {
  c.state = State::Running;
  --handshaking_;
  counters.established.fetch_add(1, std::memory_order_relaxed);
  switch (options_.mode) {
    case Mode::Throughput:
      sendEchoes(c, std::max<uint32_t>(options_.depth, 1));
      break;
    case Mode::Idle:
      break;
    case Mode::ConnRate: {
      uint8_t normal[2] = {ws::close_code::kNormal >> 8, ws::close_code::kNormal & 0xFF};
      c.state = State::Closing;
      sendControl(c, ws::Opcode::Close, normal, sizeof(normal));
      return;
    }
  }
  startMore();
}

bool Worker::onMessage(Conn& c) {
  std::string_view head(reinterpret_cast<const char*>(c.head), c.head_len);
  bool is_echo = c.msg_match && c.msg_len == expect_.size() && c.msg_op == expect_op_;
  switch (c.state) {
    case State::Running:
      if (is_echo && options_.mode == Mode::Throughput && c.in_flight > 0) {
        size_t base = size_t{c.slot} * options_.depth;
        uint64_t sent = send_times_[base + c.ring_head];
        c.ring_head = c.ring_head + 1 == options_.depth ? 0 : c.ring_head + 1;
        --c.in_flight;
        if (measuring_->load(std::memory_order_relaxed)) histogram_.record(now_ - sent);
        ++batch_round_trips_;
        ++c.echoes_due;
        return true;
      }
      break;
    case State::SioOpen:
      if (startsWith(head, "0{")) {
        c.state = State::SioConnect;
        sendText(c, "40");
        return c.fd >= 0;
      }
      break;
    case State::SioConnect:
      if (startsWith(head, "40")) {
        onRunning(c);
        return c.fd >= 0;
      }
      if (startsWith(head, "44")) {
        fail(c, "Socket.IO CONNECT refused: " + std::string(head));
        return false;
      }
      break;
    case State::Closing:
      return true;
    default:
      break;
  }
  if (options_.flavour == Flavour::SocketIO && c.msg_op == ws::Opcode::Text) {
    if (head == "2") {  // Engine.IO ping from the server
      sendText(c, "3");
      return c.fd >= 0;
    }
    if (head == "3" || head == "6") return true;
  }
  counters.mismatched.fetch_add(1, std::memory_order_relaxed);
  if (first_error_.empty()) {
    first_error_ = "unexpected message (" + std::to_string(c.msg_len) +
                   " bytes): " + std::string(head.substr(0, 24));
  }
  return true;
}

bool Worker::onControl(Conn& c, ws::Opcode op, const uint8_t* payload, size_t len) {
  switch (op) {
    case ws::Opcode::Ping:
      sendControl(c, ws::Opcode::Pong, payload, len);
      return c.fd >= 0;
    case ws::Opcode::Close:
      if (c.state == State::Closing) {
        finishCycle(c);
      } else {
        uint16_t code = len >= 2 ? static_cast<uint16_t>(payload[0] << 8 | payload[1]) : 1005;
        fail(c, "the server closed the WebSocket with " + std::to_string(code));
      }
      return false;
    default:
      return true;
  }
}

void Worker::sendEchoes(Conn& c, uint32_t count) {
  uint32_t depth = options_.depth;
  count = std::min(count, depth - std::min(depth, c.in_flight));
  if (count == 0) return;
  size_t base = size_t{c.slot} * depth;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t at = c.ring_head + c.in_flight;
    if (at >= depth) at -= depth;
    send_times_[base + at] = now_;
    ++c.in_flight;
    iov_[i] = iovec{frame_.data(), frame_.size()};
  }
  writeOut(c, iov_.data(), static_cast<int>(count));
}

void Worker::sendText(Conn& c, std::string_view text) {
  std::string frame = ws::makeFrame(ws::Opcode::Text, text, true, mask_);
  iovec iov{frame.data(), frame.size()};
  writeOut(c, &iov, 1);
}

void Worker::sendControl(Conn& c, ws::Opcode op, const uint8_t* payload, size_t len) {
  std::string frame =
      ws::makeFrame(op, std::string_view(reinterpret_cast<const char*>(payload), len), true, mask_);
  iovec iov{frame.data(), frame.size()};
  writeOut(c, &iov, 1);
}

bool Worker::writeOut(Conn& c, const iovec* iov, int iovcnt) {
  size_t written = 0;
  if (c.pending.empty()) {
    ssize_t n = writev(c.fd, iov, std::min(iovcnt, IOV_MAX));
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) {
        fail(c, std::string("write: ") + std::strerror(errno));
        return false;
      }
      n = 0;
    }
    written = static_cast<size_t>(n);
  }
  // Whatever the socket did not take waits in the connection's own buffer.
  for (int i = 0; i < iovcnt; ++i) {
    const auto* base = static_cast<const uint8_t*>(iov[i].iov_base);
    size_t len = iov[i].iov_len;
    if (written >= len) {
      written -= len;
      continue;
    }
    c.pending.insert(c.pending.end(), base + written, base + len);
    written = 0;
  }
  if (!c.pending.empty()) armWrite(c, true);
  return true;
}

void Worker::armWrite(Conn& c, bool on) {
  if (on == c.write_armed) return;
  c.write_armed = on;
  if (on) {
    event_add(&c.wev, nullptr);
  } else {
    event_del(&c.wev);
  }
}

void Worker::closeConn(Conn& c) {
  event_del(&c.rev);
  if (c.write_armed) event_del(&c.wev);
  c.write_armed = false;
  close(c.fd);
  c.fd = -1;
  c.state = State::Idle;
  c.pending.clear();
  c.pending_off = 0;
  std::string().swap(c.http);
  c.in_flight = 0;
  c.ring_head = 0;
  c.echoes_due = 0;
}

void Worker::fail(Conn& c, const std::string& why) {
  bool handshaking =
      c.state != State::Running && c.state != State::Closing && c.state != State::Idle;
  if (c.fd >= 0) closeConn(c);
  counters.failed.fetch_add(1, std::memory_order_relaxed);
  if (first_error_.empty()) first_error_ = why;
  if (stopping_) return;
  if (options_.mode == Mode::ConnRate) {
    // Retried a little later, so a refusing server does not turn this into a busy loop.
    timeval delay{0, 1000};
    event_base_once(
        base_, -1, EV_TIMEOUT,
        [](evutil_socket_t, short, void* arg) {
          auto* slot = static_cast<Conn*>(arg);
          slot->worker->startConnection(*slot);
        },
        &c, &delay);
    return;
  }
  if (handshaking) --handshaking_;
  startMore();
}

void Worker::finishCycle(Conn& c) {
  closeConn(c);
  counters.completed.fetch_add(1, std::memory_order_relaxed);
  // Started from the loop, not from inside the parser callback that got here.
  timeval now{0, 0};
  event_base_once(
      base_, -1, EV_TIMEOUT,
      [](evutil_socket_t, short, void* arg) {
        auto* slot = static_cast<Conn*>(arg);
        slot->worker->startConnection(*slot);
      },
      &c, &now);
}

}  // namespace wsb::bench
