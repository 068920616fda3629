#include "actors/channel_actor.hpp"

#include <algorithm>

#include "actors/channel_state.hpp"
#include "core/channel_name.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/time.hpp"

namespace sb {

namespace {

constexpr auto linger = std::chrono::seconds(10);

constexpr std::size_t indexed_from = 32;  // members; fewer are scanned

// Members are local actors: comparing ids alone takes no reference counts,
// which made removing the members of a large room quadratic in atomics.
member* find_member(channel_state& st, const caf::actor_addr& conn) {
  if (!st.member_at.empty()) {
    auto it = st.member_at.find(conn.id());
    return it == st.member_at.end() ? nullptr : &st.members[it->second];
  }
  for (auto& m : st.members)
    if (m.connection.id() == conn.id()) return &m;
  return nullptr;
}

void add_member(channel_state& st, member m) {
  st.members.push_back(std::move(m));
  if (!st.member_at.empty()) {
    st.member_at.emplace(st.members.back().connection.id(), st.members.size() - 1);
  } else if (st.members.size() >= indexed_from) {
    for (std::size_t i = 0; i < st.members.size(); ++i)
      st.member_at.emplace(st.members[i].connection.id(), i);
  }
}

// One more or one fewer connection of `user` here.
void count_connection(channel_actor* self, const user_ref& user, int delta) {
  auto& st = self->state;
  if (st.role == channel_role::primary) {
    change_presence(self, user, delta);
    return;
  }
  auto& p = st.presence[user.id];
  p.user = user;
  p.connections = static_cast<unsigned>(static_cast<int>(p.connections) + delta);
  if (p.connections == 0) st.presence.erase(user.id);
  report_presence(self, user);
}

// Removes a member; its user's presence goes when it was their last connection.
bool remove_member(channel_actor* self, const caf::actor_addr& conn) {
  auto& st = self->state;
  auto* m = find_member(st, conn);
  if (!m) return false;
  user_ref user = m->user;
  bool observer = m->observer;
  if (!st.member_at.empty()) {
    st.member_at.erase(conn.id());
    if (m != &st.members.back())
      st.member_at[st.members.back().connection.id()] = static_cast<std::size_t>(m - st.members.data());
  }
  *m = std::move(st.members.back());
  st.members.pop_back();
  forget_replay(st, conn);
  if (!observer) count_connection(self, user, -1);
  return true;
}

joined join(channel_actor* self, join_request& req) {
  auto& st = self->state;
  auto& m = req.who;
  self->monitor(m.connection);
  // Counted before the member is added: a user's own connections never get
  // their own user_joined.
  if (!m.observer) count_connection(self, m.user, +1);
  wire::channel_position pos{st.name, st.epoch, st.durable_id};
  if (req.announce) m.out->send(wire::subscription(true, pos, req.reply_id));
  add_member(st, std::move(m));
  if (req.since) start_replay(self, st.members.back(), *req.since, req.epoch, req.reply_id);
  return joined{caf::actor{self}, pos};
}

// Ends `conn`'s replay (its last page is queued): live events reach it again.
void end_replay(channel_actor* self, const caf::actor_addr& conn) {
  auto& st = self->state;
  if (auto* m = find_member(st, conn)) m->replaying = false;
  forget_replay(st, conn);
}

// The callback that asks for `ticket`'s next page once its socket has taken
// this one; a channel gone by then is not kept alive by it.
std::function<void()> when_drained(channel_actor* self, uint64_t ticket) {
  return [channel = self->address(), ticket] {
    if (auto ch = caf::actor_cast<caf::actor>(channel)) caf::anon_send(ch, replay_atom::value, ticket);
  };
}

std::vector<wire::presence_entry> presence_list(const channel_state& st) {
  std::vector<wire::presence_entry> users;
  for (auto& [id, entry] : st.presence) users.push_back(entry);
  return users;
}

struct placement {
  std::string owner;
  std::vector<std::string> replicas;
};

// The channel's owner and replicas, as this node's view says.
placement placement_of(const channel_state& st) {
  placement p{st.cfg->node_id, {}};
  if (st.view && !st.view->owners.empty()) {
    auto ranked = st.view->rank(st.name);
    p.owner = ranked.front().id;
    for (std::size_t i = 1; i < ranked.size() && i < st.view->copies(); ++i)
      p.replicas.push_back(ranked[i].id);
  }
  return p;
}

// (epoch, last event id, owner, replicas), as this primary sees them.
caf::message where(const channel_state& st) {
  auto p = placement_of(st);
  return caf::make_message(st.epoch, st.durable_id, std::move(p.owner), std::move(p.replicas));
}

void set_filter(channel_state& st, const caf::actor& conn, const std::vector<std::string>& types,
                bool add) {
  auto* m = find_member(st, conn.address());
  if (!m) return;
  for (const auto& t : types) {
    if (add)
      m->types.insert(t);
    else
      m->types.erase(t);
  }
}

// Whether `now` has a member `before` did not: one that was down (or cut
// off) and may hold newer history of channels this node took meanwhile.
bool gained_peer(const cluster_view& before, const cluster_view& now) {
  for (auto& n : now.peers)
    if (std::none_of(before.peers.begin(), before.peers.end(),
                     [&](const node_ref& b) { return b.id == n.id && b.hub == n.hub; }))
      return true;
  return false;
}

void view_changed(channel_actor* self, view_ptr v) {
  auto& st = self->state;
  if (st.view && st.role == channel_role::primary && st.ready && gained_peer(*st.view, *v))
    st.resync = true;
  st.view = std::move(v);
  if (st.role == channel_role::follower && !st.ready)
    follow(self);
  else if (st.parked)
    retry_sync(self);
  else
    check_owner(self);
}

// Asks the primary on behalf of the current sender and passes the answer on.
template <class... Rs, class... Ts>
caf::result<caf::message> relay(channel_actor* self, Ts&&... xs) {
  auto& st = self->state;
  auto timeout = st.cfg->cluster.dead_after + std::chrono::seconds(1);
  return st.relays.relay<Rs...>(self, st.primary, timeout, std::forward<Ts>(xs)...);
}

void linger_over(channel_actor* self) {
  auto& st = self->state;
  st.linger_armed = false;
  if (!st.busy())
    self->send(st.hub, idle_atom::value, channel_atom::value, st.name, st.forwarded);
}

uint32_t connections(const channel_state& st) {
  return static_cast<uint32_t>(std::count_if(st.members.begin(), st.members.end(),
                                             [](const member& m) { return !m.observer; }));
}

// Over the cached recent events (the primary's), so the hot path pays
// nothing for it: those of the last `window`, or of the cache's span when
// the cache holds fewer than the window's.
double events_per_second(const channel_state& st, int64_t now) {
  constexpr int64_t window_ms = 10000;
  auto from = now - window_ms;
  std::size_t n = 0;
  for (auto it = st.recent.rbegin(); it != st.recent.rend() && it->e.timestamp_ms >= from; ++it)
    ++n;
  if (n == 0) return 0;
  bool truncated = n == st.recent.size() && st.recent.front().e.event_id > 1;
  if (truncated) from = st.recent.front().e.timestamp_ms;
  return static_cast<double>(n) * 1000.0 / static_cast<double>(std::max<int64_t>(1000, now - from));
}

const char* role_name(const channel_state& st) {
  return st.role == channel_role::primary ? "primary" : "follower";
}

channel_stats stats_of(const channel_state& st) {
  auto p = placement_of(st);
  return {st.name,         role_name(st),
          connections(st), st.epoch,
          st.durable_id,   std::move(p.owner),
          std::move(p.replicas), events_per_second(st, now_ms())};
}

// The member the follower's primary runs on, by the view's node ids.
std::string primary_node(const channel_state& st) {
  if (st.role != channel_role::follower || !st.primary || !st.view) return {};
  for (auto& n : st.view->peers)
    if (n.hub.node() == st.primary.node()) return n.id;
  return to_string(st.primary.node());
}

std::vector<admin_field> dump(const channel_state& st) {
  auto n = [](auto x) { return std::to_string(x); };
  std::string members, followers;
  for (auto& m : st.members)
    members += (members.empty() ? "" : " ") + m.user.id + (m.observer ? "(tail)" : "");
  for (auto& f : st.followers) followers += (followers.empty() ? "" : " ") + f.node;
  return {{"role", role_name(st)},
          {"ready", st.ready ? "yes" : "no"},
          {"epoch", st.epoch},
          {"last_event_id", n(st.durable_id)},
          {"assigned_id", n(st.assigned_id)},
          {"members", members},
          {"present_users", n(st.presence.size())},
          {"followers", followers},
          {"primary_node", primary_node(st)},
          {"pending_events", n(st.pending.size())},
          {"inflight_events", n(st.inflight.size())},
          {"cached_events", n(st.recent.size())},
          {"replays_waiting", n(st.replaying.size())},
          {"handoffs", n(st.handoffs.size())}};
}

// What both behaviours handle: the cluster's messages, writes finishing,
// and the questions another node may ask while this one is starting.
caf::message_handler common(channel_actor* self) {
  return {
      [=](admin_atom, bool with_fields) {
        auto s = self->stats("channel", "channel:" + self->state.name);
        if (with_fields) s.fields = dump(self->state);
        return s;
      },
      [=](admin_atom, channel_atom) { return stats_of(self->state); },
      [=](view_atom, view_ptr& v) { view_changed(self, std::move(v)); },
      [=](sync_atom, const std::string& node, const log_position& asker) {
        ++self->state.forwarded;
        return sync_requested(self, node, asker);
      },
      [=](sync_atom, retry_atom) { retry_sync(self); },
      [=](sync_atom, retry_atom, uint64_t write_no) { handoff_deadline(self, write_no); },
      [=](appended_atom, const std::string& error) { on_adopted(self, error); },
      [=](appended_atom, uint64_t write_no, const std::string& error) {
        on_appended(self, write_no, error);
      },
      [=](retry_atom, uint64_t write_no) { on_replica_retry(self, write_no); },
      [=](follow_atom) { follow(self); },
      [=](push_atom, const std::string& epoch, std::vector<log_record>& records) {
        on_push(self, epoch, records);
      },
  };
}

// While syncing or finding the primary, everything else waits in the mailbox.
caf::behavior waiting(channel_actor* self) { return common(self); }

caf::behavior running(channel_actor* self) {
  using any = caf::result<caf::message>;
  auto primary = [=] { return self->state.role == channel_role::primary; };
  // The hot messages (publish, join, typing) come first: a behaviour tries
  // its handlers in order.
  caf::message_handler own{
      [=](join_atom, join_request& req) {
        ++self->state.forwarded;
        return join(self, req);
      },
      [=](leave_atom, const caf::actor& conn) {
        self->demonitor(conn);
        if (remove_member(self, conn.address())) report_if_idle(self);
        auto& st = self->state;
        return wire::channel_position{st.name, st.epoch, st.durable_id};
      },
      [=](publish_atom, draft& d) -> any {
        if (!primary()) return relay<uint64_t, std::string>(self, publish_atom::value, std::move(d));
        return publish(self, d);
      },
      [=](api_atom, publish_atom, draft& d) -> any {
        ++self->state.forwarded;
        if (!primary()) return relay<uint64_t, std::string>(self, publish_atom::value, std::move(d));
        auto result = publish(self, d);
        report_if_idle(self);
        return result;
      },
      [=](typing_atom, const user_ref& user, bool is_typing) {
        if (primary())
          send_typing(self, user, is_typing);
        else
          self->send(self->state.primary, typing_atom::value, user, is_typing);
      },
      [=](presence_atom) -> any {
        if (!primary()) return relay<std::vector<wire::presence_entry>>(self, presence_atom::value);
        return caf::make_message(presence_list(self->state));
      },
      [=](api_atom, presence_atom) -> any {
        ++self->state.forwarded;
        report_if_idle(self);
        if (!primary()) return relay<std::vector<wire::presence_entry>>(self, presence_atom::value);
        return caf::make_message(presence_list(self->state));
      },
      [=](replay_atom, const caf::actor& conn, uint64_t since, const std::string& reply_id) {
        if (auto* m = find_member(self->state, conn.address()))
          start_replay(self, *m, since, {}, reply_id);
      },
      [=](replay_atom, uint64_t ticket) {
        if (auto* r = find_replay(self->state, ticket)) next_page(self, *r);
      },
      [=](history_atom, const history_query& q) -> any {
        if (!primary()) return relay<history_page>(self, history_atom::value, q);
        return caf::make_message(history(self->state, q));
      },
      [=](api_atom, history_atom, const history_query& q) -> any {
        ++self->state.forwarded;
        report_if_idle(self);
        if (!primary()) return relay<history_page>(self, history_atom::value, q);
        return caf::make_message(history(self->state, q));
      },
      [=](api_atom, info_atom) -> any {
        ++self->state.forwarded;
        report_if_idle(self);
        if (!primary()) return relay<std::string, uint64_t, std::string, std::vector<std::string>>(
                                       self, api_atom::value, info_atom::value);
        return where(self->state);
      },
      [=](filter_atom, const caf::actor& conn, const std::vector<std::string>& types, bool add) {
        auto& st = self->state;
        set_filter(st, conn, types, add);
        return wire::channel_position{st.name, st.epoch, st.durable_id};
      },
      // From followers (the primary's side of the cluster protocol).
      [=](follow_atom, const caf::actor& who, const std::string& node, uint64_t since,
          const std::string& epoch, const std::vector<wire::presence_entry>& users) -> any {
        ++self->state.forwarded;
        if (!primary()) return make_error(sb_error::not_found);
        return caf::make_message(add_follower(self, who, node, since, epoch, users));
      },
      [=](presence_atom, const user_ref& user, uint32_t connections) {
        if (primary()) follower_presence(self, user, connections);
      },
      [=](replay_atom, uint64_t since, const std::string& epoch,
          const std::vector<std::string>& types) -> any {
        if (!primary()) return relay<replay_page>(self, replay_atom::value, since, epoch, types);
        return caf::make_message(
            replay_for(self->state, since, epoch, type_filter(types.begin(), types.end())));
      },
      // From the primary (the follower's side).
      [=](push_atom, typing_atom, const user_ref& user, bool is_typing) {
        send_to_others(self->state, user.id, wire::typing(self->state.name, user, is_typing));
      },
      [=](push_atom, presence_atom, const user_ref& user, bool joined, int64_t at_ms) {
        show_presence(self->state, user, joined, at_ms);
      },
      [=](presence_atom, tick_atom) { settle_presence(self); },
      [=](replay_atom) { request_replays(self); },
      [=](linger_atom) { linger_over(self); },
      [=](idle_atom) {
        if (!self->state.busy()) {
          log::debug("channel_stop", {{"channel", self->state.name}});
          self->quit();
        }
      }};
  return own.or_else(common(self));
}

void channel(channel_actor* self, caf::actor hub, caf::actor replica, std::string name,
             const namespace_config* ns, event_log* log, const config* cfg, view_ptr view) {
  auto& st = self->state;
  st.replica = std::move(replica);
  st.name = std::move(name);
  st.ns = ns;
  st.log = log;
  st.hub = std::move(hub);
  st.cfg = cfg;
  st.view = std::move(view);
  st.space = &metrics::space_of(channel_namespace(st.name));
  metrics::node().channels++;
  st.space->channels++;
  self->attach_functor([space = st.space] {
    metrics::node().channels--;
    space->channels--;
  });
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (st.primary && dm.source == st.primary.address()) {
      log::info("primary_down", {{"channel", st.name}, {"why", to_string(dm.reason)}});
      st.relays.fail(dm.source, make_error(sb_error::not_owner));  // the sender may retry now
      start_follower(self);
      return;
    }
    if (drop_follower(self, dm.source) ||
        (dm.source.node() == self->node() && remove_member(self, dm.source)))
      report_if_idle(self);
  });
  bool mine = !st.view || st.view->owners.empty() ||
              st.view->rank(st.name).front().id == cfg->node_id;
  if (mine)
    start_primary(self);
  else
    start_follower(self);
}

}  // namespace

// A client asking again while its replay runs would have its socket queue
// the same events twice: it waits for replay_complete instead.
void start_replay(channel_actor* self, member& m, uint64_t since, const std::string& epoch,
                  const std::string& reply_id) {
  auto& st = self->state;
  if (m.replaying) {
    m.out->send(wire::error("rate_limited",
                            "a replay of " + st.name + " is under way; wait for its replay_complete",
                            reply_id));
    return;
  }
  m.replaying = true;
  metrics::node().replays++;
  st.space->replays++;
  st.replaying.push_back({m.connection.address(), m.out, m.types, since, epoch, reply_id, false, 0});
  next_page(self, st.replaying.back());
}

void next_page(channel_actor* self, pending_replay& r) {
  r.ticket = 0;
  if (self->state.role == channel_role::primary)
    send_local_page(self, r);
  else
    request_replay(self, r);
}

void send_page(channel_actor* self, pending_replay& r, std::vector<frame_ptr> frames,
               std::optional<uint64_t> newest) {
  auto& st = self->state;
  if (!newest) {
    r.ticket = ++st.last_ticket;
    r.out->send_page(std::move(frames), when_drained(self, r.ticket));
    return;
  }
  frames.push_back(wire::replay_complete({st.name, r.epoch, *newest}, r.gap, r.reply_id));
  if (r.gap) metrics::node().replay_gaps++;
  r.out->send_page(std::move(frames), {});
  auto conn = r.conn;  // `r` goes with the replay
  end_replay(self, conn);
}

pending_replay* find_replay(channel_state& st, uint64_t ticket) {
  for (auto& r : st.replaying)
    if (r.ticket == ticket) return &r;
  return nullptr;
}

std::size_t page_frames(const channel_state& st) {
  return std::max<std::size_t>(1, st.cfg->limits.outbound_max_frames / 4);
}

std::size_t page_bytes(const channel_state& st) { return st.cfg->limits.outbound_max_bytes / 4; }

// A channel without members lingers a while before it offers to stop: a
// channel that backends publish to, or that clients leave and rejoin, would
// otherwise be reopened from the log for every event.
void report_if_idle(channel_actor* self) {
  auto& st = self->state;
  if (st.busy() || st.linger_armed) return;
  st.linger_armed = true;
  self->delayed_send(self, linger, linger_atom::value);
}

// Whether this node still holds the channel as the view says it should:
// it may have gained it (become primary) or lost it (follow the new owner).
void check_owner(channel_actor* self) {
  auto& st = self->state;
  if (!st.ready || !st.view || st.view->owners.empty()) return;
  auto owner = st.view->rank(st.name).front();
  bool mine = owner.id == st.cfg->node_id;
  if (st.role == channel_role::primary) {
    if (mine) {
      primary_view_changed(self);
      return;
    }
    log::info("channel_moves", {{"channel", st.name}, {"to", owner.id}});
    hand_over(self, owner.id);
  } else if (mine) {
    start_primary(self);
  } else if (!st.primary || st.primary.node() != owner.hub.node()) {
    start_follower(self);
  }
}

void become_running(channel_actor* self) {
  self->state.ready = true;
  self->set_default_handler(caf::print_and_drop);
  self->become(running(self));
}

void become_waiting(channel_actor* self) {
  self->state.ready = false;
  self->set_default_handler(caf::skip);
  self->become(waiting(self));
}

std::map<std::string, wire::presence_entry> local_presence(const channel_state& st) {
  std::map<std::string, wire::presence_entry> out;
  for (auto& m : st.members) {
    if (m.observer) continue;
    auto& p = out[m.user.id];
    p.user = m.user;
    ++p.connections;
  }
  return out;
}

void send_to_others(channel_state& st, const std::string& user_id, const frame_ptr& f) {
  for (auto& m : st.members)
    if (m.user.id != user_id) m.out->send(f);
}

void show_presence(channel_state& st, const user_ref& user, bool joined, int64_t at_ms) {
  if (joined)
    st.known[user.id] = user;
  else
    st.known.erase(user.id);
  if (st.ns->presence) send_to_others(st, user.id, wire::membership(joined, st.name, user, at_ms));
}

void announce(channel_actor* self, const user_ref& user, bool joined, int64_t at_ms) {
  auto& st = self->state;
  show_presence(st, user, joined, at_ms);
  if (!st.ns->presence) return;
  for (auto& fl : st.followers)
    self->send(fl.actor, push_atom::value, presence_atom::value, user, joined, at_ms);
}

void send_typing(channel_actor* self, const user_ref& user, bool is_typing) {
  auto& st = self->state;
  if (!st.typing.changed(user.id, is_typing, now_ms())) return;
  send_to_others(st, user.id, wire::typing(st.name, user, is_typing));
  for (auto& fl : st.followers)
    self->send(fl.actor, push_atom::value, typing_atom::value, user, is_typing);
}

caf::actor spawn_channel(caf::event_based_actor* parent, caf::actor hub, caf::actor replica,
                         std::string name, const namespace_config& ns, event_log* log,
                         const config& cfg, view_ptr view) {
  return parent->spawn(channel, std::move(hub), std::move(replica), std::move(name), &ns, log, &cfg,
                       std::move(view));
}

}  // namespace sb
