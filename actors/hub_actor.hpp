// The hub: this node's directory of channel and user actors. It spawns them
// on first use, forwards joins, registrations and server-API requests to
// them, and retires them once they report idle with no request in flight.
//
//   (connect_atom, user_id, conn)               -> user actor | too_many_connections
//   (join_atom, channel, join_request)          -> joined
//   (api_atom, publish_atom, channel, draft)    -> (uint64_t event_id, epoch)
//   (api_atom, history_atom, channel, query)    -> history_page
//   (api_atom, presence_atom, channel)          -> std::vector<presence_entry>
//   (kick_atom, user_id, code)                  -> uint32_t connections closed
#pragma once

#include <caf/fwd.hpp>

#include "core/config.hpp"

namespace sb {

class event_log;

caf::actor spawn_hub(caf::actor_system& sys, const config& cfg, event_log* log);

}  // namespace sb
