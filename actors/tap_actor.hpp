// A tap: `sbctl tail` on a channel. It joins the channel as an observer
// member (it gets the events, replay included, and is not present to
// anyone), starts its stream with `subscribed`, and leaves when the stream
// closes.
//
//   (closed_atom)   the stream is gone
#pragma once

#include <caf/fwd.hpp>

#include "actors/node.hpp"

namespace sb {

// args.channels holds the one channel; args.positions its replay position.
caf::actor spawn_tap(caf::actor_system& sys, caf::actor hub, connection_args args);

}  // namespace sb
