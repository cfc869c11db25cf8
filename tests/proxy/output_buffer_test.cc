#include "proxy/output_buffer.h"

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

using wsb::proxy::OutputBuffer;

namespace {

struct SocketPair {
  int fds[2];
  SocketPair() {
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    REQUIRE(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0);
    int small = 4096;  // so that the writer fills it quickly
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  }
  ~SocketPair() {
    close(fds[0]);
    close(fds[1]);
  }
  std::string readAll(size_t n) {
    std::string out(n, '\0');
    size_t got = 0;
    while (got < n) {
      ssize_t r = read(fds[1], out.data() + got, n - got);
      REQUIRE(r > 0);
      got += static_cast<size_t>(r);
    }
    return out;
  }
};

std::string pattern(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i % 23);
  return s;
}

}  // namespace

TEST_CASE("an output buffer holds appended bytes in order and writes them in one call") {
  SocketPair pair;
  OutputBuffer out;
  CHECK(out.empty());
  out.append("hello ", 6);
  uint8_t* space = out.reserve(5);
  std::memcpy(space, "world", 5);
  out.commit(5);
  CHECK(out.size() == 11);
  CHECK(out.writeTo(pair.fds[0]) == 11);
  CHECK(out.empty());
  CHECK(pair.readAll(11) == "hello world");
}

TEST_CASE("an output buffer keeps what the socket refused and grows past its first block") {
  SocketPair pair;
  OutputBuffer out;
  std::string a = pattern(100000, 'a');  // larger than a pooled block and the socket buffer
  out.append(a.data(), a.size());
  long n = out.writeTo(pair.fds[0]);
  REQUIRE(n > 0);
  REQUIRE(static_cast<size_t>(n) < a.size());
  CHECK(out.size() == a.size() - static_cast<size_t>(n));
  // More bytes after a partial write land behind the ones still waiting.
  std::string b = pattern(3000, 'A');
  out.append(b.data(), b.size());
  std::string expected = a + b;
  std::string received = pair.readAll(static_cast<size_t>(n));
  while (!out.empty()) {
    long w = out.writeTo(pair.fds[0]);
    if (w < 0) {
      REQUIRE(errno == EAGAIN);
      w = 0;
    }
    received += pair.readAll(static_cast<size_t>(w));
  }
  CHECK(received == expected);
}

TEST_CASE("an empty output buffer gives its block back and writes nothing") {
  SocketPair pair;
  OutputBuffer out;
  out.append("x", 1);
  out.release();
  CHECK(out.empty());
  CHECK(out.writeTo(pair.fds[0]) == 0);
  // Reused after a release: still in order.
  out.append("yz", 2);
  CHECK(out.writeTo(pair.fds[0]) == 2);
  CHECK(pair.readAll(2) == "yz");
}
