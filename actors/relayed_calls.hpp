// Requests an actor passes on to another one for its current sender, and
// answers when the other one does. Not a CAF delegate: the answer would go
// straight to a node the other one may have no connection to, and CAF would
// route it through a third node (and drop that route when the third one
// dies). Calls are kept by target, so a target that goes down fails them at
// once: CAF never fails a request whose node died, and the sender would
// wait for the whole timeout.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <utility>

#include <caf/all.hpp>

namespace sb {

class relayed_calls {
 public:
  template <class... Rs, class Self, class... Ts>
  caf::response_promise relay(Self* self, const caf::actor& to, caf::timespan timeout,
                              Ts&&... xs) {
    auto rp = self->make_response_promise();
    auto key = to.address();
    auto id = ++last_;
    calls_[key][id] = rp;
    // `this` lives in the actor's state: its handlers never outlive it.
    self->request(to, timeout, std::forward<Ts>(xs)...)
        .then(
            [this, key, id](Rs&... rs) {
              if (auto p = take(key, id)) p->deliver(std::move(rs)...);
            },
            [this, key, id](caf::error& e) {
              if (auto p = take(key, id)) p->deliver(std::move(e));
            });
    return rp;
  }

  // `to` went down: its calls fail with `why` now.
  void fail(const caf::actor_addr& to, const caf::error& why) {
    auto it = calls_.find(to);
    if (it == calls_.end()) return;
    for (auto& [id, rp] : it->second) rp.deliver(why);
    calls_.erase(it);
  }

  std::size_t size() const {
    std::size_t n = 0;
    for (auto& [to, calls] : calls_) n += calls.size();
    return n;
  }

 private:
  std::optional<caf::response_promise> take(const caf::actor_addr& to, uint64_t id) {
    auto it = calls_.find(to);
    if (it == calls_.end()) return std::nullopt;
    auto call = it->second.find(id);
    if (call == it->second.end()) return std::nullopt;
    auto rp = std::move(call->second);
    it->second.erase(call);
    if (it->second.empty()) calls_.erase(it);
    return rp;
  }

  std::map<caf::actor_addr, std::map<uint64_t, caf::response_promise>> calls_;
  uint64_t last_ = 0;
};

}  // namespace sb
