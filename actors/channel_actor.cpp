#include "actors/channel_actor.hpp"

#include <algorithm>
#include <map>
#include <vector>

#include <boost/container/deque.hpp>

#include "actors/messages.hpp"
#include "core/dedup_window.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/time.hpp"
#include "storage/event_log.hpp"

namespace sb {

namespace {

constexpr std::size_t max_cached_events = 1024;
constexpr std::size_t replay_chunk = 1000;
constexpr auto linger = std::chrono::seconds(10);

struct cached_event {
  event e;
  frame_ptr live;
  frame_ptr replay;  // rendered on first replay
};

// An event with its id, waiting for the log to make it durable.
struct pending_event {
  cached_event ev;
  std::vector<caf::response_promise> waiters;
  std::string dedup_key;
  std::optional<event> tombstone;  // the message a delete removes, content gone
};

struct channel_state {
  std::string name;
  std::string epoch;
  namespace_config ns;
  event_log* log = nullptr;
  uint64_t durable_id = 0;   // newest event on disk and fanned out
  uint64_t assigned_id = 0;  // newest id given out
  std::vector<member> members;
  std::map<std::string, wire::presence_entry> presence;  // by user id
  // Newest durable events. Boost's deque allocates nothing while empty (an
  // idle channel stays small); std::deque takes about 600 bytes at once.
  boost::container::deque<cached_event> recent;
  std::vector<pending_event> pending;                    // not yet handed to the log
  std::vector<pending_event> inflight;                   // being written
  dedup_window sent_ids{10 * 60 * 1000};
  uint64_t forwarded = 0;  // handled messages forwarded by the hub
  bool linger_armed = false;

  cached_event* cached(uint64_t id) {
    if (recent.empty() || id < recent.front().e.event_id || id > recent.back().e.event_id)
      return nullptr;
    return &recent[id - recent.front().e.event_id];
  }

  bool busy() const { return !members.empty() || !pending.empty() || !inflight.empty(); }
};

using channel_actor = caf::stateful_actor<channel_state>;

bool wants(const member& m, const event& e) {
  return m.types.empty() ||
         std::find(m.types.begin(), m.types.end(), event_type(e.body)) != m.types.end();
}

void broadcast(channel_state& st, const frame_ptr& f) {
  for (auto& m : st.members) m.out->send(f);
}

std::optional<event> find_event(channel_state& st, uint64_t id) {
  if (auto* c = st.cached(id)) return c->e;
  if (id == 0 || id > st.durable_id) return std::nullopt;
  auto rec = st.log->get(st.name, id);
  if (!rec) return std::nullopt;
  return wire::parse_stored(st.name, rec->payload);
}

// Checks that a read, reaction or delete names a live message this user may
// touch; for a delete, returns the message as it is to be rewritten.
caf::error check_target(channel_state& st, const draft& d, std::optional<event>& tombstone) {
  if (d.kind == event_kind::message || d.kind == event_kind::app) return caf::none;
  auto target = find_event(st, d.message_id);
  if (!target || target->body.kind != event_kind::message || target->deleted)
    return make_error(sb_error::not_found);
  if (d.kind != event_kind::remove) return caf::none;
  if (target->body.user.id != d.user.id && d.user.role != "admin" && d.user.role != "moderator")
    return make_error(sb_error::forbidden);
  target->deleted = true;
  target->body.content.clear();
  tombstone = std::move(target);
  return caf::none;
}

// A channel without members lingers a while before it offers to stop: a
// channel that backends publish to, or that clients leave and rejoin, would
// otherwise be reopened from the log for every event.
void report_if_idle(channel_actor* self) {
  auto& st = self->state;
  if (st.busy() || st.linger_armed) return;
  st.linger_armed = true;
  self->delayed_send(self, linger, linger_atom::value);
}

void linger_over(channel_actor* self, const caf::actor& hub) {
  auto& st = self->state;
  st.linger_armed = false;
  if (!st.busy()) self->send(hub, idle_atom::value, channel_atom::value, st.name, st.forwarded);
}

void on_appended(channel_actor* self, const std::string& error);

// Hands everything pending to the log, unless a write is under way: events
// of one channel reach the disk in id order, batched while a write runs.
void flush(channel_actor* self) {
  auto& st = self->state;
  if (!st.inflight.empty() || st.pending.empty()) return;
  st.inflight.swap(st.pending);
  append_request req;
  req.channel = st.name;
  req.epoch = st.epoch;
  for (auto& p : st.inflight) {
    const auto& e = p.ev.e;
    req.records.push_back({e.event_id, e.timestamp_ms, wire::payload_of(p.ev.live)});
    if (!p.dedup_key.empty()) req.dedup.push_back({p.dedup_key, e.event_id, e.timestamp_ms});
    if (p.tombstone)
      req.rewrites.push_back({p.tombstone->event_id, p.tombstone->timestamp_ms,
                              wire::payload_of(wire::stored_event(*p.tombstone))});
  }
  req.done = [h = caf::actor{self}](const std::string& error) {
    caf::anon_send(h, appended_atom::value, error);
  };
  if (!st.log->append(std::move(req))) on_appended(self, "the event log's queue is full");
}

// The cache never holds what retention has removed (or is about to).
void expire_cache(channel_state& st, int64_t now) {
  auto limit = std::min(max_cached_events, st.ns.history_size);
  auto oldest = now - std::chrono::duration_cast<std::chrono::milliseconds>(st.ns.history_ttl).count();
  while (!st.recent.empty() &&
         (st.recent.size() > limit || st.recent.front().e.timestamp_ms < oldest))
    st.recent.pop_front();
}

void remember(channel_state& st, cached_event ev) {
  st.recent.push_back(std::move(ev));
  expire_cache(st, now_ms());
}

void on_appended(channel_actor* self, const std::string& error) {
  auto& st = self->state;
  auto batch = std::move(st.inflight);
  st.inflight.clear();
  if (error.empty()) {
    std::size_t delivered = 0;
    for (auto& p : batch) {
      st.durable_id = p.ev.e.event_id;
      if (p.tombstone) {
        if (auto* c = st.cached(p.tombstone->event_id)) {
          c->e = *p.tombstone;
          c->live = wire::stored_event(c->e);
          c->replay = nullptr;
        }
      }
      for (auto& m : st.members)
        if (wants(m, p.ev.e)) {
          m.out->send(p.ev.live);
          ++delivered;
        }
      for (auto& w : p.waiters) w.deliver(p.ev.e.event_id, st.epoch);
      remember(st, std::move(p.ev));
    }
    metrics::node().events_stored += batch.size();
    metrics::node().frames_delivered += delivered;
  } else {
    // Ids after the failed batch were promised to no one yet: give them back.
    log::error("append_failed", {{"channel", st.name}, {"events", batch.size() + st.pending.size()},
                                 {"why", error}});
    batch.insert(batch.end(), std::make_move_iterator(st.pending.begin()),
                 std::make_move_iterator(st.pending.end()));
    st.pending.clear();
    for (auto& p : batch) {
      if (!p.dedup_key.empty()) st.sent_ids.forget(p.dedup_key);
      for (auto& w : p.waiters) w.deliver(make_error(sb_error::storage_failed));
    }
    st.assigned_id = st.durable_id;
  }
  flush(self);
  report_if_idle(self);
}

caf::result<uint64_t, std::string> publish(channel_actor* self, draft& d) {
  auto& st = self->state;
  auto now = now_ms();
  std::string key;
  if (!d.client_id.empty()) {
    key = dedup_window::key(d.user.id, d.client_id);
    if (auto first = st.sent_ids.find(key, now)) {
      if (*first <= st.durable_id) return {*first, st.epoch};
      // The first send is still on its way to disk: answer both then.
      auto rp = self->make_response_promise();
      for (auto* q : {&st.inflight, &st.pending})
        for (auto& p : *q)
          if (p.ev.e.event_id == *first) p.waiters.push_back(rp);
      return rp;
    }
  }
  pending_event p;
  if (auto err = check_target(st, d, p.tombstone)) return err;
  p.ev.e = event{st.name, ++st.assigned_id, now, std::move(d), false};
  p.ev.live = wire::stored_event(p.ev.e);
  p.dedup_key = key;
  if (!key.empty()) st.sent_ids.remember(key, p.ev.e.event_id, now);
  auto rp = self->make_response_promise();
  p.waiters.push_back(rp);
  st.pending.push_back(std::move(p));
  flush(self);
  return rp;
}

frame_ptr replay_frame(cached_event& c) {
  if (!c.replay) c.replay = wire::replayed(c.live->payload());
  return c.replay;
}

// Queues on `m` every durable event after `since` it wants, oldest first, then
// replay_complete. Live events after this point reach `m` later, in order, so
// nothing is missed or repeated at the boundary.
void replay(channel_state& st, const member& m, uint64_t since, bool same_epoch,
            const std::string& reply_id) {
  std::vector<frame_ptr> frames;
  bool gap = !same_epoch;
  expire_cache(st, now_ms());
  uint64_t next = since + 1;
  if (same_epoch && since < st.durable_id) {
    uint64_t stored_upto = st.recent.empty() ? st.durable_id : st.recent.front().e.event_id - 1;
    while (next <= stored_upto) {
      auto records = st.log->read_after(st.name, next - 1, replay_chunk);
      if (records.empty() || records.front().event_id != next) gap = true;
      auto before = next;
      for (auto& r : records) {
        if (r.event_id > stored_upto) break;
        auto e = m.types.empty() ? std::nullopt : wire::parse_stored(st.name, r.payload);
        if (m.types.empty() || (e && wants(m, *e))) frames.push_back(wire::replayed(r.payload));
        next = r.event_id + 1;
      }
      if (next == before) break;  // the rest is in the cache, or gone
    }
    next = std::max(next, stored_upto + 1);
    for (auto& c : st.recent)
      if (c.e.event_id >= next && wants(m, c.e)) frames.push_back(replay_frame(c));
  }
  frames.push_back(wire::replay_complete({st.name, st.epoch, st.durable_id}, gap, reply_id));
  metrics::node().replays++;
  if (gap) metrics::node().replay_gaps++;
  m.out->send_replay(std::move(frames));
}

member* find_member(channel_state& st, const caf::actor_addr& conn) {
  for (auto& m : st.members)
    if (m.connection.address() == conn) return &m;
  return nullptr;
}

// Removes a member; announces user_left when it was the user's last connection.
bool remove_member(channel_actor* self, const caf::actor_addr& conn) {
  auto& st = self->state;
  auto* m = find_member(st, conn);
  if (!m) return false;
  user_ref user = m->user;
  *m = std::move(st.members.back());
  st.members.pop_back();
  auto p = st.presence.find(user.id);
  if (p != st.presence.end() && --p->second.connections == 0) {
    st.presence.erase(p);
    if (st.ns.presence) broadcast(st, wire::membership(false, st.name, user, now_ms()));
  }
  return true;
}

joined join(channel_actor* self, join_request& req) {
  auto& st = self->state;
  auto& m = req.who;
  self->monitor(m.connection);
  auto& p = st.presence[m.user.id];
  p.user = m.user;
  if (++p.connections == 1 && st.ns.presence)
    broadcast(st, wire::membership(true, st.name, m.user, now_ms()));
  wire::channel_position pos{st.name, st.epoch, st.durable_id};
  if (req.announce) m.out->send(wire::subscription(true, pos, req.reply_id));
  if (req.since)
    replay(st, m, *req.since, req.epoch.empty() || req.epoch == st.epoch, req.reply_id);
  st.members.push_back(std::move(m));
  return joined{caf::actor{self}, pos};
}

history_page history(channel_state& st, const history_query& q) {
  history_page page{st.epoch, {}, false};
  std::vector<log_record> records;
  if (q.since) {
    records = st.log->read_after(st.name, *q.since, q.limit + 1);
    while (!records.empty() && records.back().event_id > st.durable_id) records.pop_back();
    page.has_more = records.size() > q.limit;
    if (page.has_more) records.pop_back();
  } else {
    uint64_t before = std::min(q.before.value_or(st.durable_id + 1), st.durable_id + 1);
    records = st.log->read_before(st.name, before, q.limit + 1);
    page.has_more = records.size() > q.limit;
    if (page.has_more) records.erase(records.begin());
  }
  for (auto& r : records) page.payloads.push_back(std::move(r.payload));
  return page;
}

std::vector<wire::presence_entry> presence(const channel_state& st) {
  std::vector<wire::presence_entry> users;
  for (auto& [id, entry] : st.presence) users.push_back(entry);
  return users;
}

caf::behavior channel(channel_actor* self, caf::actor hub, std::string name,
                      namespace_config ns, event_log* log) {
  auto& st = self->state;
  st.name = std::move(name);
  st.ns = std::move(ns);
  st.log = log;
  metrics::node().channels++;
  self->attach_functor([] { metrics::node().channels--; });
  auto meta = log->open(st.name);
  st.epoch = meta.epoch;
  st.durable_id = st.assigned_id = meta.last_event_id;
  auto now = now_ms();
  for (auto& d : log->recent_dedup(st.name, now)) st.sent_ids.remember(d.key, d.event_id, d.at_ms);
  log::debug("channel_start", {{"channel", st.name}, {"epoch", st.epoch},
                               {"last_event_id", st.durable_id}});
  self->set_down_handler([=](caf::down_msg& dm) {
    if (remove_member(self, dm.source)) report_if_idle(self);
  });
  return {
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
      [=](publish_atom, draft& d) { return publish(self, d); },
      [=](api_atom, publish_atom, draft& d) {
        ++self->state.forwarded;
        auto result = publish(self, d);
        report_if_idle(self);
        return result;
      },
      [=](typing_atom, const user_ref& user, bool is_typing) {
        auto f = wire::typing(self->state.name, user, is_typing);
        for (auto& m : self->state.members)
          if (m.user.id != user.id) m.out->send(f);
      },
      [=](presence_atom) { return presence(self->state); },
      [=](api_atom, presence_atom) {
        ++self->state.forwarded;
        report_if_idle(self);
        return presence(self->state);
      },
      [=](replay_atom, const caf::actor& conn, uint64_t since, const std::string& reply_id) {
        if (auto* m = find_member(self->state, conn.address()))
          replay(self->state, *m, since, true, reply_id);
      },
      [=](history_atom, const history_query& q) { return history(self->state, q); },
      [=](api_atom, history_atom, const history_query& q) {
        ++self->state.forwarded;
        report_if_idle(self);
        return history(self->state, q);
      },
      [=](filter_atom, const caf::actor& conn, const std::vector<std::string>& types, bool add) {
        auto& st = self->state;
        if (auto* m = find_member(st, conn.address())) {
          for (const auto& t : types) {
            auto it = std::find(m->types.begin(), m->types.end(), t);
            if (add && it == m->types.end()) m->types.push_back(t);
            if (!add && it != m->types.end()) m->types.erase(it);
          }
        }
        return wire::channel_position{st.name, st.epoch, st.durable_id};
      },
      [=](appended_atom, const std::string& error) { on_appended(self, error); },
      [=](linger_atom) { linger_over(self, hub); },
      [=](idle_atom) {
        if (!self->state.busy()) {
          log::debug("channel_stop", {{"channel", self->state.name}});
          self->quit();
        }
      },
  };
}

}  // namespace

caf::actor spawn_channel(caf::event_based_actor* parent, caf::actor hub, std::string name,
                         const namespace_config& ns, event_log* log) {
  return parent->spawn(channel, std::move(hub), std::move(name), ns, log);
}

}  // namespace sb
