// What the admin interface (sbctl) asks the actors and what each node
// answers: plain structs, free of CAF so that net/ can render them. They
// cross nodes, so messages.hpp gives each an `inspect`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sb {

enum class admin_kind : uint8_t {
  summary,   // the node's counts only
  channels,  // channel_list; arg: a name prefix
  users,     // users and connection_list; arg: one user id (empty: all)
  actors,    // actors; arg: a kind (empty: all)
  actor,     // actors with their state dump; arg: an actor id
};

struct admin_query {
  admin_kind kind = admin_kind::summary;
  std::string arg;
  std::string node;  // the one node to ask; empty: every node (actors: this one)
};

// One line of an actor's state dump.
struct admin_field {
  std::string key;
  std::string value;
};

// An actor as the admin interface lists it. Ids: hub, replica, membership,
// channel:NAME, user:ID, conn:ID (a connection id is per node).
struct actor_stats {
  std::string kind;  // hub, replica, membership, channel, user, connection
  std::string id;
  uint64_t caf_id = 0;
  int64_t mailbox = -1;  // -1: the actor does not report it
  int64_t handled = -1;
  std::vector<admin_field> fields;  // for admin_kind::actor only
};

// A channel actor on one node.
struct channel_stats {
  std::string name;
  std::string role;  // primary or follower
  uint32_t members = 0;  // connections on this node
  std::string epoch;
  uint64_t last_event_id = 0;
  std::string owner;
  std::vector<std::string> replicas;
  double events_per_second = 0;  // primary only: over its recent events
};

// A user actor on one node, with its rate-limit bucket.
struct user_stats {
  std::string id;
  uint32_t connections = 0;  // on this node
  double tokens = 0;
  double rate = 0;
  double burst = 0;
};

struct connection_stats {
  uint64_t id = 0;
  std::string user;
  std::string remote;
  std::string route;
  int64_t opened_ms = 0;
  uint64_t queued_frames = 0;
  uint64_t queued_bytes = 0;
  std::vector<std::string> channels;
};

// One node's answer to an admin_query.
struct admin_report {
  std::string node;
  bool reachable = true;  // false: the node did not answer in time
  int64_t uptime_ms = 0;
  uint32_t connections = 0;
  uint32_t channels = 0;
  uint32_t owned = 0;  // channels this node is the owner of
  std::vector<channel_stats> channel_list;
  std::vector<user_stats> users;
  std::vector<connection_stats> connection_list;
  std::vector<actor_stats> actors;
};

}  // namespace sb
