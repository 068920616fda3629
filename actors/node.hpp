// The actor side of a node, as the network layer sees it: it opens one
// connection actor per authenticated socket. No CAF types leak out of here,
// so the Beast translation unit stays free of CAF's headers.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/admin_report.hpp"
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
  std::map<std::string, uint64_t> positions;  // replay on connect: channel -> last seen id
  std::string remote;                 // peer address, for logs
  std::string path;                   // route path, for logs
  outbound_ptr out;
  bool observer = false;  // `sbctl tail`: one channel, events only, not a user's connection
};

// A session's handle on its connection actor.
class connection_link {
 public:
  virtual ~connection_link() = default;
  virtual void command(wire::command c) = 0;
  // The socket is gone: the actor leaves its channels and stops.
  virtual void closed() = 0;
};

// Answers for the server API. `error` is a PROTOCOL error code (empty on
// success); the callbacks run on an actor thread.
struct api_published {
  std::string channel;
  uint64_t event_id = 0;
  std::string epoch;
  std::string error;
};

struct api_history {
  std::string epoch;
  std::vector<std::string> payloads;  // event JSON, oldest first
  bool has_more = false;
  std::string error;
};

struct api_member {
  std::string node;
  std::string address;  // cluster host:port; empty for a node without a cluster
  bool up = false;
  bool draining = false;
  bool self = false;
  int64_t since_ms = 0;
};

struct api_presence {
  std::vector<wire::presence_entry> users;
  std::string error;
};

// Where a channel lives, as the owner reports it.
struct api_channel {
  std::string epoch;
  uint64_t last_event_id = 0;
  std::string owner;
  std::vector<std::string> replicas;
  std::string error;
};

class actor_node {
 public:
  // Opens the event log under cfg.data_dir; throws storage_error on failure.
  explicit actor_node(const config& cfg);
  ~actor_node();

  std::unique_ptr<connection_link> open(connection_args args);

  void publish(const std::string& channel, draft d, std::function<void(api_published)> done);
  void history(const std::string& channel, std::optional<uint64_t> since,
               std::optional<uint64_t> before, std::size_t limit,
               std::function<void(api_history)> done);
  void presence(const std::string& channel, std::function<void(api_presence)> done);
  // This node and every cluster member it knows, with their state.
  void members(std::function<void(std::vector<api_member>)> done);

  void channel(const std::string& channel, std::function<void(api_channel)> done);

  // Whether this node is part of a cluster.
  bool clustered() const;

  // Hands this node's channels to the other members (it stops owning any)
  // and calls `done` once they have had time to take them over.
  void drain(std::function<void()> done);

  // Whether this node drains (SIGTERM or the admin interface).
  bool draining() const;

  // Asks node `node` (this one or another member) to drain without
  // stopping: its clients are closed with 1001 once the channels moved.
  // `done` gets "" or a PROTOCOL-style error code (not_found, unavailable).
  void drain_node(const std::string& node, std::function<void(std::string)> done);

  // The admin interface: each node's report (none when the hub failed).
  void admin(admin_query q, std::function<void(std::optional<std::vector<admin_report>>)> done);

  // Closes the user's connections with 4005; reports how many there were.
  void disconnect(const std::string& user_id, std::function<void(uint32_t)> done);

  // Stops every actor; call once all sockets are closed.
  void shutdown();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sb
