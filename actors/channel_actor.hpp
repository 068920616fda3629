// One actor per active channel on this node: members and presence, typing,
// sequencing of stored events, and fan-out. A frame is rendered once and the
// same bytes are queued on every member's socket, with no actor hop per
// receiver.
//
//   (join_atom, member)            -> joined          user_joined on a first connection
//   (leave_atom, conn)             -> channel_position user_left on a last connection
//   (publish_atom, draft)          -> uint64_t event_id | forbidden | not_found
//   (typing_atom, user_ref, bool)  to all but the typist's own connections
//   (presence_atom)                -> std::vector<presence_entry>
//   (idle_atom)                    the hub agrees it may stop
#pragma once

#include <string>

#include <caf/fwd.hpp>

#include "core/config.hpp"

namespace sb {

caf::actor spawn_channel(caf::event_based_actor* parent, caf::actor hub, std::string name,
                         const namespace_config& ns);

}  // namespace sb
