// A token bucket: `rate` tokens a second, holding at most `burst`.
#pragma once

#include <algorithm>
#include <chrono>

namespace sb {

class rate_limiter {
 public:
  using clock = std::chrono::steady_clock;

  rate_limiter(double rate, double burst, clock::time_point now = clock::now())
      : rate_(rate), burst_(burst), tokens_(burst), last_(now) {}

  // Takes one token if there is one.
  bool try_take(clock::time_point now = clock::now()) {
    refill(now);
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

  double tokens(clock::time_point now = clock::now()) {
    refill(now);
    return tokens_;
  }

 private:
  void refill(clock::time_point now) {
    if (now <= last_) return;
    std::chrono::duration<double> dt = now - last_;
    tokens_ = std::min(burst_, tokens_ + dt.count() * rate_);
    last_ = now;
  }

  double rate_;
  double burst_;
  double tokens_;
  clock::time_point last_;
};

}  // namespace sb
