// Bytes a connection has queued for its socket: one contiguous block while bytes wait, none while
// idle. Blocks come from a small per-thread pool, so a busy relay neither allocates per message
// nor per write, and an idle connection costs nothing here.
#pragma once

#include <cstddef>
#include <cstdint>

namespace wsb::proxy {

class OutputBuffer {
 public:
  OutputBuffer() = default;
  ~OutputBuffer() { release(); }
  OutputBuffer(const OutputBuffer&) = delete;
  OutputBuffer& operator=(const OutputBuffer&) = delete;

  size_t size() const { return end_ - begin_; }
  bool empty() const { return end_ == begin_; }

  // Space for `n` more bytes at the end, valid until the next call; commit() what was written.
  uint8_t* reserve(size_t n);
  void commit(size_t n) { end_ += n; }
  void append(const void* data, size_t n);

  // One send() of everything queued to the socket `fd`; drops what it took. Returns send()'s
  // result (errno tells why when it is -1).
  long writeTo(int fd);
  // Gives the block back (what was queued is lost).
  void release();

 private:
  uint8_t* data_ = nullptr;
  size_t capacity_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace wsb::proxy
