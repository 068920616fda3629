// The admin actor: answers the admin interface (sbctl) for its node. The
// hub hands it each request with a snapshot of its children; it asks them
// (and, for cluster-wide questions, every other node's hub) and gathers the
// answers, with a timeout so a busy actor or a silent node never hangs it.
//
//   (admin_query, everywhere, hub_snapshot)  -> std::vector<admin_report>, one per node
//        a node that did not answer in time is there with reachable = false
//   (drain_atom, node_id, hub_snapshot)      -> bool: that node (maybe this one) drains
#pragma once

#include <functional>

#include <caf/fwd.hpp>

#include "core/config.hpp"

namespace sb {

// `drain_self` makes this node drain: hand its channels over, close its
// clients with 1001, refuse new ones; the process keeps running.
caf::actor spawn_admin(caf::actor_system& sys, const config& cfg, std::function<void()> drain_self);

}  // namespace sb
