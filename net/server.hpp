// The network side of a node: a Boost.Beast HTTP server on its own Asio
// threads that upgrades WebSocket requests on the configured routes and hands
// each authenticated socket to a connection actor.
#pragma once

#include <cstdint>
#include <memory>

#include "actors/node.hpp"
#include "core/config.hpp"

namespace sb {

class server {
 public:
  server(const config& cfg, actor_node& node);
  ~server();

  // Binds the listening socket; returns the port (useful with port 0).
  // Throws std::runtime_error saying why it could not bind.
  uint16_t listen();

  // Serves until SIGTERM or SIGINT, then closes every socket (1001 on
  // WebSockets) and returns once they are all gone.
  void run();

  struct impl;  // shared with the sessions in server.cpp

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace sb
