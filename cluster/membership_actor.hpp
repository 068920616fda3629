// Cluster membership over CAF's middleman: this node publishes its
// membership actor on the cluster port, dials the seeds and every member it
// learns of, and keeps each member's state. A member is down when its
// connection drops or stays silent past cluster.dead_after (CAF heartbeats);
// it is dialled again every heartbeat until it answers, so a restarted node
// or a healed partition rejoins by itself.
//
//   (hello_atom, node_id, cluster_addr, membership, hub, draining)  a peer introduces itself
//        -> (node_id, cluster_addr, known cluster addresses, their node ids, hub, draining)
//   (drain_atom)                      this node stops owning channels; tells every member
//   (drain_atom, node_id)             a member does the same
// It sends the hub a view_ptr (who may own channels) whenever that changes.
//   (get_atom)                                      -> std::vector<member_info>
//   (kick_atom, user_id, code)        close the user's connections on every
//        node: the local hub's and each up member's -> uint32_t closed in all
//   (kick_atom, user_id, code, true)  the same from a peer: this node only
#pragma once

#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include "core/config.hpp"

namespace sb {

struct member_info {
  std::string node;
  std::string address;  // cluster host:port
  bool up = false;
  bool draining = false;
  bool self = false;
  int64_t since_ms = 0;  // when it last changed state
};

// Spawns the membership actor and opens the cluster port (TLS unless
// cluster.insecure). Throws std::runtime_error when the port cannot be opened.
caf::actor spawn_membership(caf::actor_system& sys, const config& cfg, caf::actor hub);

}  // namespace sb

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<sb::member_info>)
