// The hub: this node's directory of channel and user actors. It spawns them
// on first use, forwards joins, registrations and server-API requests to
// them, and retires them once they report idle with no request in flight.
//
//   (connect_atom, user_id, conn)               -> user actor | too_many_connections
//   (join_atom, channel, join_request)          -> joined
//   (api_atom, publish_atom, channel, draft)    -> (uint64_t event_id, epoch)
//   (api_atom, history_atom, channel, query)    -> history_page
//   (api_atom, presence_atom, channel)          -> std::vector<presence_entry>
//   (api_atom, info_atom, channel)              -> (epoch, last_event_id, owner, replicas)
//   (kick_atom, user_id, code)                  -> uint32_t connections closed
//   (kick_atom, code)                           closes every connection of this node
// For the admin interface, passed on to the admin actor with a snapshot of the directory:
//   (admin_atom, admin_query, everywhere)       -> std::vector<admin_report>
//   (admin_atom, drain_atom, node_id)           -> bool
//   (admin_atom, with_fields)                   -> actor_stats of the hub
// API requests on a channel another node owns go to that node's hub.
// From the membership actor and other nodes:
//   (view_atom, view_ptr)                       passed on to every channel and user actor
//   (follow_atom, channel, follower, node, since, epoch, users) -> the channel's follow_reply
//   (sync_atom, channel, node, epoch, since)    -> sync_reply (the channel, or the replica actor)
//   (replicate_atom, replica_batch)             -> the replica actor
#pragma once

#include <caf/fwd.hpp>

#include "core/config.hpp"

namespace sb {

class event_log;

caf::actor spawn_hub(caf::actor_system& sys, const config& cfg, event_log* log, caf::actor admin);

}  // namespace sb
