// One typing state per user of a channel. A client that sends `typing` on
// every keystroke (or an attacker sending thousands) reaches the others once
// per state change, and again only after a quiet while: the same state
// repeated within the window is not news.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

namespace sb {

class typing_states {
 public:
  explicit typing_states(int64_t window_ms) : window_ms_(window_ms) {}

  // Whether `user`'s `is_typing` at `now_ms` is to be broadcast; notes it if so.
  bool changed(const std::string& user, bool is_typing, int64_t now_ms) {
    auto [it, fresh] = last_.try_emplace(user, sent{is_typing, now_ms});
    if (fresh) return true;
    if (it->second.is_typing == is_typing && now_ms - it->second.at_ms < window_ms_) return false;
    it->second = {is_typing, now_ms};
    return true;
  }

  // The user left the channel: their next state is news again.
  void forget(const std::string& user) { last_.erase(user); }

  std::size_t size() const { return last_.size(); }

 private:
  struct sent {
    bool is_typing;
    int64_t at_ms;
  };
  int64_t window_ms_;
  std::unordered_map<std::string, sent> last_;
};

}  // namespace sb
