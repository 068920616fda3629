// Asks many actors the same question and collects what comes back in time.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include <caf/all.hpp>

namespace sb {

// Sends `xs...` to every target and calls `done` once each has answered or
// failed (a timeout, a dead actor): answers in target order, a failure as
// std::nullopt. `done` runs in `self`.
template <class T, class... Ts>
void gather(caf::event_based_actor* self, const std::vector<caf::actor>& targets,
            caf::timespan timeout, std::function<void(std::vector<std::optional<T>>)> done,
            const Ts&... xs) {
  if (targets.empty()) {
    done({});
    return;
  }
  struct tally {
    std::vector<std::optional<T>> got;
    std::size_t left;
  };
  auto t = std::make_shared<tally>(tally{std::vector<std::optional<T>>(targets.size()),
                                         targets.size()});
  auto settle = [t, done] {
    if (--t->left == 0) done(std::move(t->got));
  };
  for (std::size_t i = 0; i < targets.size(); ++i)
    self->request(targets[i], timeout, xs...)
        .then(
            [t, settle, i](T& x) {
              t->got[i] = std::move(x);
              settle();
            },
            [settle](caf::error&) { settle(); });
}

// The answers that came.
template <class T>
std::vector<T> answered(std::vector<std::optional<T>>& got) {
  std::vector<T> out;
  for (auto& x : got)
    if (x) out.push_back(std::move(*x));
  return out;
}

}  // namespace sb
