// One actor per authenticated socket: it registers with the user actor,
// joins the route's channels, then turns the client's commands into requests
// to its user and channel actors and their answers into acks and errors.
#pragma once

#include <caf/fwd.hpp>

#include "actors/node.hpp"

namespace sb {

caf::actor spawn_connection(caf::actor_system& sys, caf::actor hub, const config& cfg,
                            connection_args args);

}  // namespace sb
