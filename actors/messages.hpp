// The protocol between Switchboard's actors, in one place.
//
//   session (net/) --command--> connection_actor
//   connection_actor --connect--> hub --register--> user_actor    (limit: 4008)
//   connection_actor --join-----> hub --join------> channel_actor (presence, replay)
//   connection_actor --publish--> user_actor (rate limit) --publish--> channel_actor
//   connection_actor --typing/presence/leave/replay/history/filter--> channel_actor
//   server API (node) --api_job--> bridge --publish/history/presence--> hub --> channel_actor
//   channel_actor --append--> event log (writer thread) --appended--> channel_actor
//   channel_actor ==frames==> outbound queues of its members (no actor hop)
//   user_actor / channel_actor --idle--> hub, which stops them once unused
//   membership (cluster/) <--hello--> membership of every other node (CAF middleman)
#pragma once

#include <functional>

#include <caf/all.hpp>

#include "core/event.hpp"
#include "net/outbound.hpp"
#include "net/wire.hpp"

namespace sb {

// --- atoms (at most 10 characters) ---
using connect_atom = caf::connect_atom;
using join_atom = caf::join_atom;
using leave_atom = caf::leave_atom;
using register_atom = caf::atom_constant<caf::atom("register")>;
using publish_atom = caf::publish_atom;
using typing_atom = caf::atom_constant<caf::atom("typing")>;
using presence_atom = caf::atom_constant<caf::atom("presence")>;
using idle_atom = caf::atom_constant<caf::atom("idle")>;
using channel_atom = caf::atom_constant<caf::atom("channel")>;
using user_atom = caf::atom_constant<caf::atom("user")>;
using closed_atom = caf::atom_constant<caf::atom("closed")>;
using replay_atom = caf::atom_constant<caf::atom("replay")>;
using history_atom = caf::atom_constant<caf::atom("history")>;
using filter_atom = caf::atom_constant<caf::atom("filter")>;
using appended_atom = caf::atom_constant<caf::atom("appended")>;
using api_atom = caf::atom_constant<caf::atom("api")>;  // forwarded by the hub for the server API
using kick_atom = caf::atom_constant<caf::atom("kick")>;
using linger_atom = caf::atom_constant<caf::atom("linger")>;
using hello_atom = caf::atom_constant<caf::atom("hello")>;  // cluster: a peer introduces itself
using tick_atom = caf::tick_atom;

// A connection as a channel sees it: where to put frames and whose it is.
struct member {
  caf::actor connection;
  outbound_ptr out;
  user_ref user;
  std::vector<std::string> types;  // notification filter: event types wanted (empty: all)
};

// A connection joining a channel, optionally replaying from a position.
struct join_request {
  member who;
  std::optional<uint64_t> since;  // replay events after this id, then replay_complete
  std::string epoch;              // the client's epoch for `since`; another one is a gap
  std::string reply_id;           // the client frame's id, for subscribed/replay_complete
  bool announce = false;          // send `subscribed` before the replay (multiplex)
};

struct history_query {
  std::optional<uint64_t> since;   // the oldest `limit` after it
  std::optional<uint64_t> before;  // else the newest `limit` before it (or the newest)
  std::size_t limit = 50;
};

struct history_page {
  std::string epoch;
  std::vector<std::string> payloads;  // event JSON, oldest first
  bool has_more = false;
};

// The answer to a join: the channel's handle and its position.
struct joined {
  caf::actor channel;
  wire::channel_position position;
};

// Work for the node's API bridge actor: a request to make on behalf of a
// caller outside the actor system (the HTTP server), run by the bridge.
using api_job = std::function<void(caf::event_based_actor*)>;

// Failures reported to a requester, mapped onto PROTOCOL error codes and
// close codes by the connection actor.
enum class sb_error : uint8_t {
  none = 0,
  too_many_connections,  // close 4008
  rate_limited,
  forbidden,
  not_found,
  storage_failed,
};

inline caf::error make_error(sb_error x) {
  return {static_cast<uint8_t>(x), caf::atom("sb")};
}

// The PROTOCOL error code and message of an sb_error; code is nullptr for
// any other error.
struct error_text {
  const char* code = nullptr;
  const char* message = nullptr;
};

inline error_text describe(const caf::error& e) {
  if (e.category() != caf::atom("sb")) return {};
  switch (static_cast<sb_error>(e.code())) {
    case sb_error::too_many_connections:
      return {"too_many_connections", "too many connections for this user"};
    case sb_error::rate_limited:
      return {"rate_limited", "too many events from this user, slow down"};
    case sb_error::forbidden:
      return {"forbidden", "only the sender, an admin or a moderator may do that"};
    case sb_error::not_found:
      return {"not_found", "no such message in this channel"};
    case sb_error::storage_failed:
      return {"internal_error", "the event could not be stored, try again"};
    case sb_error::none:
      break;
  }
  return {};
}

}  // namespace sb

// These carry pointers to node-local objects (outbound queues, shared frames)
// and are only ever sent between actors of one node.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::api_job)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::member)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::join_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::history_query)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::history_page)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::joined)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::draft)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::user_ref)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::wire::command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::wire::channel_position)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<sb::wire::presence_entry>)
