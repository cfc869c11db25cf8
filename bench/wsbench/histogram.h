// Latency histogram with log-linear buckets: fixed size, under 1% error, nothing allocated per
// sample, mergeable across threads.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

namespace wsb::bench {

class Histogram {
 public:
  void record(uint64_t ns) {
    ++counts_[indexOf(ns)];
    ++count_;
    max_ = std::max(max_, ns);
  }

  void merge(const Histogram& other) {
    for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    max_ = std::max(max_, other.max_);
  }

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }

  // The value (ns) at or below which `percent` of the samples lie; 0 when empty.
  uint64_t percentile(double percent) const {
    if (count_ == 0) return 0;
    auto rank = static_cast<uint64_t>(std::ceil(percent / 100.0 * static_cast<double>(count_)));
    rank = std::clamp<uint64_t>(rank, 1, count_);
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(midpointOf(i), max_);
    }
    return max_;
  }

 private:
  // 2^(kSubBits-1) buckets per power of two: a bucket is at most 1/128 of its value wide.
  static constexpr unsigned kSubBits = 8;
  static constexpr uint64_t kHalf = uint64_t{1} << (kSubBits - 1);
  static constexpr size_t kBuckets = (66 - kSubBits) * kHalf;

  static size_t indexOf(uint64_t v) {
    if (v < 2 * kHalf) return static_cast<size_t>(v);
    unsigned msb = 63u - static_cast<unsigned>(__builtin_clzll(v));
    unsigned shift = msb - (kSubBits - 1);
    return static_cast<size_t>(shift * kHalf + (v >> shift));
  }

  static uint64_t midpointOf(size_t index) {
    if (index < 2 * kHalf) return index;
    uint64_t shift = index / kHalf - 1;
    uint64_t mantissa = index - shift * kHalf;
    return (mantissa << shift) + ((uint64_t{1} << shift) >> 1);
  }

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

}  // namespace wsb::bench
