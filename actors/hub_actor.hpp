// The hub: this node's directory of channel and user actors. It spawns them
// on first use, forwards joins and registrations to them, and retires them
// once they report idle with no request in flight.
#pragma once

#include <caf/fwd.hpp>

#include "core/config.hpp"

namespace sb {

caf::actor spawn_hub(caf::actor_system& sys, const config& cfg);

}  // namespace sb
