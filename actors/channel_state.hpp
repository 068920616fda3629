// The state of a channel actor, shared by its three parts:
//   channel_actor.cpp     members, presence, typing, replay and the behaviours
//   channel_primary.cpp   the owner's side: sequencing, durable append,
//                         replication, followers, handing the channel over
//   channel_follower.cpp  a non-owner's side: following the primary
// Internal to actors/; nothing else includes it.
#pragma once

#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/container/deque.hpp>

#include "actors/counted_actor.hpp"
#include "actors/messages.hpp"
#include "actors/relayed_calls.hpp"
#include "cluster/term_history.hpp"
#include "core/config.hpp"
#include "core/dedup_window.hpp"
#include "core/metrics.hpp"
#include "core/typing_states.hpp"

namespace sb {

struct cached_event {
  event e;
  frame_ptr live;
  frame_ptr replay;  // rendered on first replay
};

// An event with its id, waiting to be durable (and replicated).
struct pending_event {
  cached_event ev;
  std::vector<caf::response_promise> waiters;
  std::string dedup_key;
  std::optional<event> tombstone;  // the message a delete removes, content gone
};

// A node with members of this channel, as the primary sees it.
struct follower {
  caf::actor actor;
  std::string node;
  std::map<std::string, wire::presence_entry> users;  // its connections, by user id
};

// A new owner's sync request, answered once no write is under way here.
struct handoff {
  caf::response_promise rp;
  log_position asker;
};

// A member's replay under way, sent in pages: the next goes once the
// member's socket has taken the previous one, and live events skip the
// member until the last, which ends with replay_complete.
struct pending_replay {
  caf::actor_addr conn;
  outbound_ptr out;
  type_filter types;
  uint64_t since = 0;    // the next page starts after this id
  std::string epoch;     // the client's (before the first page), then the channel's
  std::string reply_id;
  bool gap = false;      // a page missed events that are no longer retained
  uint64_t ticket = 0;   // the page request or drain under way; 0: none (to be sent)
};

enum class channel_role { primary, follower };

struct channel_state {
  std::string name;
  std::string epoch;
  const namespace_config* ns = nullptr;  // the config's, alive as long as the node
  event_log* log = nullptr;
  caf::actor hub;
  caf::actor replica;  // this node's replica actor: answers sync requests
  view_ptr view;
  const config* cfg = nullptr;
  metrics::space* space = nullptr;  // this channel's namespace's figures
  channel_role role = channel_role::primary;
  bool ready = false;         // false while syncing (primary) or finding the primary (follower)
  uint64_t durable_id = 0;    // newest event durable and fanned out
  uint64_t assigned_id = 0;   // newest id given out (primary)
  std::vector<member> members;
  // Each member's place in `members` by connection id, kept once the room has
  // a few dozen: finding a leaving member by scanning made a disconnect of N
  // members cost N^2/2 comparisons (10,000 leaving one room: 0.5 s).
  std::unordered_map<caf::actor_id, std::size_t> member_at;
  // Primary: users present anywhere in the cluster, with their connections.
  // Follower: users with connections on this node.
  std::map<std::string, wire::presence_entry> presence;
  // Users the members were last told are present (user_joined without a
  // user_left since), on every node.
  std::map<std::string, user_ref> known;
  uint64_t forwarded = 0;  // handled messages forwarded by the hub
  bool linger_armed = false;

  // --- primary ---
  // Newest durable events. Boost's deque allocates nothing while empty (an
  // idle channel stays small); std::deque takes about 600 bytes at once.
  boost::container::deque<cached_event> recent;
  std::vector<pending_event> pending;   // not yet handed to the log
  std::vector<pending_event> inflight;  // being written and replicated
  dedup_window sent_ids{10 * 60 * 1000};
  typing_states typing{1000};  // each present user's last typing state broadcast
  term_id term;                        // this primary's
  term_history terms;                  // the log's, this primary's term included
  term_id newest_seen;                 // the newest term the last sync heard of
  bool established = false;            // replicas took this term: the local log may too
  // The local append waiting for that (a pointer: an idle channel stays small).
  std::unique_ptr<append_request> deferred;
  uint64_t sync_no = 0;                // the sync under way (a retry replaces it)
  log_position claim;                  // what this node offered in it
  bool claim_cut = false;              // ...cut back to what it acknowledged
  uint64_t write_no = 0;               // the write under way, to match replica answers
  bool written = false;                // the write under way is on the local disk
  std::set<std::string> copies;        // replicas that have the write under way
  std::unique_ptr<replica_batch> replicating;  // the write under way, as replicas get it
  std::vector<follower> followers;
  std::vector<handoff> handoffs;
  bool adopting = false;               // appending another node's newer history
  bool parked = false;                 // no peer to sync from yet (see sync_or_park)
  bool resync = false;                 // a node came back: sync again once the writes are done
  bool sequenced = false;              // has been the primary: its log may hold refused writes

  // --- follower ---
  caf::actor primary;
  relayed_calls relays;  // requests of this node's members under way at the primary
  std::string handed_to;                 // the node this primary handed the channel to
  int64_t handed_at_ms = 0;
  uint64_t last_ticket = 0;

  // --- both ---
  std::vector<pending_replay> replaying;  // members' replays under way

  cached_event* cached(uint64_t id) {
    if (recent.empty() || id < recent.front().e.event_id || id > recent.back().e.event_id)
      return nullptr;
    return &recent[id - recent.front().e.event_id];
  }

  bool writing() const { return !pending.empty() || !inflight.empty(); }

  bool busy() const {
    return !ready || !members.empty() || writing() || !followers.empty() || !handoffs.empty();
  }
};

using channel_actor = counted_actor<channel_state>;

// channel_actor.cpp
void report_if_idle(channel_actor* self);
void become_running(channel_actor* self);
void check_owner(channel_actor* self);
void become_waiting(channel_actor* self);
std::map<std::string, wire::presence_entry> local_presence(const channel_state& st);
// Sends `f` to every member but `user_id`'s own connections.
void send_to_others(channel_state& st, const std::string& user_id, const frame_ptr& f);
// Notes that the members were told `user` joined (or left), and tells this node's.
void show_presence(channel_state& st, const user_ref& user, bool joined, int64_t at_ms);
// The primary's side: the same, and to every follower.
void announce(channel_actor* self, const user_ref& user, bool joined, int64_t at_ms);
void send_typing(channel_actor* self, const user_ref& user, bool is_typing);
// Replays to `m` what it missed after `since`, in pages; one at a time per
// member (another gets rate_limited).
void start_replay(channel_actor* self, member& m, uint64_t since, const std::string& epoch,
                  const std::string& reply_id);
// Sends `r` its next page (the primary) or asks the primary for it.
void next_page(channel_actor* self, pending_replay& r);
// Queues `frames` on `r`'s socket; the next page follows once the socket
// has taken these. `newest` marks the last page: the channel's newest event
// id, for the replay_complete that ends the replay.
void send_page(channel_actor* self, pending_replay& r, std::vector<frame_ptr> frames,
               std::optional<uint64_t> newest);
pending_replay* find_replay(channel_state& st, uint64_t ticket);
// How much of a replay one page holds: a quarter of the socket's bounds.
std::size_t page_frames(const channel_state& st);
std::size_t page_bytes(const channel_state& st);

// channel_primary.cpp
void start_primary(channel_actor* self);
void open_as_primary(channel_actor* self);
caf::result<caf::message> publish(channel_actor* self, draft& d);
void on_adopted(channel_actor* self, const std::string& error);
void on_appended(channel_actor* self, uint64_t write_no, const std::string& error);
void on_replica_retry(channel_actor* self, uint64_t write_no);
void retry_sync(channel_actor* self);
void handoff_deadline(channel_actor* self, uint64_t write_no);
void primary_view_changed(channel_actor* self);
void hand_over(channel_actor* self, const std::string& node);
caf::result<caf::message> sync_requested(channel_actor* self, const std::string& node,
                                         const log_position& asker);
follow_reply add_follower(channel_actor* self, const caf::actor& who, const std::string& node,
                          uint64_t since, const std::string& epoch,
                          const std::vector<wire::presence_entry>& users);
void follower_presence(channel_actor* self, const user_ref& user, uint32_t connections);
bool drop_follower(channel_actor* self, const caf::actor_addr& who);
void change_presence(channel_actor* self, const user_ref& user, int delta);
void settle_presence(channel_actor* self);
replay_page replay_for(channel_state& st, uint64_t since, const std::string& epoch,
                       const type_filter& types);
void send_local_page(channel_actor* self, pending_replay& r);
history_page history(channel_state& st, const history_query& q);

// channel_follower.cpp
void start_follower(channel_actor* self);
void follow(channel_actor* self);
// Fans out the records after durable_id to the members not replaying.
void deliver(channel_state& st, const std::vector<log_record>& records);
void on_push(channel_actor* self, const std::string& epoch, std::vector<log_record>& records);
void request_replay(channel_actor* self, pending_replay& r);
void request_replays(channel_actor* self);
void take_over_replays(channel_actor* self);
void forget_replay(channel_state& st, const caf::actor_addr& conn);
void report_presence(channel_actor* self, const user_ref& user);

}  // namespace sb
