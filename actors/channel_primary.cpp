// The owner's side of a channel: it syncs from the other nodes when it
// takes the channel over, sequences events, makes them durable on its own
// disk and on its replicas, then fans them out to its members and pushes
// them once to every follower node.
#include <algorithm>
#include <limits>

#include "actors/channel_state.hpp"
#include "actors/replica_actor.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/time.hpp"

namespace sb {

namespace {

constexpr std::size_t max_cached_events = 1024;
constexpr std::size_t replay_chunk = 1000;
// A peer that refused a sync mostly sees the members a few milliseconds
// behind this node: ask again soon.
constexpr auto sync_retry_delay = std::chrono::milliseconds(50);

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

// The cache never holds what retention has removed (or is about to).
void expire_cache(channel_state& st, int64_t now) {
  auto limit = std::min(max_cached_events, st.ns->history_size);
  auto oldest = now - std::chrono::duration_cast<std::chrono::milliseconds>(st.ns->history_ttl).count();
  while (!st.recent.empty() &&
         (st.recent.size() > limit || st.recent.front().e.timestamp_ms < oldest))
    st.recent.pop_front();
}

// The replicas of the write under way that do not have it yet: the best
// ranked owners after this node, as many as the copies still missing.
std::vector<node_ref> missing_replicas(const channel_state& st) {
  std::vector<node_ref> out;
  if (!st.view) return out;
  auto wanted = st.view->copies() - 1;
  for (auto& n : st.view->rank(st.name)) {
    if (out.size() + st.copies.size() >= wanted) break;
    if (n.id != st.view->self && !st.copies.count(n.id)) out.push_back(n);
  }
  return out;
}

void maybe_complete(channel_actor* self);

// This primary sequences the ids after its last durable one in term `t`.
void start_term(channel_state& st, term_id t) {
  st.term = std::move(t);
  st.terms = begin_term(std::move(st.terms), st.term, st.durable_id + 1);
  st.established = !st.view || st.view->copies() <= 1;
}
void answer_handoffs(channel_actor* self);

// Fails every publish not yet acknowledged and gives their ids back.
void fail_writes(channel_actor* self) {
  auto& st = self->state;
  auto batch = std::move(st.inflight);
  st.inflight.clear();
  batch.insert(batch.end(), std::make_move_iterator(st.pending.begin()),
               std::make_move_iterator(st.pending.end()));
  st.pending.clear();
  ++st.write_no;
  st.deferred.reset();
  for (auto& p : batch) {
    if (!p.dedup_key.empty()) st.sent_ids.forget(p.dedup_key);
    for (auto& w : p.waiters) w.deliver(make_error(sb_error::storage_failed));
  }
  st.assigned_id = st.durable_id;
  // The failed events may be on some disks: the ids given out again must be
  // in a new term, or two logs could hold different events under one (term, id).
  start_term(st, term_id{st.term.n + 1, st.cfg->node_id});
}

// A replica knows another owner: this node was cut off and the channel
// moved on without it. Its unacknowledged writes fail, and it syncs again
// (taking the newer history) or follows the new owner.
void abandon_write(channel_actor* self, const std::string& replica) {
  auto& st = self->state;
  log::warn("write_refused", {{"channel", st.name}, {"replica", replica},
                              {"events", st.inflight.size() + st.pending.size()}});
  fail_writes(self);
  st.resync = true;
  become_waiting(self);
  answer_handoffs(self);
}

uint64_t last_of(const replica_batch& b) {
  return b.records.empty() ? b.after : b.records.back().event_id;
}

void replicate_to(channel_actor* self, const node_ref& n, const replica_batch& b);

// A replica's log agrees with this one only up to `have`: it gets the
// events after that first (they are all on the local disk).
void catch_up(channel_actor* self, const node_ref& n, uint64_t have) {
  auto& st = self->state;
  auto b = *st.replicating;
  auto older = st.log->read_after(st.name, have, b.after - have);
  while (!older.empty() && older.back().event_id > b.after) older.pop_back();
  log::info("replica_catch_up", {{"channel", st.name}, {"replica", n.id}, {"after", have},
                                 {"events", older.size()}});
  b.records.insert(b.records.begin(), std::make_move_iterator(older.begin()),
                   std::make_move_iterator(older.end()));
  b.after = have;
  replicate_to(self, n, b);
}

void replicate_to(channel_actor* self, const node_ref& n, const replica_batch& b) {
  auto& st = self->state;
  auto write_no = st.write_no;
  auto last = last_of(b);
  bool caught_up = b.after < st.replicating->after;
  self->request(n.hub, st.cfg->cluster.dead_after, replicate_atom::value, b)
      .then(
          [=](uint64_t have) {
            if (self->state.write_no != write_no) return;
            if (have >= last) {
              self->state.copies.insert(n.id);
              maybe_complete(self);
            } else if (!caught_up) {
              catch_up(self, n, have);
            } else {
              log::warn("replica_catch_up_failed", {{"channel", self->state.name},
                                                    {"replica", n.id}, {"have", have}});
              self->delayed_send(self, self->state.cfg->cluster.heartbeat_interval,
                                 retry_atom::value, write_no);
            }
          },
          [=](caf::error& e) {
            if (self->state.write_no != write_no) return;
            if (e == make_error(sb_error::not_owner)) {
              abandon_write(self, n.id);
              return;
            }
            log::warn("replicate_failed", {{"channel", self->state.name}, {"replica", n.id},
                                           {"why", to_string(e)}});
            self->delayed_send(self, self->state.cfg->cluster.heartbeat_interval,
                               retry_atom::value, write_no);
          });
}

void send_replicas(channel_actor* self) {
  auto& st = self->state;
  if (!st.replicating) return;
  for (auto& n : missing_replicas(st)) replicate_to(self, n, *st.replicating);
}

void append_local(channel_actor* self, append_request req) {
  if (!self->state.log->append(std::move(req)))
    on_appended(self, self->state.write_no, "the event log's queue is full");
}

// Hands everything pending to the log and to the replicas, unless a write
// is under way: events of one channel are written in id order, batched
// while a write runs.
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
  req.terms = st.terms;
  auto write_no = ++st.write_no;
  st.written = false;
  st.copies.clear();
  // Kept in a cluster even when no copy is wanted now: a node joining
  // while the write is under way raises the copies it needs.
  if (st.view) {
    st.replicating = std::make_unique<replica_batch>(replica_batch{
        st.cfg->node_id, st.name, st.epoch, st.term, st.terms, st.durable_id, req.records,
        req.dedup, req.rewrites});
    send_replicas(self);
  }
  req.done = [h = caf::actor{self}, write_no](const std::string& error) {
    caf::anon_send(h, appended_atom::value, write_no, error);
  };
  // A new term reaches the replicas before this log: were this node to die
  // first, its events must not outrank theirs (see cluster/term_history.hpp).
  if (!st.established) {
    st.deferred = std::make_unique<append_request>(std::move(req));
    maybe_complete(self);
    return;
  }
  append_local(self, std::move(req));
}

// Sends durable events once to every follower node.
void push(channel_actor* self, std::vector<log_record> records) {
  auto& st = self->state;
  if (st.followers.empty() || records.empty()) return;
  auto msg = caf::make_message(push_atom::value, st.epoch, std::move(records));
  for (auto& f : st.followers) self->send(f.actor, msg);
}

void remember(channel_state& st, cached_event ev) {
  st.recent.push_back(std::move(ev));
  expire_cache(st, now_ms());
}

// What this node offers a new owner: once it has been the primary, only
// what it acknowledged; a write refused by the replicas may still be on its
// disk (the replica actor applies this only to a log that ends in one of
// this node's own terms).
uint64_t offered_upto(const channel_state& st) {
  return st.sequenced ? st.durable_id : std::numeric_limits<uint64_t>::max();
}

void answer_handoffs(channel_actor* self) {
  auto& st = self->state;
  if (st.writing()) return;
  for (auto& h : st.handoffs)
    h.rp.delegate(st.replica, sync_atom::value, st.name, h.asker, offered_upto(st));
  st.handoffs.clear();
  if (st.resync && st.role == channel_role::primary) start_primary(self);
}

// The write under way is durable on enough nodes: fan it out, answer the
// publishers, push it to the followers.
void complete(channel_actor* self) {
  auto& st = self->state;
  auto batch = std::move(st.inflight);
  st.inflight.clear();
  std::size_t delivered = 0;
  std::vector<log_record> records;
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
      if (!m.replaying && wants(m.types, p.ev.e)) {
        m.out->send(p.ev.live);
        ++delivered;
      }
    for (auto& w : p.waiters) w.deliver(p.ev.e.event_id, st.epoch);
    if (!st.followers.empty())
      records.push_back({p.ev.e.event_id, p.ev.e.timestamp_ms, wire::payload_of(p.ev.live)});
    remember(st, std::move(p.ev));
  }
  push(self, std::move(records));
  log::debug("events_acked", {{"channel", st.name}, {"first", batch.front().ev.e.event_id},
                              {"last", st.durable_id}, {"term", st.term.n}});
  metrics::node().events_stored += batch.size();
  metrics::node().frames_delivered += delivered;
  st.space->events_stored += batch.size();
  st.space->frames_delivered += delivered;
  flush(self);
  answer_handoffs(self);
  report_if_idle(self);
}

void maybe_complete(channel_actor* self) {
  auto& st = self->state;
  if (st.inflight.empty()) return;
  if (st.view && st.copies.size() + 1 < st.view->copies()) return;
  if (st.deferred) {
    st.established = true;
    auto req = std::move(*st.deferred);
    st.deferred.reset();
    append_local(self, std::move(req));
    return;
  }
  if (st.written) complete(self);
}

// Chooses whose history to continue: the newest (last event's term, then
// length), this node's own on a tie; keeps the events both agree on and
// takes the rest. When this node syncs again after a replica refused it,
// it offered only what it acknowledged (`claim`): the rest goes.
void adopt(channel_actor* self, std::vector<sync_reply> replies) {
  auto& st = self->state;
  const auto& claim = st.claim;
  auto mine = st.log->peek(st.name);
  st.newest_seen = mine ? newest_term(mine->terms) : term_id{};
  const sync_reply* best = nullptr;
  for (auto& r : replies) {
    st.newest_seen = std::max(st.newest_seen, r.newest);
    if (r.epoch.empty()) continue;
    if (best ? newer(r.terms, r.last_event_id, best->terms, best->last_event_id)
             : newer(r.terms, r.last_event_id, claim.terms, claim.last_event_id))
      best = &r;
  }
  bool cut_tail = st.claim_cut && mine && mine->last_event_id > claim.last_event_id;
  if (!best && mine && !cut_tail) {
    open_as_primary(self);
    return;
  }
  append_request req;
  req.channel = st.name;
  if (best) {
    log::info("channel_adopt", {{"channel", st.name}, {"from", best->node}, {"epoch", best->epoch},
                                {"last_event_id", best->last_event_id}, {"agreed", best->agreed},
                                {"had", claim.last_event_id}});
    req.epoch = best->epoch;
    req.reset = !mine || mine->epoch != best->epoch;
    req.last_event_id = best->last_event_id;
    req.records = std::move(best->records);
    req.dedup = std::move(best->dedup);
    req.terms = std::move(best->terms);
    if (!req.reset && mine->last_event_id > best->agreed) req.truncate_after = best->agreed;
  } else if (cut_tail) {
    log::info("channel_truncate", {{"channel", st.name}, {"after", claim.last_event_id},
                                   {"had", mine->last_event_id}});
    req.epoch = mine->epoch;
    req.last_event_id = claim.last_event_id;
    req.truncate_after = claim.last_event_id;
    req.terms = claim.terms;
  } else {
    req.epoch = st.log->open(st.name).epoch;  // a new channel
  }
  st.adopting = true;
  req.done = [h = caf::actor{self}](const std::string& error) {
    caf::anon_send(h, appended_atom::value, error);
  };
  if (!st.log->append(std::move(req))) on_adopted(self, "the event log's queue is full");
}

// Whether a peer that did not answer the sync is still up: its history may
// hold acknowledged events no other node has, so the sync must wait for it.
bool still_up(const channel_state& st, const std::vector<std::string>& silent) {
  if (!st.view) return false;
  for (auto& id : silent)
    for (auto& p : st.view->peers)
      if (p.id == id) return true;
  return false;
}

// Asks every peer what it holds of the channel, then adopts.
void sync_with_peers(channel_actor* self) {
  auto& st = self->state;
  struct tally {
    std::vector<sync_reply> replies;
    std::vector<std::string> silent;
    std::size_t waiting = 0;
  };
  st.claim = {};
  if (auto mine = st.log->peek(st.name)) {
    st.claim.epoch = mine->epoch;
    st.claim.last_event_id = st.claim_cut ? st.durable_id : mine->last_event_id;
    st.claim.terms = cut_after(std::move(mine->terms), st.claim.last_event_id);
  }
  auto t = std::make_shared<tally>();
  t->waiting = st.view->peers.size();
  auto sync_no = ++st.sync_no;
  auto done = [=] {
    if (--t->waiting > 0 || self->state.sync_no != sync_no) return;
    if (!still_up(self->state, t->silent)) {
      adopt(self, std::move(t->replies));
      return;
    }
    log::warn("sync_retry", {{"channel", self->state.name}, {"silent", t->silent.front()}});
    self->delayed_send(self, sync_retry_delay, sync_atom::value, retry_atom::value);
  };
  for (auto& peer : st.view->peers)
    self->request(peer.hub, st.cfg->cluster.dead_after, sync_atom::value, st.name, st.view->self,
                  st.claim)
        .then([=](sync_reply& r) { t->replies.push_back(std::move(r)); done(); },
              [=](caf::error& e) {
                log::warn("sync_failed", {{"channel", self->state.name}, {"peer", peer.id},
                                          {"why", to_string(e)}});
                t->silent.push_back(peer.id);
                done();
              });
}

struct scan_result {
  bool gap = false;      // some events after `since` are no longer retained
  uint64_t through = 0;  // the scan covered the events up to this id
  bool done = true;      // false: stopped because `full()`; more follow
};

// A replay's events after `since`, oldest first, as log records (`on_record`)
// or cached events (`on_cached`), until `full()` says the page is.
template <class Full, class OnRecord, class OnCached>
scan_result for_each_after(channel_state& st, uint64_t since, const type_filter& types,
                           Full full, OnRecord on_record, OnCached on_cached) {
  scan_result s{false, std::max(since, st.durable_id), true};
  expire_cache(st, now_ms());
  uint64_t next = since + 1;
  if (since >= st.durable_id) return s;
  auto stop = [&] {
    s.through = next - 1;
    s.done = false;
    return s;
  };
  uint64_t stored_upto = st.recent.empty() ? st.durable_id : st.recent.front().e.event_id - 1;
  while (next <= stored_upto) {
    auto records = st.log->read_after(st.name, next - 1, replay_chunk);
    if (records.empty() || records.front().event_id != next) s.gap = true;
    auto before = next;
    for (auto& r : records) {
      if (r.event_id > stored_upto) break;
      if (full()) return stop();
      auto e = types.empty() ? std::nullopt : wire::parse_stored(st.name, r.payload);
      if (types.empty() || (e && wants(types, *e))) on_record(r);
      next = r.event_id + 1;
    }
    if (next == before) break;  // the rest is in the cache, or gone
  }
  next = std::max(next, stored_upto + 1);
  for (auto& c : st.recent) {
    if (c.e.event_id < next) continue;
    if (full()) return stop();
    if (wants(types, c.e)) on_cached(c);
    next = c.e.event_id + 1;
  }
  return s;
}

bool never_full() { return false; }

// Whether a page of `frames` taking `bytes` is as large as one may be.
bool page_full(const channel_state& st, std::size_t frames, std::size_t bytes) {
  return frames >= page_frames(st) || bytes >= page_bytes(st);
}

frame_ptr replay_frame(cached_event& c) {
  if (!c.replay) c.replay = wire::replayed(c.live->payload());
  return c.replay;
}

}  // namespace

// Syncs from the peers. With none, a node that could not acknowledge
// anything alone waits for one: opening from its own log, it might take a
// newer term than the owner it does not see yet and overwrite its events.
void sync_or_park(channel_actor* self) {
  auto& st = self->state;
  if (st.view && !st.view->peers.empty()) {
    sync_with_peers(self);
    return;
  }
  st.parked = st.view && st.view->copies() > 1;
  if (st.parked) {
    log::info("channel_waits_for_peers", {{"channel", st.name}});
    return;
  }
  open_as_primary(self);
}

void start_primary(channel_actor* self) {
  auto& st = self->state;
  st.claim_cut = st.resync && st.role == channel_role::primary;
  st.resync = false;
  st.role = channel_role::primary;
  st.presence = local_presence(st);
  st.ready = false;
  become_waiting(self);
  sync_or_park(self);
}

// A peer was silent and is still up: ask again, unless the channel has
// meanwhile moved to another node.
void retry_sync(channel_actor* self) {
  auto& st = self->state;
  st.parked = false;
  if (st.role != channel_role::primary || st.ready || st.adopting) return;
  if (st.view && !st.view->owners.empty() && st.view->rank(st.name).front().id != st.cfg->node_id) {
    start_follower(self);
    return;
  }
  sync_or_park(self);
}

// Opens the channel from the local log and starts taking publishes.
void open_as_primary(channel_actor* self) {
  auto& st = self->state;
  auto meta = st.log->open(st.name);
  // Events this node adopted (a follower taking over: the last ones the old
  // primary made durable here as its replica) may not have reached the
  // members, nor the followers.
  if (meta.epoch == st.epoch && meta.last_event_id > st.durable_id) {
    auto missed = st.log->read_after(st.name, st.durable_id, meta.last_event_id - st.durable_id);
    deliver(st, missed);
    push(self, std::move(missed));
  }
  st.epoch = meta.epoch;
  st.durable_id = st.assigned_id = meta.last_event_id;
  st.terms = std::move(meta.terms);
  start_term(st, term_id{std::max(newest_term(st.terms), st.newest_seen).n + 1, st.cfg->node_id});
  take_over_replays(self);
  st.recent.clear();
  st.sent_ids = dedup_window{10 * 60 * 1000};
  auto now = now_ms();
  for (auto& d : st.log->recent_dedup(st.name, now))
    if (d.event_id <= st.durable_id) st.sent_ids.remember(d.key, d.event_id, d.at_ms);
  st.role = channel_role::primary;
  st.sequenced = true;
  st.primary = nullptr;
  st.handed_to.clear();
  log::debug("channel_primary", {{"channel", st.name}, {"epoch", st.epoch},
                                 {"last_event_id", st.durable_id}, {"term", st.term.n}});
  if (!st.known.empty()) {
    auto grace = std::max<caf::timespan>(std::chrono::milliseconds(500),
                                         4 * st.cfg->cluster.heartbeat_interval);
    self->delayed_send(self, grace, presence_atom::value, tick_atom::value);
  }
  become_running(self);
  check_owner(self);
  report_if_idle(self);
}

caf::result<caf::message> publish(channel_actor* self, draft& d) {
  auto& st = self->state;
  auto now = now_ms();
  std::string key;
  if (!d.client_id.empty()) {
    key = dedup_window::key(d.user.id, d.client_id);
    if (auto first = st.sent_ids.find(key, now)) {
      if (*first <= st.durable_id) return caf::make_message(*first, st.epoch);
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

void on_adopted(channel_actor* self, const std::string& error) {
  auto& st = self->state;
  st.adopting = false;
  if (!error.empty()) log::error("channel_adopt_failed", {{"channel", st.name}, {"why", error}});
  open_as_primary(self);
}

void on_appended(channel_actor* self, uint64_t write_no, const std::string& error) {
  auto& st = self->state;
  if (write_no != st.write_no) return;  // a write that failed meanwhile
  if (error.empty()) {
    st.written = true;
    maybe_complete(self);
    return;
  }
  // Ids after the failed batch were promised to no one yet: give them back.
  log::error("append_failed", {{"channel", st.name},
                               {"events", st.inflight.size() + st.pending.size()},
                               {"why", error}});
  fail_writes(self);
  answer_handoffs(self);
  report_if_idle(self);
}

void on_replica_retry(channel_actor* self, uint64_t write_no) {
  auto& st = self->state;
  if (st.write_no == write_no && !st.inflight.empty()) send_replicas(self);
}

// The members changed: a write may need fewer copies, or other replicas;
// a member that came back may have newer history, so after the writes under
// way (new publishes wait) the channel syncs again.
void primary_view_changed(channel_actor* self) {
  auto& st = self->state;
  if (st.resync) {
    log::info("channel_resync", {{"channel", st.name}});
    become_waiting(self);
    answer_handoffs(self);
  }
  if (!st.inflight.empty()) {
    maybe_complete(self);
    if (!st.inflight.empty()) send_replicas(self);
  }
}

// This primary stops sequencing and follows `node`, the new owner; the
// writes under way still finish (and are handed over).
void hand_over(channel_actor* self, const std::string& node) {
  auto& st = self->state;
  st.resync = false;
  st.handed_to = node;
  st.handed_at_ms = now_ms();
  st.followers.clear();
  start_follower(self);
}

caf::result<caf::message> sync_requested(channel_actor* self, const std::string& node,
                                         const log_position& asker) {
  auto& st = self->state;
  if (st.role == channel_role::primary && (st.ready || st.resync)) {
    // Another node takes the channel over: stop sequencing, finish what is
    // under way, then give it everything.
    log::info("channel_handover", {{"channel", st.name}, {"to", node},
                                   {"last_event_id", st.assigned_id}});
    hand_over(self, node);
  }
  // The replica actor answers: it waits for this node's appends under way.
  if (!st.writing())
    return self->delegate(st.replica, sync_atom::value, st.name, asker, offered_upto(st));
  auto rp = self->make_response_promise();
  st.handoffs.push_back({rp, asker});
  // Writes stuck on a replica must not hold the new owner up until its
  // request times out: they fail first.
  self->delayed_send(self, st.cfg->cluster.dead_after / 2, sync_atom::value, retry_atom::value,
                     st.write_no);
  return rp;
}

void handoff_deadline(channel_actor* self, uint64_t write_no) {
  auto& st = self->state;
  if (st.write_no != write_no || st.handoffs.empty() || !st.writing()) return;
  log::warn("handoff_writes_failed", {{"channel", st.name},
                                      {"events", st.inflight.size() + st.pending.size()}});
  fail_writes(self);
  answer_handoffs(self);
}

follow_reply add_follower(channel_actor* self, const caf::actor& who, const std::string& node,
                          uint64_t since, const std::string& epoch,
                          const std::vector<wire::presence_entry>& users) {
  auto& st = self->state;
  // A follower that follows again (its view changed) replaces its counts:
  // only the difference may announce anything.
  std::map<std::string, wire::presence_entry> had;
  for (auto it = st.followers.begin(); it != st.followers.end(); ++it)
    if (it->actor.address() == who.address()) {
      had = std::move(it->users);
      st.followers.erase(it);
      break;
    }
  self->monitor(who);
  follower f{who, node, {}};
  for (auto& u : users) f.users[u.user.id] = u;
  st.followers.push_back(f);
  for (auto& [id, u] : f.users) {
    auto old = had.find(id);
    int before = old == had.end() ? 0 : static_cast<int>(old->second.connections);
    change_presence(self, u.user, static_cast<int>(u.connections) - before);
  }
  for (auto& [id, u] : had)
    if (!f.users.count(id)) change_presence(self, u.user, -static_cast<int>(u.connections));
  log::debug("follower_added", {{"channel", st.name}, {"node", node}});
  follow_reply r{caf::actor{self}, st.epoch, st.durable_id, {}, {}};
  if (epoch == st.epoch && since < st.durable_id) {
    for_each_after(
        st, since, {}, never_full, [&](const log_record& rec) { r.records.push_back(rec); },
        [&](cached_event& c) {
          r.records.push_back({c.e.event_id, c.e.timestamp_ms, wire::payload_of(c.live)});
        });
  }
  for (auto& [id, p] : st.presence) r.users.push_back(p);
  return r;
}

void follower_presence(channel_actor* self, const user_ref& user, uint32_t connections) {
  auto& st = self->state;
  auto sender = self->current_sender();
  for (auto& f : st.followers) {
    if (caf::actor_cast<caf::actor_addr>(sender) != f.actor.address()) continue;
    auto& had = f.users[user.id];
    int delta = static_cast<int>(connections) - static_cast<int>(had.connections);
    had = {user, connections};
    if (connections == 0) f.users.erase(user.id);
    change_presence(self, user, delta);
    return;
  }
}

bool drop_follower(channel_actor* self, const caf::actor_addr& who) {
  auto& st = self->state;
  for (auto it = st.followers.begin(); it != st.followers.end(); ++it) {
    if (it->actor.address() != who) continue;
    auto users = std::move(it->users);
    st.followers.erase(it);
    for (auto& [id, u] : users) change_presence(self, u.user, -static_cast<int>(u.connections));
    return true;
  }
  return false;
}

// Announces a user's first connection anywhere, and their last one going,
// unless the members were already told (`known`, which a new primary takes
// over from its time as a follower).
void change_presence(channel_actor* self, const user_ref& user, int delta) {
  auto& st = self->state;
  if (delta == 0) return;
  auto& p = st.presence[user.id];
  p.user = user;
  p.connections = static_cast<unsigned>(std::max(0, static_cast<int>(p.connections) + delta));
  bool told = st.known.count(user.id) > 0;
  if (p.connections > 0 && !told) announce(self, user, true, now_ms());
  if (p.connections == 0) {
    st.presence.erase(user.id);
    st.typing.forget(user.id);
    if (told) announce(self, user, false, now_ms());
  }
}

// A while after taking over: users the members were told about whose
// connections were all on the node that died have not come back with any
// follower, so they are gone.
void settle_presence(channel_actor* self) {
  auto& st = self->state;
  if (st.role != channel_role::primary) return;
  std::vector<user_ref> gone;
  for (auto& [id, user] : st.known)
    if (!st.presence.count(id)) gone.push_back(user);
  for (auto& user : gone) announce(self, user, false, now_ms());
}

replay_page replay_for(channel_state& st, uint64_t since, const std::string& epoch,
                       const type_filter& types) {
  replay_page page{st.epoch, st.durable_id, {}, epoch != st.epoch, since, false};
  if (page.gap) return page;
  std::size_t bytes = 0;
  auto scan = for_each_after(
      st, since, types, [&] { return page_full(st, page.payloads.size(), bytes); },
      [&](const log_record& r) {
        bytes += r.payload.size();
        page.payloads.push_back(r.payload);
      },
      [&](cached_event& c) {
        page.payloads.push_back(wire::payload_of(c.live));
        bytes += page.payloads.back().size();
      });
  page.gap = scan.gap;
  page.through = scan.through;
  page.more = !scan.done;
  return page;
}

// The next page of `r` from this node's log. Live events after the last page
// reach the member later, in order, so nothing is missed or repeated at the
// boundary.
void send_local_page(channel_actor* self, pending_replay& r) {
  auto& st = self->state;
  bool same_epoch = r.epoch.empty() || r.epoch == st.epoch;
  r.epoch = st.epoch;
  if (!same_epoch) {
    r.gap = true;
    send_page(self, r, {}, st.durable_id);
    return;
  }
  std::vector<frame_ptr> frames;
  std::size_t bytes = 0;
  auto add = [&](frame_ptr f) {
    bytes += f->bytes.size();
    frames.push_back(std::move(f));
  };
  auto scan = for_each_after(
      st, r.since, r.types, [&] { return page_full(st, frames.size(), bytes); },
      [&](const log_record& rec) { add(wire::replayed(rec.payload)); },
      [&](cached_event& c) { add(replay_frame(c)); });
  r.gap = r.gap || scan.gap;
  r.since = scan.through;
  send_page(self, r, std::move(frames), scan.done ? std::optional{st.durable_id} : std::nullopt);
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

}  // namespace sb
