// OutputBuffer: pooled contiguous blocks.
#include "proxy/output_buffer.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

namespace wsb::proxy {

namespace {

// Most writes are far smaller: a read batch of relayed messages.
constexpr size_t kBlockSize = 16 * 1024;
// Enough for every connection that has bytes waiting in one loop iteration of a busy worker;
// more are freed (at most 1 MiB per thread stays cached).
constexpr size_t kPoolMax = 64;

struct Pool {
  std::vector<uint8_t*> blocks;
  ~Pool() {
    for (uint8_t* b : blocks) std::free(b);
  }
};

thread_local Pool pool;

uint8_t* allocate(size_t size) {
  void* p = std::malloc(size);
  if (p == nullptr) throw std::bad_alloc();
  return static_cast<uint8_t*>(p);
}

}  // namespace

uint8_t* OutputBuffer::reserve(size_t n) {
  if (capacity_ - end_ >= n) return data_ + end_;
  size_t live = size();
  if (data_ != nullptr && capacity_ >= live + n) {
    std::memmove(data_, data_ + begin_, live);  // room at the front: the socket took that much
  } else {
    size_t capacity = std::max({kBlockSize, capacity_ * 2, live + n});
    uint8_t* block;
    if (capacity == kBlockSize && !pool.blocks.empty()) {
      block = pool.blocks.back();
      pool.blocks.pop_back();
    } else {
      block = allocate(capacity);
    }
    if (live != 0) std::memcpy(block, data_ + begin_, live);
    release();
    data_ = block;
    capacity_ = capacity;
  }
  begin_ = 0;
  end_ = live;
  return data_ + end_;
}

void OutputBuffer::append(const void* data, size_t n) {
  std::memcpy(reserve(n), data, n);
  commit(n);
}

long OutputBuffer::writeTo(int fd) {
  if (empty()) return 0;
  // send(), not write(): a socket needs none of the file layer's checks and notifications.
  ssize_t n = ::send(fd, data_ + begin_, size(), MSG_NOSIGNAL);
  if (n > 0) {
    begin_ += static_cast<size_t>(n);
    if (empty()) release();
  }
  return n;
}

void OutputBuffer::release() {
  if (data_ != nullptr) {
    if (capacity_ == kBlockSize && pool.blocks.size() < kPoolMax) {
      pool.blocks.push_back(data_);
    } else {
      std::free(data_);
    }
  }
  data_ = nullptr;
  capacity_ = begin_ = end_ = 0;
}

}  // namespace wsb::proxy
