// This node as a replica: it appends the events primaries send it to its
// own event log (acknowledging once durable), and tells a new owner what it
// holds of a channel. One per node, spawned by the hub.
//
//   (replicate_atom, replica_batch)             -> uint64_t last event id, once durable
//                                                  | not_owner: the sender does not own the channel here
//   (view_atom, view_ptr)                       who owns what
//   (sync_atom, channel, node, epoch, since, upto) -> sync_reply (events up to `upto`), once
//                                                  this node's appends of the channel under way are durable
//   (appended_atom, uint64_t ticket, error)     from the event log's writer thread
#pragma once

#include <string>

#include <caf/fwd.hpp>

#include "actors/messages.hpp"

namespace sb {

class event_log;

caf::actor spawn_replica(caf::event_based_actor* parent, event_log* log, std::string node_id);

// What the log holds of `channel` for a new owner at (`epoch`, `since`):
// the events after `since`, or all of them when the epochs differ, up to
// `upto` (a former primary's unacknowledged tail is not offered).
sync_reply read_for_sync(event_log& log, const std::string& channel, const std::string& node,
                         const std::string& epoch, uint64_t since, uint64_t upto);

}  // namespace sb
