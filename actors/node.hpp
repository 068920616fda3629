// The actor side of a node, as the network layer sees it: it opens one
// connection actor per authenticated socket. No CAF types leak out of here,
// so the Beast translation unit stays free of CAF's headers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/claims.hpp"
#include "core/config.hpp"
#include "net/outbound.hpp"
#include "net/wire.hpp"

namespace sb {

// What a session knows about a new, authenticated connection.
struct connection_args {
  uint64_t id = 0;
  claims token;
  std::vector<std::string> channels;  // the route's channels, access checked
  bool multiplex = false;             // the client may subscribe to more
  bool notification_filter = false;   // subscribe{notification_types} allowed
  std::string remote;                 // peer address, for logs
  std::string path;                   // route path, for logs
  outbound_ptr out;
};

// A session's handle on its connection actor.
class connection_link {
 public:
  virtual ~connection_link() = default;
  virtual void command(wire::command c) = 0;
  // The socket is gone: the actor leaves its channels and stops.
  virtual void closed() = 0;
};

class actor_node {
 public:
  explicit actor_node(const config& cfg);
  ~actor_node();

  std::unique_ptr<connection_link> open(connection_args args);

  // Stops every actor; call once all sockets are closed.
  void shutdown();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sb
