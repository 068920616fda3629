// A stateful actor that counts the messages it handles, for the admin
// interface: one increment per message, in the actor's own thread.
#pragma once

#include <cstdint>

#include <caf/invoke_message_result.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/admin_report.hpp"

namespace sb {

template <class State>
class counted_actor : public caf::stateful_actor<State> {
 public:
  using caf::stateful_actor<State>::stateful_actor;

  caf::invoke_message_result consume(caf::mailbox_element& x) override {
    auto result = caf::stateful_actor<State>::consume(x);
    if (result == caf::invoke_message_result::consumed) ++handled_;
    return result;
  }

  // Only from the actor's own handlers: the mailbox is read as its owner.
  actor_stats stats(std::string kind, std::string id) {
    return {std::move(kind), std::move(id), this->id(),
            static_cast<int64_t>(this->mailbox().size()), static_cast<int64_t>(handled_), {}};
  }

 private:
  uint64_t handled_ = 0;
};

}  // namespace sb
