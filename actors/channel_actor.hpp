// One actor per active channel on this node: members and presence, typing,
// sequencing and durable append of stored events, replay, and fan-out. An
// event is rendered once and the same bytes are queued on every member's
// socket, with no actor hop per receiver; it is fanned out and acknowledged
// only once the event log has it on disk.
//
//   (join_atom, join_request)       -> joined          user_joined on a first connection
//   (leave_atom, conn)              -> channel_position user_left on a last connection
//   (publish_atom, draft)           -> (uint64_t event_id, epoch) | forbidden | not_found | storage_failed
//   (typing_atom, user_ref, bool)   to all but the typist's own connections
//   (presence_atom)                 -> std::vector<presence_entry>
//   (replay_atom, conn, since, id)  replay to one member, then replay_complete
//   (history_atom, history_query)   -> history_page
//   (filter_atom, conn, types, add) -> channel_position: change a member's notification filter
//   (appended_atom, error)          from the event log's writer thread
//   (linger_atom)                   from itself, a while after the last member left
//   (idle_atom)                     the hub agrees it may stop
#pragma once

#include <string>

#include <caf/fwd.hpp>

#include "core/config.hpp"

namespace sb {

class event_log;

caf::actor spawn_channel(caf::event_based_actor* parent, caf::actor hub, std::string name,
                         const namespace_config& ns, event_log* log);

}  // namespace sb
