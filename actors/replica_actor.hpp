// This node as a replica: it appends the events primaries send it to its
// own event log (acknowledging once durable), and tells a new owner what it
// holds of a channel. One per node, spawned by the hub.
//
//   (replicate_atom, replica_batch)          -> uint64_t: the batch's last event id, once durable;
//                                               or less: how far this log agrees with the
//                                               primary's (send the events after that first)
//                                               | not_owner: the sender does not own the channel here
//   (view_atom, view_ptr)                    who owns what
//   (sync_atom, channel, log_position asker, upto) -> sync_reply (events up to `upto`), once
//                                               this node's appends of the channel under way are durable
//   (appended_atom, uint64_t ticket, error)     from the event log's writer thread
#pragma once

#include <string>

#include <caf/fwd.hpp>

#include "actors/messages.hpp"

namespace sb {

class event_log;

caf::actor spawn_replica(caf::event_based_actor* parent, event_log* log, std::string node_id);

// What the log holds of `channel` for a new owner whose log is at `asker`:
// the events after the last one both logs agree on (all of them when the
// epochs differ), up to `upto` when the log ends in this node's own term
// (a former primary's unacknowledged tail is not offered).
sync_reply read_for_sync(event_log& log, const std::string& channel, const std::string& node,
                         const log_position& asker, uint64_t upto);

}  // namespace sb
