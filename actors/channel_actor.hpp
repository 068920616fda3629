// One actor per active channel on each node that uses it. On the channel's
// owner it is the primary: it sequences events, makes them durable (on its
// disk and its replicas), fans them out to its members and pushes them once
// to each follower. On any other node with members it is a follower: it
// forwards to the primary and fans the pushed events out locally. An event
// is rendered once per node and the same bytes are queued on every member's
// socket, with no actor hop per receiver.
//
// From connections, the hub and the server API (either role):
//   (join_atom, join_request)       -> joined          user_joined on a first connection anywhere
//   (leave_atom, conn)              -> channel_position user_left on a last connection anywhere
//   (publish_atom, draft)           -> (uint64_t event_id, epoch) | forbidden | not_found | storage_failed
//   (typing_atom, user_ref, bool)   to all but the typist's own connections, on every node
//   (presence_atom)                 -> std::vector<presence_entry>
//   (replay_atom, conn, since, id)  replay to one member, then replay_complete
//   (history_atom, history_query)   -> history_page
//   (filter_atom, conn, types, add) -> channel_position: change a member's notification filter
// Between nodes (see messages.hpp):
//   (follow_atom, follower, node, since, epoch, users)     -> follow_reply   (primary)
//   (presence_atom, user_ref, uint32_t connections)        a follower's count (primary)
//   (replay_atom, since, epoch, types)                     -> replay_page    (primary)
//   (sync_atom, node, epoch, since)                        -> sync_reply: a new owner takes over
//   (push_atom, epoch, records) / (push_atom, typing_atom, ...) / (push_atom, presence_atom, ...)
//                                                          from the primary (follower)
// Local:
//   (view_atom, view_ptr)           the hub: members changed, ownership may move
//   (appended_atom, error)          from the event log's writer thread
//   (retry_atom, write_no)          from itself: replicate again
//   (follow_atom)                   from itself: look for the primary again
//   (linger_atom)                   from itself, a while after the last member left
//   (idle_atom)                     the hub agrees it may stop
#pragma once

#include <string>

#include <caf/fwd.hpp>

#include "actors/messages.hpp"
#include "core/config.hpp"

namespace sb {

class event_log;

caf::actor spawn_channel(caf::event_based_actor* parent, caf::actor hub, caf::actor replica,
                         std::string name, const namespace_config& ns, event_log* log,
                         const config& cfg, view_ptr view);

}  // namespace sb
