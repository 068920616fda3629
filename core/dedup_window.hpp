// Remembers which event a client frame id (or a backend's idempotency key)
// produced, for a fixed window, so that a resend of the same id (PROTOCOL
// section 4: same user, same channel, within 10 minutes) is answered with the
// first event_id instead of being stored again.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include <boost/container/deque.hpp>

namespace sb {

class dedup_window {
 public:
  // Clients' keys are bounded by their rate limit, backends' are not: past
  // `max_keys` the oldest key is forgotten early, so that a backend
  // publishing fast to one channel cannot grow it without bound.
  static constexpr std::size_t max_keys = 100000;

  explicit dedup_window(int64_t window_ms) : window_ms_(window_ms) {}

  // A backend's publish has no user: its key is NUL and the idempotency key,
  // printable ASCII (net/api.cpp). A client's key has its first NUL after a
  // non-empty user id, so the two kinds never collide.
  static std::string key(const std::string& user_id, const std::string& client_id) {
    return user_id + '\0' + client_id;
  }

  std::optional<uint64_t> find(const std::string& key, int64_t now_ms) {
    expire(now_ms);
    auto it = ids_.find(key);
    if (it == ids_.end()) return std::nullopt;
    return it->second;
  }

  void remember(const std::string& key, uint64_t event_id, int64_t now_ms) {
    expire(now_ms);
    if (!ids_.emplace(key, event_id).second) return;
    order_.push_back({now_ms, key});
    if (order_.size() > max_keys) pop_oldest();
  }

  // Forgets a key whose event was never stored (the append failed).
  void forget(const std::string& key) { ids_.erase(key); }

  std::size_t size() const { return ids_.size(); }

 private:
  void expire(int64_t now_ms) {
    while (!order_.empty() && order_.front().first <= now_ms - window_ms_) pop_oldest();
  }

  void pop_oldest() {
    ids_.erase(order_.front().second);
    order_.pop_front();
  }

  int64_t window_ms_;
  std::unordered_map<std::string, uint64_t> ids_;
  // Oldest first. Boost's deque allocates nothing while empty (std::deque
  // takes about 600 bytes at once), and most channels never see a frame id.
  boost::container::deque<std::pair<int64_t, std::string>> order_;
};

}  // namespace sb
