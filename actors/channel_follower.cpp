// A non-owner's side of a channel: it follows the owner's channel actor
// (the primary), which pushes each durable event once to this node; the
// follower renders it once and fans it out to its local members. Publishes,
// typing, history, presence and replays go to the primary.
#include "actors/channel_state.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/time.hpp"

namespace sb {

namespace {

// The node to follow: the view's owner, or the node this one handed the
// channel to while the view still names this node.
const node_ref* owner_to_follow(const channel_state& st) {
  if (!st.view) return nullptr;
  auto ranked = st.view->rank(st.name);
  if (ranked.empty()) return nullptr;
  const auto& want = ranked.front().id == st.cfg->node_id ? st.handed_to : ranked.front().id;
  for (auto& n : st.view->peers)
    if (n.id == want) return &n;
  return nullptr;
}

}  // namespace

void deliver(channel_state& st, const std::vector<log_record>& records) {
  bool any_filter = std::any_of(st.members.begin(), st.members.end(),
                                [](const member& m) { return !m.types.empty(); });
  std::size_t delivered = 0;
  for (auto& r : records) {
    if (r.event_id <= st.durable_id) continue;  // already had it (a primary switch)
    st.durable_id = r.event_id;
    auto live = wire::text_frame(r.payload);
    auto e = any_filter ? wire::parse_stored(st.name, r.payload) : std::nullopt;
    for (auto& m : st.members) {
      if (m.replaying) continue;
      if (!m.types.empty() && !(e && wants(m.types, *e))) continue;
      m.out->send(live);
      ++delivered;
    }
  }
  metrics::node().frames_delivered += delivered;
  st.space->frames_delivered += delivered;
}

namespace {

int64_t dead_after_ms(const channel_state& st) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(st.cfg->cluster.dead_after).count();
}

void retry_follow(channel_actor* self) {
  self->delayed_send(self, self->state.cfg->cluster.heartbeat_interval, follow_atom::value);
}

}  // namespace

void start_follower(channel_actor* self) {
  auto& st = self->state;
  st.role = channel_role::follower;
  st.ready = false;
  st.primary = nullptr;
  st.presence = local_presence(st);
  become_waiting(self);
  follow(self);
}

// Asks the owner's hub for the primary; retried every heartbeat until it
// answers (the owner may be syncing, or down and not yet noticed).
void follow(channel_actor* self) {
  auto& st = self->state;
  if (st.ready) return;
  auto* owner = owner_to_follow(st);
  if (!owner) {
    // The node this one handed the channel to is not in the view (yet, or
    // any more): give it dead_after to show up before taking the channel back.
    if (!st.handed_to.empty() && now_ms() - st.handed_at_ms > dead_after_ms(st)) st.handed_to.clear();
    bool mine = st.view && !st.view->owners.empty() &&
                st.view->rank(st.name).front().id == st.cfg->node_id;
    if (mine && st.handed_to.empty())
      start_primary(self);
    else
      retry_follow(self);
    return;
  }
  std::vector<wire::presence_entry> users;
  for (auto& [id, p] : st.presence) users.push_back(p);
  auto owner_id = owner->id;
  // A dead owner's hub never answers, and a new view starts another try.
  auto timeout = 4 * st.cfg->cluster.heartbeat_interval;
  self->request(owner->hub, timeout, follow_atom::value, st.name,
                caf::actor{self}, st.cfg->node_id, st.durable_id, st.epoch, std::move(users))
      .then(
          [=](follow_reply& r) {
            auto& st = self->state;
            if (st.ready || st.role != channel_role::follower) return;
            if (r.epoch == st.epoch) {
              // A primary that was hung may answer from before it syncs: it
              // pushes what this node already has once it has caught up.
              deliver(st, r.records);
              st.durable_id = std::max(st.durable_id, r.last_event_id);
            } else {
              st.epoch = r.epoch;
              st.durable_id = r.last_event_id;
            }
            for (auto& u : r.users) st.known[u.user.id] = u.user;
            st.primary = r.primary;
            self->monitor(st.primary);
            log::debug("channel_follow", {{"channel", st.name}, {"owner", owner_id},
                                          {"epoch", st.epoch}, {"last_event_id", st.durable_id}});
            for (auto& rp : st.replaying) rp.ticket = 0;  // answers from the old primary are void
            become_running(self);
            request_replays(self);
            check_owner(self);
            report_if_idle(self);
          },
          [=](caf::error& e) {
            log::debug("follow_failed", {{"channel", self->state.name}, {"owner", owner_id},
                                         {"why", to_string(e)}});
            retry_follow(self);
          });
}

void on_push(channel_actor* self, const std::string& epoch, std::vector<log_record>& records) {
  auto& st = self->state;
  if (st.role != channel_role::follower) return;
  if (epoch != st.epoch) {
    st.epoch = epoch;
    st.durable_id = 0;
  }
  if (!records.empty() && records.front().event_id > st.durable_id + 1) {
    // Events this node never got (the primary changed under it): follow
    // again from the last one it has; the answer brings the rest.
    log::warn("push_gap", {{"channel", st.name}, {"have", st.durable_id},
                           {"got", records.front().event_id}});
    start_follower(self);
    return;
  }
  deliver(st, records);
}

// Asks the primary for `r`'s next page; until the last comes, live events
// skip the member: each page holds every event pushed before it.
void request_replay(channel_actor* self, pending_replay& r) {
  auto& st = self->state;
  if (!st.ready || !st.primary) return;
  auto ticket = r.ticket = ++st.last_ticket;
  self->request(st.primary, st.cfg->cluster.dead_after, replay_atom::value, r.since,
                r.epoch.empty() ? st.epoch : r.epoch,
                std::vector<std::string>(r.types.begin(), r.types.end()))
      .then(
          [=](replay_page& page) {
            auto* r = find_replay(self->state, ticket);
            if (!r) return;  // asked again elsewhere, or gone
            std::vector<frame_ptr> frames;
            for (auto& p : page.payloads) frames.push_back(wire::replayed(p));
            r->gap = r->gap || page.gap;
            r->since = page.through;
            r->epoch = page.epoch;
            send_page(self, *r, std::move(frames),
                      page.more ? std::nullopt : std::optional{page.last_event_id});
          },
          [=](caf::error& e) {
            // The primary died or hung: asked again once the channel has one.
            auto* r = find_replay(self->state, ticket);
            if (!r) return;
            log::warn("replay_failed", {{"channel", self->state.name}, {"why", to_string(e)}});
            r->ticket = 0;
            if (self->state.ready) self->delayed_send(self, self->state.cfg->cluster.heartbeat_interval, replay_atom::value);
          });
}

// (Again) asks for every replay not under way, e.g. from a new primary.
void request_replays(channel_actor* self) {
  for (auto& r : self->state.replaying)
    if (r.ticket == 0) request_replay(self, r);
}

// This node became the primary: it serves the replays it was waiting for
// (answers and drains of the old requests find no ticket any more).
void take_over_replays(channel_actor* self) {
  auto& st = self->state;
  std::vector<caf::actor_addr> waiting;
  for (auto& r : st.replaying) waiting.push_back(r.conn);
  for (auto& conn : waiting)
    for (auto& r : st.replaying)
      if (r.conn == conn) {
        next_page(self, r);
        break;
      }
}

void forget_replay(channel_state& st, const caf::actor_addr& conn) {
  auto& r = st.replaying;
  r.erase(std::remove_if(r.begin(), r.end(), [&](const pending_replay& p) { return p.conn == conn; }),
          r.end());
}

// Tells the primary how many connections a user has here now.
void report_presence(channel_actor* self, const user_ref& user) {
  auto& st = self->state;
  if (!st.ready || st.role != channel_role::follower) return;
  auto it = st.presence.find(user.id);
  uint32_t n = it == st.presence.end() ? 0 : it->second.connections;
  self->send(st.primary, presence_atom::value, user, n);
}

}  // namespace sb
