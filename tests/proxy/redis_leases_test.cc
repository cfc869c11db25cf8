// RedisLeaseClient's command timeout, against a fake Redis on the same event loop: a silent one
// makes a lease answer not-ok within the timeout and the client down; one that answers again
// brings it back (after its PING); replies that each come in time never time out.
#include "proxy/redis_leases.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <netinet/in.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace wsb::proxy {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A Redis on 127.0.0.1 that accepts and either never answers (`answering` false) or answers
// PING, AUTH/SELECT and the lease script (granting what is asked, after `delay`).
class FakeRedis {
 public:
  explicit FakeRedis(Dispatcher& dispatcher) : dispatcher_(dispatcher) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listener_ = evconnlistener_new_bind(dispatcher.base(), &FakeRedis::onAccept, this,
                                        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                        reinterpret_cast<sockaddr*>(&address), sizeof address);
    REQUIRE(listener_ != nullptr);
    socklen_t length = sizeof address;
    getsockname(evconnlistener_get_fd(listener_), reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~FakeRedis() {
    for (auto& c : connections_) bufferevent_free(c->bev);
    evconnlistener_free(listener_);
  }
  FakeRedis(const FakeRedis&) = delete;
  FakeRedis& operator=(const FakeRedis&) = delete;

  int port() const { return port_; }
  bool answering = false;
  Duration delay{0};
  int accepted = 0;
  std::vector<std::string> commands;  // the first word of each command received
  std::function<void()> on_accept;

 private:
  struct Connection {
    FakeRedis* server;
    bufferevent* bev;
    std::string input;
    std::vector<std::unique_ptr<Timer>> replies;  // delayed ones
  };

  static void onAccept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* self_ptr) {
    auto* self = static_cast<FakeRedis*>(self_ptr);
    auto connection = std::make_unique<Connection>();
    connection->server = self;
    connection->bev =
        bufferevent_socket_new(self->dispatcher_.base(), fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(connection->bev, &FakeRedis::onRead, nullptr, nullptr, connection.get());
    bufferevent_enable(connection->bev, EV_READ);
    self->connections_.push_back(std::move(connection));
    ++self->accepted;
    if (self->on_accept) self->on_accept();
  }

  static void onRead(bufferevent* bev, void* connection_ptr) {
    auto* c = static_cast<Connection*>(connection_ptr);
    evbuffer* in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    c->input.append(reinterpret_cast<const char*>(evbuffer_pullup(in, -1)), n);
    evbuffer_drain(in, n);
    while (std::optional<std::vector<std::string>> command = takeCommand(c->input)) {
      c->server->commands.push_back(command->empty() ? "" : command->front());
      if (c->server->answering) c->server->answer(*c, *command);
    }
  }

  // One RESP array of bulk strings, as hiredis sends commands; nullopt until it is all there.
  static std::optional<std::vector<std::string>> takeCommand(std::string& input) {
    size_t pos = 0;
    auto line = [&]() -> std::optional<std::string> {
      size_t end = input.find("\r\n", pos);
      if (end == std::string::npos) return std::nullopt;
      std::string text = input.substr(pos, end - pos);
      pos = end + 2;
      return text;
    };
    std::optional<std::string> header = line();
    if (!header || header->empty() || (*header)[0] != '*') return std::nullopt;
    std::vector<std::string> args;
    for (int i = 0, count = std::stoi(header->substr(1)); i < count; ++i) {
      std::optional<std::string> size = line();
      if (!size) return std::nullopt;
      size_t length = std::stoul(size->substr(1));
      if (input.size() < pos + length + 2) return std::nullopt;
      args.push_back(input.substr(pos, length));
      pos += length + 2;
    }
    input.erase(0, pos);
    return args;
  }

  void answer(Connection& c, const std::vector<std::string>& command) {
    std::string reply = "+OK\r\n";
    if (command[0] == "PING") reply = "+PONG\r\n";
    if (command[0] == "EVALSHA" || command[0] == "EVAL")
      reply = "*2\r\n:" + command[6] + "\r\n:0\r\n";  // ARGV[3] is the tokens wanted
    if (delay.count() == 0) {
      bufferevent_write(c.bev, reply.data(), reply.size());
      return;
    }
    bufferevent* bev = c.bev;
    c.replies.push_back(std::make_unique<Timer>(
        dispatcher_, [bev, reply] { bufferevent_write(bev, reply.data(), reply.size()); }));
    c.replies.back()->arm(delay);
  }

  Dispatcher& dispatcher_;
  evconnlistener* listener_ = nullptr;
  int port_ = 0;
  std::vector<std::unique_ptr<Connection>> connections_;
};

filters::RedisAddress localRedis(int port) {
  filters::RedisAddress address;
  address.host = "127.0.0.1";
  address.port = port;
  return address;
}

// Runs `dispatcher` until something calls its exit(), failing the case after `limit`.
void runFor(Dispatcher& dispatcher, Duration limit) {
  bool expired = false;
  Timer guard(dispatcher, [&] {
    expired = true;
    dispatcher.exit();
  });
  guard.arm(limit);
  dispatcher.run();
  REQUIRE_FALSE(expired);
}

const filters::BucketLimit kLimit{5, 5};

TEST_CASE("a Redis that accepts and never answers: the lease is answered not ok within the "
          "timeout, the client is down and the timeout counted") {
  Dispatcher dispatcher;
  FakeRedis redis(dispatcher);
  std::vector<std::string> errors;
  RedisLeaseClient client(dispatcher, localRedis(redis.port()), 100ms, "test Redis",
                          [&](std::string_view reason) { errors.emplace_back(reason); });
  CHECK(client.up());  // not known to be down while connecting
  std::optional<filters::LeaseReply> reply;
  Clock::time_point asked = Clock::now();
  Clock::duration waited{};
  client.lease("k", kLimit, 2, [&](const filters::LeaseReply& r) {
    reply = r;
    waited = Clock::now() - asked;
    dispatcher.exit();
  });
  runFor(dispatcher, 5000ms);
  REQUIRE(reply);
  CHECK_FALSE(reply->ok);
  CHECK(waited >= 100ms);
  CHECK(waited < 1000ms);  // the timeout and a loaded machine's margin
  CHECK_FALSE(client.up());
  CHECK(errors == std::vector<std::string>{"timeout"});
  CHECK(redis.commands == std::vector<std::string>{"PING", "EVALSHA"});
}

TEST_CASE("after a timeout, a new connection counts as up once Redis answers its PING, and leases "
          "are granted again") {
  Dispatcher dispatcher;
  FakeRedis redis(dispatcher);
  std::vector<std::string> errors;
  RedisLeaseClient client(dispatcher, localRedis(redis.port()), 50ms, "test Redis",
                          [&](std::string_view reason) { errors.emplace_back(reason); });
  // Silent for the first connection and the first reconnect, answering from the third.
  std::optional<filters::LeaseReply> reply;
  redis.on_accept = [&] {
    if (redis.accepted == 1) return;
    if (redis.accepted == 2) {
      CHECK_FALSE(client.up());
      return;
    }
    redis.answering = true;
    client.lease("k", kLimit, 2, [&](const filters::LeaseReply& r) {
      reply = r;
      dispatcher.exit();
    });
  };
  runFor(dispatcher, 10000ms);
  REQUIRE(reply);
  CHECK(reply->ok);
  CHECK(reply->granted == 2);
  CHECK(client.up());
  CHECK(errors == std::vector<std::string>{"timeout", "timeout"});
  CHECK(redis.accepted == 3);
}

TEST_CASE("replies that each come within the timeout never time out, however long the run") {
  Dispatcher dispatcher;
  FakeRedis redis(dispatcher);
  redis.answering = true;
  redis.delay = 30ms;
  std::vector<std::string> errors;
  RedisLeaseClient client(dispatcher, localRedis(redis.port()), 200ms, "test Redis",
                          [&](std::string_view reason) { errors.emplace_back(reason); });
  // Ten leases one after another: 300 ms and more in all, each answered after 30 ms.
  int answered = 0;
  std::function<void()> next = [&] {
    client.lease("k", kLimit, 1, [&](const filters::LeaseReply& r) {
      CHECK(r.ok);
      if (++answered == 10) {
        dispatcher.exit();
        return;
      }
      next();
    });
  };
  next();
  runFor(dispatcher, 10000ms);
  CHECK(answered == 10);
  CHECK(client.up());
  CHECK(errors.empty());
  CHECK(redis.accepted == 1);
}

}  // namespace
}  // namespace wsb::proxy
