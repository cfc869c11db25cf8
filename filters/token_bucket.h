// Token buckets for rate limits: refilled lazily from elapsed time, exact at whole-token edges.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>

namespace wsb::ratelimit {

// Buckets take the time as an argument rather than reading a clock, so the owner decides where
// time comes from (filters::Clock in filters, plain time points in tests).
using Clock = std::chrono::steady_clock;
using Duration = std::chrono::nanoseconds;

// `rate` tokens per second up to `burst`, starting full.
//
// The level is kept in nano-tokens (1e-9 token) and refilled by elapsed nanoseconds times the
// rate, so with whole-number rates every value is an integer held exactly in a double: at 5/s a
// token takes exactly 200'000'000 ns, not "about 0.2 s".
class TokenBucket {
 public:
  TokenBucket(double rate_per_second, double burst)
      : rate_(std::max(rate_per_second, 0.0)),
        capacity_(nanoTokens(std::max(burst, 0.0))),
        level_(capacity_) {}

  // Takes `n` tokens if they are all there; otherwise takes nothing.
  bool take(double n, Clock::time_point now) {
    refill(now);
    const double cost = nanoTokens(n);
    if (level_ < cost) return false;
    level_ -= cost;
    return true;
  }

  // Takes `n` tokens even past empty: for costs known only once the thing has passed (the bytes
  // of a message already read); later takes wait until the debt is paid back.
  void charge(double n, Clock::time_point now) {
    refill(now);
    level_ -= nanoTokens(n);
  }

  // How long from `now` until `n` tokens are there: zero if they are, Duration::max() if they
  // never can be (more than the burst, or no refill).
  Duration retryAfter(double n, Clock::time_point now) {
    refill(now);
    const double cost = nanoTokens(n);
    const double deficit = cost - level_;
    if (deficit <= 0) return Duration::zero();
    if (cost > capacity_ || rate_ <= 0) return Duration::max();
    const double ns = std::ceil(deficit / rate_);
    if (ns >= static_cast<double>(Duration::max().count())) return Duration::max();
    return Duration(static_cast<Duration::rep>(ns));
  }

  // Whole and fractional tokens there now (negative while in debt).
  double available(Clock::time_point now) {
    refill(now);
    return level_ / kNano;
  }

  double rate() const { return rate_; }
  double burst() const { return capacity_ / kNano; }

 private:
  static constexpr double kNano = 1e9;
  static double nanoTokens(double tokens) { return tokens * kNano; }

  void refill(Clock::time_point now) {
    if (!started_) {
      started_ = true;
      last_ = now;
      return;
    }
    if (now <= last_) return;  // a clock that stood still (or a caller's older time point)
    const double elapsed_ns = static_cast<double>((now - last_).count());
    last_ = now;
    if (level_ < capacity_) level_ = std::min(capacity_, level_ + elapsed_ns * rate_);
  }

  double rate_;      // tokens per second, which is nano-tokens per nanosecond
  double capacity_;  // nano-tokens
  double level_;     // nano-tokens
  Clock::time_point last_{};
  bool started_ = false;  // the first call only notes the time: the bucket starts full
};

}  // namespace wsb::ratelimit
