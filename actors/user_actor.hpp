// One actor per connected user on this node: it owns the user's connections
// (the per-user connection limit) and the per-user rate limit on stored events.
//
//   (register_atom, conn)              -> caf::actor (itself) | too_many_connections
//   (publish_atom, channel, draft)     -> uint64_t event_id (from the channel) | rate_limited
//   (kick_atom, code)                  -> uint32_t: closes every connection with `code`
//   (idle_atom)                        the hub agrees it may stop
#pragma once

#include <string>

#include <caf/fwd.hpp>

#include "core/config.hpp"

namespace sb {

caf::actor spawn_user(caf::event_based_actor* parent, caf::actor hub, std::string user_id,
                      const limits_config& limits);

}  // namespace sb
