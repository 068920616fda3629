// A connection's notification filter (/ws/notifications/): the event types
// it wants, empty for all. A set: a filter is looked up once per delivered
// event, and changed by frames that may list thousands of types.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/event.hpp"

namespace sb {

using type_filter = std::set<std::string, std::less<>>;

inline bool wants(const type_filter& types, const event& e) {
  return types.empty() || types.find(event_type(e.body)) != types.end();
}

// `now` with `types` added (or removed), or nothing when that would hold
// more than `most`: such a change is refused whole.
inline std::optional<type_filter> changed_filter(const type_filter& now,
                                                 const std::vector<std::string>& types, bool add,
                                                 std::size_t most) {
  auto next = now;
  for (const auto& t : types) {
    if (add)
      next.insert(t);
    else
      next.erase(t);
  }
  if (next.size() > most) return std::nullopt;
  return next;
}

}  // namespace sb
