// The protocol between Switchboard's actors, in one place.
//
//   session (net/) --command--> connection_actor
//   connection_actor --connect--> hub --register--> user_actor    (limit: 4008)
//   connection_actor --join-----> hub --join------> channel_actor (presence, replay)
//   connection_actor --publish--> user_actor (rate limit) --publish--> channel_actor
//   connection_actor --slot (channels per user)--> user_actor
//   connection_actor --typing/presence/leave/replay/history/filter--> channel_actor
//   server API (node) --api_job--> bridge --publish/history/presence--> hub --> channel_actor
//   channel_actor --append--> event log (writer thread) --appended--> channel_actor
//   channel_actor ==frames==> outbound queues of its members (no actor hop)
//   user_actor / channel_actor --idle--> hub, which stops them once unused
//   membership (cluster/) <--hello--> membership of every other node (CAF middleman)
//   membership --view--> hub --view--> channel and user actors (who owns what)
//
// Across nodes (CAF middleman; these types have `inspect` and are registered
// on every node by register_cluster_types):
//   follower channel --follow--> owner's hub --> primary channel -> follow_reply
//   follower channel --publish/typing/presence/history/replay--> primary
//   primary --push (durable events, typing, user_joined/left)--> each follower, once per node
//   primary --replicate (replica_batch)--> each replica's hub --> its event log
//   new primary --sync (log_position)--> every other node's hub (or channel) -> sync_reply
//   user actor --claim/count--> counting node's hub --> its user actor (cluster-wide connection limit)
//
// The admin interface (sbctl):
//   node --admin_query--> hub --> admin actor --> every other node's hub --> its admin actor
//   admin actor --admin--> each actor of its node: actor_stats, channel_stats, user_answer,
//   connection_stats (each actor reports its own mailbox and handled count)
#pragma once

#include <algorithm>
#include <functional>
#include <memory>

#include <caf/all.hpp>

#include "actors/admin_report.hpp"
#include "cluster/ownership.hpp"
#include "core/event.hpp"
#include "core/request_bucket.hpp"
#include "core/type_filter.hpp"
#include "net/outbound.hpp"
#include "net/wire.hpp"
#include "storage/event_log.hpp"

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
using view_atom = caf::atom_constant<caf::atom("view")>;
using follow_atom = caf::atom_constant<caf::atom("follow")>;
using push_atom = caf::atom_constant<caf::atom("push")>;
using replicate_atom = caf::atom_constant<caf::atom("replicate")>;
using sync_atom = caf::atom_constant<caf::atom("sync")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;
using claim_atom = caf::atom_constant<caf::atom("claim")>;
using count_atom = caf::atom_constant<caf::atom("count")>;
using drain_atom = caf::atom_constant<caf::atom("drain")>;
using info_atom = caf::atom_constant<caf::atom("info")>;
using admin_atom = caf::atom_constant<caf::atom("admin")>;  // the admin interface (sbctl)
using slot_atom = caf::atom_constant<caf::atom("slot")>;    // a subscription of the user's

// A connection as a channel sees it: where to put frames and whose it is.
struct member {
  caf::actor connection;
  outbound_ptr out;
  user_ref user;
  type_filter types;  // notification filter: event types wanted (empty: all)
  bool observer = false;  // `sbctl tail`: receives events, is not present
  bool replaying = false;  // live events skip it until its replay's last page
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

// --- the cluster ---

// A member as the actors see it: its id and its hub.
struct node_ref {
  std::string id;
  caf::actor hub;
};

// Who is up, as this node sees it. `owners` may own and replicate channels
// (up and not draining), sorted by id; `peers` are every up member but this
// node, draining ones included (a new owner asks them all for history).
struct cluster_view {
  std::string self;
  std::vector<node_ref> owners;
  std::vector<node_ref> peers;
  std::size_t members = 1;  // every node known to be in the cluster, up or not, this one included
  unsigned replication = 1;

  // The owners ranked for `key`: the owner first, then its replicas.
  std::vector<node_ref> rank(const std::string& key) const {
    std::vector<std::string> ids;
    for (const auto& n : owners) ids.push_back(n.id);
    std::vector<node_ref> out;
    for (const auto& id : rank_nodes(std::move(ids), key))
      for (const auto& n : owners)
        if (n.id == id) out.push_back(n);
    return out;
  }

  // Copies an event needs before it is acknowledged: `replication`, or the
  // member count when smaller. Members that are down still count: a node
  // cut off from the others must not acknowledge events on its own.
  std::size_t copies() const {
    return std::max<std::size_t>(1, std::min<std::size_t>(replication, members));
  }
};

using view_ptr = std::shared_ptr<const cluster_view>;

// A node's log of one channel, as a new owner compares it with the others'.
struct log_position {
  std::string epoch;  // empty: the node never had the channel
  uint64_t last_event_id = 0;
  std::vector<term_start> terms;
};

// A primary's events as a replica stores them. The replica appends them
// only if its log holds the primary's events up to `after`; otherwise it
// answers how far it does, and the primary sends it the rest first.
struct replica_batch {
  std::string from;  // the primary's node
  std::string channel;
  std::string epoch;
  term_id term;                   // the primary's: a replica refuses older terms
  std::vector<term_start> terms;  // the primary's history, through these records
  uint64_t after = 0;             // the records follow this id
  std::vector<log_record> records;
  std::vector<dedup_record> dedup;
  std::vector<log_record> rewrites;
};

// What a node holds of a channel, for a new owner choosing whose history
// to continue: its position, how far it agrees with the asker's log, and
// its events after that.
struct sync_reply {
  std::string node;
  std::string epoch;
  uint64_t last_event_id = 0;  // 0 and no epoch: the node never had the channel
  std::vector<term_start> terms;
  term_id newest;       // the newest term this node knows of the channel
  uint64_t agreed = 0;  // the asker's log holds the same events up to here
  std::vector<log_record> records;
  std::vector<dedup_record> dedup;
};

// The primary's answer to a follower: where the channel is, the events the
// follower missed since its last one, and who is present cluster-wide.
struct follow_reply {
  caf::actor primary;
  std::string epoch;
  uint64_t last_event_id = 0;
  std::vector<log_record> records;
  std::vector<wire::presence_entry> users;
};

// Events after a position, for a member of a follower replaying: one page,
// as much as the member's socket may queue at once.
struct replay_page {
  std::string epoch;
  uint64_t last_event_id = 0;
  std::vector<std::string> payloads;
  bool gap = false;
  uint64_t through = 0;  // the page covers the events up to this id
  bool more = false;     // the next page starts after `through`
};

// The hub's children as its admin actor sees them, handed over with each
// admin request so that the admin actor keeps no copy of the directory.
struct hub_snapshot {
  caf::actor hub;
  caf::actor replica;
  caf::actor membership;  // none for a single node
  view_ptr view;
  std::vector<std::pair<std::string, caf::actor>> channels;  // by name
  std::vector<std::pair<std::string, caf::actor>> users;     // by user id
};

// A user actor's answer to the admin actor: itself and its connections.
struct user_answer {
  user_stats stats;
  std::vector<caf::actor> connections;
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
  not_owner,  // a replica refuses a node that is not the channel's owner (any more)
  requests_limited,  // the user's request bucket (typing, presence, history, ...) is empty
  too_many_channels,  // the user's connections on this node are in as many channels as allowed
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
    case sb_error::not_owner:
      return {"internal_error", "the channel is moving between nodes, try again"};
    case sb_error::requests_limited:
      return {"rate_limited", "too many requests from this user, slow down"};
    case sb_error::too_many_channels:
      return {"limit_exceeded", "this user is in too many channels on this node"};
    case sb_error::none:
      break;
  }
  return {};
}

// --- serialization of what crosses nodes (CAF 0.17 inspect) ---

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_ref& x) {
  return f(caf::meta::type_name("user_ref"), x.id, x.numeric, x.name, x.role);
}

// std::optional is not inspectable in CAF 0.17: sent as a flag and a value.
struct optional_id {
  std::optional<uint64_t>& value;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, optional_id& x) {
  bool has = x.value.has_value();
  uint64_t v = x.value.value_or(0);
  auto store = caf::detail::make_scope_guard([&] {
    if constexpr (Inspector::writes_state) x.value = has ? std::optional<uint64_t>{v} : std::nullopt;
  });
  return f(has, v);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, draft& x) {
  optional_id reply_to{x.reply_to};
  return f(caf::meta::type_name("draft"), x.kind, x.user, x.client_id, x.content, reply_to,
           x.message_id, x.emoji, x.remove, x.app_type, x.data_json);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, history_query& x) {
  optional_id since{x.since}, before{x.before};
  return f(caf::meta::type_name("history_query"), since, before, x.limit);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, history_page& x) {
  return f(caf::meta::type_name("history_page"), x.epoch, x.payloads, x.has_more);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, log_record& x) {
  return f(caf::meta::type_name("log_record"), x.event_id, x.timestamp_ms, x.payload);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, dedup_record& x) {
  return f(caf::meta::type_name("dedup_record"), x.key, x.event_id, x.at_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, term_id& x) {
  return f(caf::meta::type_name("term_id"), x.n, x.node);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, term_start& x) {
  return f(caf::meta::type_name("term_start"), x.term, x.first_id);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, log_position& x) {
  return f(caf::meta::type_name("log_position"), x.epoch, x.last_event_id, x.terms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replica_batch& x) {
  return f(caf::meta::type_name("replica_batch"), x.from, x.channel, x.epoch, x.term, x.terms,
           x.after, x.records, x.dedup, x.rewrites);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sync_reply& x) {
  return f(caf::meta::type_name("sync_reply"), x.node, x.epoch, x.last_event_id, x.terms,
           x.newest, x.agreed, x.records, x.dedup);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, follow_reply& x) {
  return f(caf::meta::type_name("follow_reply"), x.primary, x.epoch, x.last_event_id, x.records,
           x.users);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replay_page& x) {
  return f(caf::meta::type_name("replay_page"), x.epoch, x.last_event_id, x.payloads, x.gap,
           x.through, x.more);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_query& x) {
  return f(caf::meta::type_name("admin_query"), x.kind, x.arg, x.node);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_field& x) {
  return f(caf::meta::type_name("admin_field"), x.key, x.value);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, actor_stats& x) {
  return f(caf::meta::type_name("actor_stats"), x.kind, x.id, x.caf_id, x.mailbox, x.handled,
           x.fields);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, channel_stats& x) {
  return f(caf::meta::type_name("channel_stats"), x.name, x.role, x.members, x.epoch,
           x.last_event_id, x.owner, x.replicas, x.events_per_second);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_stats& x) {
  return f(caf::meta::type_name("user_stats"), x.id, x.connections, x.tokens, x.rate, x.burst);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, connection_stats& x) {
  return f(caf::meta::type_name("connection_stats"), x.id, x.user, x.remote, x.route,
           x.opened_ms, x.queued_frames, x.queued_bytes, x.channels);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_report& x) {
  return f(caf::meta::type_name("admin_report"), x.node, x.reachable, x.uptime_ms,
           x.connections, x.channels, x.owned, x.channel_list, x.users, x.connection_list,
           x.actors);
}

// Registers every type above with CAF; every node of a cluster must.
void register_cluster_types(caf::actor_system_config& cfg);

}  // namespace sb

namespace sb::wire {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, presence_entry& x) {
  return f(caf::meta::type_name("presence_entry"), x.user, x.connections);
}

}  // namespace sb::wire

// These carry pointers to node-local objects (outbound queues, shared frames)
// and are only ever sent between actors of one node.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::api_job)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::member)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::join_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::joined)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::view_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::request_bucket_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::hub_snapshot)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::user_answer)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::wire::command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::wire::channel_position)
