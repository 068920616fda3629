#include "actors/user_actor.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <unordered_map>
#include <vector>

#include "actors/counted_actor.hpp"
#include "actors/messages.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/rate_limiter.hpp"

namespace sb {

namespace {

// Another node's connections of this user, as the owning node counts them.
struct remote_count {
  caf::actor user_actor;
  uint32_t connections = 0;
};

struct user_state {
  std::string id;
  const config* cfg = nullptr;
  caf::actor hub;
  view_ptr view;
  std::vector<caf::actor> connections;
  uint32_t claiming = 0;  // registrations waiting for the owner's answer
  std::string counted_by;  // the node that holds this node's count (owner)
  std::map<std::string, remote_count> remote;  // on the owner: other nodes' counts
  rate_limiter bucket{1, 1};
  request_bucket_ptr requests;  // shared with the user's connection actors
  // Channels each connection here joined with `subscribe`, and their sum.
  std::unordered_map<caf::actor_id, std::size_t> slots;
  std::size_t slots_taken = 0;
  uint64_t registrations = 0;  // handled requests forwarded by the hub
};

using user_actor = counted_actor<user_state>;

// The node that counts this user's connections cluster-wide; none when it
// is this one (or there is no cluster).
const node_ref* counting_node(const user_state& st) {
  if (!st.view || st.view->owners.empty()) return nullptr;
  auto owner = st.view->rank("user/" + st.id).front();
  if (owner.id == st.cfg->node_id) return nullptr;
  for (auto& n : st.view->owners)
    if (n.id == owner.id) return &n;
  return nullptr;
}

uint32_t total(const user_state& st) {
  uint32_t n = static_cast<uint32_t>(st.connections.size()) + st.claiming;
  for (auto& [node, c] : st.remote) n += c.connections;
  return n;
}

bool idle(const user_state& st) {
  return st.connections.empty() && st.claiming == 0 && st.remote.empty();
}

void report_if_idle(user_actor* self) {
  if (idle(self->state))
    self->send(self->state.hub, idle_atom::value, user_atom::value, self->state.id,
               self->state.registrations);
}

// Tells the counting node how many connections this node has now.
void report_count(user_actor* self) {
  auto& st = self->state;
  auto* owner = counting_node(st);
  if (!owner) return;
  st.counted_by = owner->id;
  self->send(owner->hub, count_atom::value, st.id, st.cfg->node_id, caf::actor{self},
             static_cast<uint32_t>(st.connections.size()));
}

caf::error over_limit(user_actor* self) {
  auto& st = self->state;
  log::info("connection_limit", {{"user", st.id}, {"limit", st.cfg->limits.max_connections_per_user}});
  return make_error(sb_error::too_many_connections);
}

void accept(user_actor* self, const caf::actor& conn) {
  self->state.connections.push_back(conn);
  self->monitor(conn);
}

// A connection's answer: this actor, and the user's request bucket.
caf::result<caf::actor, request_bucket_ptr> register_connection(user_actor* self,
                                                                const caf::actor& conn) {
  auto& st = self->state;
  ++st.registrations;
  auto limit = st.cfg->limits.max_connections_per_user;
  auto* owner = counting_node(st);
  if (!owner) {
    if (total(st) >= limit) {
      report_if_idle(self);
      return over_limit(self);
    }
    accept(self, conn);
    return {caf::actor{self}, st.requests};
  }
  // Another node counts this user: ask it for one more.
  st.counted_by = owner->id;
  ++st.claiming;
  auto rp = self->make_response_promise<caf::actor, request_bucket_ptr>();
  auto wanted = static_cast<uint32_t>(st.connections.size()) + st.claiming;
  self->request(owner->hub, st.cfg->cluster.dead_after, claim_atom::value, st.id,
                st.cfg->node_id, caf::actor{self}, wanted)
      .then(
          [=](bool granted) mutable {
            --self->state.claiming;
            if (!granted) {
              rp.deliver(over_limit(self));
              report_if_idle(self);
              return;
            }
            accept(self, conn);
            rp.deliver(caf::actor{self}, self->state.requests);
          },
          [=](caf::error& e) mutable {
            // The counting node is unreachable: count locally rather than
            // refuse every connection while the cluster settles.
            log::warn("claim_failed", {{"user", self->state.id}, {"why", to_string(e)}});
            --self->state.claiming;
            accept(self, conn);
            rp.deliver(caf::actor{self}, self->state.requests);
          });
  return rp;
}

// On the counting node: another node's count for this user. A claim asks
// for room for one more (refused over the limit); a report just sets it.
bool claim(user_actor* self, const std::string& node, const caf::actor& who, uint32_t count,
           bool is_claim) {
  auto& st = self->state;
  ++st.registrations;
  auto it = st.remote.find(node);
  uint32_t had = it == st.remote.end() ? 0 : it->second.connections;
  if (is_claim && total(st) - had + count > st.cfg->limits.max_connections_per_user) {
    report_if_idle(self);
    return false;
  }
  if (count == 0) {
    if (it != st.remote.end()) st.remote.erase(it);
    report_if_idle(self);
    return true;
  }
  if (it == st.remote.end() || it->second.user_actor != who) self->monitor(who);
  st.remote[node] = {who, count};
  return true;
}

caf::result<bool> take_slot(user_state& st, const caf::actor& conn) {
  // A connection that closed meanwhile would keep its slot: nothing frees it.
  if (std::none_of(st.connections.begin(), st.connections.end(),
                   [&](const caf::actor& c) { return c == conn; }))
    return make_error(sb_error::not_found);
  if (st.slots_taken >= st.cfg->limits.max_channels_per_user) {
    log::debug("channel_limit", {{"user", st.id}, {"limit", st.cfg->limits.max_channels_per_user}});
    return make_error(sb_error::too_many_channels);
  }
  ++st.slots[conn.id()];
  ++st.slots_taken;
  return true;
}

// Gives back `n` of the connection's slots, or all of them.
void free_slots(user_state& st, caf::actor_id conn, std::size_t n) {
  auto it = st.slots.find(conn);
  if (it == st.slots.end()) return;
  n = std::min(n, it->second);
  it->second -= n;
  st.slots_taken -= n;
  if (it->second == 0) st.slots.erase(it);
}

user_stats stats_of(user_state& st) {
  return {st.id, static_cast<uint32_t>(st.connections.size()), st.bucket.tokens(),
          st.cfg->limits.rate_limit_per_second, st.cfg->limits.rate_limit_burst};
}

std::vector<admin_field> dump(user_state& st) {
  std::string remote;
  for (auto& [node, c] : st.remote)
    remote += (remote.empty() ? "" : " ") + node + "=" + std::to_string(c.connections);
  return {{"connections", std::to_string(st.connections.size())},
          {"claiming", std::to_string(st.claiming)},
          {"counted_by", st.counted_by.empty() ? st.cfg->node_id : st.counted_by},
          {"remote_counts", remote},
          {"rate_limit_tokens", std::to_string(st.bucket.tokens())},
          {"request_tokens", std::to_string(st.requests->tokens())},
          {"subscriptions", std::to_string(st.slots_taken)},
          {"registrations", std::to_string(st.registrations)}};
}

caf::behavior user(user_actor* self, caf::actor hub, std::string id, const config* cfg,
                   view_ptr view) {
  auto& st = self->state;
  st.id = std::move(id);
  st.cfg = cfg;
  st.hub = std::move(hub);
  st.view = std::move(view);
  st.bucket = rate_limiter{cfg->limits.rate_limit_per_second, cfg->limits.rate_limit_burst};
  st.requests = std::make_shared<request_bucket>(cfg->limits.request_rate_per_second,
                                                 cfg->limits.request_rate_burst);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    auto& conns = st.connections;
    auto before = conns.size();
    conns.erase(std::remove_if(conns.begin(), conns.end(),
                               [&](const caf::actor& c) { return c.address() == dm.source; }),
                conns.end());
    if (conns.size() != before) report_count(self);
    free_slots(st, dm.source.id(), std::numeric_limits<std::size_t>::max());
    for (auto it = st.remote.begin(); it != st.remote.end(); ++it)
      if (it->second.user_actor.address() == dm.source) {
        st.remote.erase(it);
        break;
      }
    report_if_idle(self);
  });
  return {
      [=](register_atom, const caf::actor& conn) { return register_connection(self, conn); },
      [=](claim_atom, const std::string& node, const caf::actor& who, uint32_t count) {
        return claim(self, node, who, count, true);
      },
      [=](count_atom, const std::string& node, const caf::actor& who, uint32_t count) {
        claim(self, node, who, count, false);
      },
      [=](view_atom, view_ptr& v) {
        auto& st = self->state;
        st.view = std::move(v);
        auto* owner = counting_node(st);
        std::string now = owner ? owner->id : st.cfg->node_id;
        if (now == st.counted_by || st.connections.empty()) return;
        report_count(self);
      },
      [=](publish_atom, const caf::actor& channel, draft& d) -> caf::result<caf::message> {
        if (!self->state.bucket.try_take()) {
          log::debug("rate_limited", {{"user", self->state.id}});
          metrics::node().rate_limited++;
          return make_error(sb_error::rate_limited);
        }
        return self->delegate(channel, publish_atom::value, std::move(d));
      },
      [=](slot_atom, join_atom, const caf::actor& conn) { return take_slot(self->state, conn); },
      [=](slot_atom, leave_atom, const caf::actor& conn) { free_slots(self->state, conn.id(), 1); },
      [=](kick_atom, uint16_t code) {
        for (auto& c : self->state.connections) self->send(c, kick_atom::value, code);
        log::info("user_kicked", {{"user", self->state.id},
                                  {"connections", self->state.connections.size()}});
        return static_cast<uint32_t>(self->state.connections.size());
      },
      [=](idle_atom) {
        if (idle(self->state)) self->quit();
      },
      [=](admin_atom, bool with_fields) {
        auto s = self->stats("user", "user:" + self->state.id);
        if (with_fields) s.fields = dump(self->state);
        return s;
      },
      [=](admin_atom, user_atom) {
        return user_answer{stats_of(self->state), self->state.connections};
      },
  };
}

}  // namespace

caf::actor spawn_user(caf::event_based_actor* parent, caf::actor hub, std::string user_id,
                      const config& cfg, view_ptr view) {
  return parent->spawn(user, std::move(hub), std::move(user_id), &cfg, std::move(view));
}

}  // namespace sb
