// One actor per connected user on this node: it owns the user's connections,
// the per-user rate limit on stored events, the user's request bucket (which
// its connections share) and the count of channels they subscribed to. The
// connection limit is cluster-wide: one node (by rendezvous hashing on the
// user id) counts the user's connections on every node, and the others claim
// room from it.
//
//   (register_atom, conn)              -> (caf::actor (itself), request_bucket_ptr) | too_many_connections
//   (slot_atom, join_atom, conn)       -> bool: one more channel for conn | too_many_channels
//   (slot_atom, leave_atom, conn)      conn left one of those channels
//   (claim_atom, node, user actor, count) -> bool: room for another node's count? (the counting node)
//   (count_atom, node, user actor, count) another node's count, now (the counting node)
//   (view_atom, view_ptr)              the counting node may have changed
//   (publish_atom, channel, draft)     -> uint64_t event_id (from the channel) | rate_limited
//   (kick_atom, code)                  -> uint32_t: closes every connection with `code`
//   (idle_atom)                        the hub agrees it may stop
#pragma once

#include <string>

#include <caf/fwd.hpp>

#include "actors/messages.hpp"
#include "core/config.hpp"

namespace sb {

caf::actor spawn_user(caf::event_based_actor* parent, caf::actor hub, std::string user_id,
                      const config& cfg, view_ptr view);

}  // namespace sb
