// Masking keys for frames wsbridge sends as a WebSocket client: RAND_bytes, refilled in blocks.
#pragma once

#include <cstdint>
#include <cstring>

#include <openssl/rand.h>

namespace wsb::proxy {

// One per worker thread; not thread-safe by design.
class MaskSource {
 public:
  void next(uint8_t key[4]) {
    if (pos_ + 4 > sizeof block_) refill();
    std::memcpy(key, block_ + pos_, 4);
    pos_ += 4;
  }

 private:
  void refill() {
    // RAND_bytes only fails when the CSPRNG cannot be seeded; a predictable mask would
    // defeat the point of masking, so refuse to go on.
    if (RAND_bytes(block_, sizeof block_) != 1) __builtin_trap();
    pos_ = 0;
  }
  uint8_t block_[4096];
  size_t pos_ = sizeof block_;
};

}  // namespace wsb::proxy
