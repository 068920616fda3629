// A user's bucket for requests (typing, presence, history, replay_request,
// subscribe), apart from the stored events' one. The user actor makes it;
// the user's connection actors on the node share it. Taking a token is a
// short locked step rather than a round trip to the user actor, so a flood
// of requests is refused without queueing a message per frame.
#pragma once

#include <memory>
#include <mutex>

#include "core/rate_limiter.hpp"

namespace sb {

class request_bucket {
 public:
  request_bucket(double rate, double burst) : bucket_(rate, burst) {}

  bool try_take() {
    std::lock_guard lk(mu_);
    return bucket_.try_take();
  }

  double tokens() {
    std::lock_guard lk(mu_);
    return bucket_.tokens();
  }

 private:
  std::mutex mu_;
  rate_limiter bucket_;
};

using request_bucket_ptr = std::shared_ptr<request_bucket>;

}  // namespace sb
