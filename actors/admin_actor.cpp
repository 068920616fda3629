#include "actors/admin_actor.hpp"

#include <algorithm>

#include "actors/counted_actor.hpp"
#include "actors/gather.hpp"
#include "actors/messages.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/time.hpp"

namespace sb {

namespace {

using namespace std::chrono_literals;

// A node's own actors answer within this; other nodes within the longer one
// (their own gathering included), both under the API bridge's 10 s.
constexpr auto local_timeout = 2s;
constexpr auto remote_timeout = 4s;

struct admin_state {
  const config* cfg = nullptr;
  std::function<void()> drain_self;
  int64_t started_ms = now_ms();
};

using admin_actor = counted_actor<admin_state>;
using report_fn = std::function<void(admin_report)>;
using handle_list = std::vector<std::pair<std::string, caf::actor>>;

bool owns(const hub_snapshot& snap, const std::string& self_id, const std::string& channel) {
  auto& v = snap.view;
  return !v || v->owners.empty() || v->rank(channel).front().id == self_id;
}

admin_report summary(admin_actor* self, const hub_snapshot& snap) {
  auto& st = self->state;
  admin_report r;
  r.node = st.cfg->node_id;
  r.uptime_ms = now_ms() - st.started_ms;
  r.connections = static_cast<uint32_t>(std::max<int64_t>(0, metrics::node().connections.load()));
  r.channels = static_cast<uint32_t>(snap.channels.size());
  for (auto& [name, actor] : snap.channels)
    if (owns(snap, st.cfg->node_id, name)) ++r.owned;
  return r;
}

std::vector<caf::actor> handles(const handle_list& list, const std::string& prefix,
                                bool exact = false) {
  std::vector<caf::actor> out;
  for (auto& [key, actor] : list)
    if (exact ? key == prefix : key.rfind(prefix, 0) == 0) out.push_back(actor);
  return out;
}

void channels_report(admin_actor* self, const admin_query& q, const hub_snapshot& snap,
                     admin_report r, report_fn done) {
  gather<channel_stats>(
      self, handles(snap.channels, q.arg), local_timeout,
      [r, done](std::vector<std::optional<channel_stats>> got) mutable {
        r.channel_list = answered(got);
        done(std::move(r));
      },
      admin_atom::value, channel_atom::value);
}

// The users (all, or the one q.arg names) and their connection actors.
void users_of(admin_actor* self, const hub_snapshot& snap, const std::string& user_id,
              std::function<void(std::vector<user_answer>)> done) {
  auto targets = user_id.empty() ? handles(snap.users, "") : handles(snap.users, user_id, true);
  gather<user_answer>(
      self, targets, local_timeout,
      [done](std::vector<std::optional<user_answer>> got) { done(answered(got)); },
      admin_atom::value, user_atom::value);
}

std::vector<caf::actor> connections_of(const std::vector<user_answer>& users) {
  std::vector<caf::actor> out;
  for (auto& u : users) out.insert(out.end(), u.connections.begin(), u.connections.end());
  return out;
}

void users_report(admin_actor* self, const admin_query& q, const hub_snapshot& snap,
                  admin_report r, report_fn done) {
  users_of(self, snap, q.arg, [=](std::vector<user_answer> users) mutable {
    for (auto& u : users) r.users.push_back(u.stats);
    gather<connection_stats>(
        self, connections_of(users), local_timeout,
        [r, done](std::vector<std::optional<connection_stats>> got) mutable {
          r.connection_list = answered(got);
          done(std::move(r));
        },
        admin_atom::value, connect_atom::value);
  });
}

// Every actor of this node that reports its counters; the replica does not
// (its file is left alone here), so it is listed by its CAF id only.
void actors_report(admin_actor* self, const admin_query& q, const hub_snapshot& snap,
                   admin_report r, report_fn done) {
  bool one = q.kind == admin_kind::actor;
  users_of(self, snap, {}, [=](std::vector<user_answer> users) mutable {
    std::vector<caf::actor> targets{snap.hub};
    if (snap.membership) targets.push_back(snap.membership);
    for (auto* list : {&snap.channels, &snap.users})
      for (auto& [key, actor] : *list) targets.push_back(actor);
    auto conns = connections_of(users);
    targets.insert(targets.end(), conns.begin(), conns.end());
    auto own = self->stats("admin", "admin");
    actor_stats replica{"replica", "replica", snap.replica.id(), -1, -1, {}};
    gather<actor_stats>(
        self, targets, local_timeout,
        [=](std::vector<std::optional<actor_stats>> got) mutable {
          auto all = answered(got);
          all.push_back(own);
          all.push_back(replica);
          for (auto& a : all) {
            bool wanted = one ? a.id == q.arg : q.arg.empty() || a.kind == q.arg;
            if (wanted) r.actors.push_back(std::move(a));
          }
          done(std::move(r));
        },
        admin_atom::value, one);
  });
}

void local_report(admin_actor* self, const admin_query& q, const hub_snapshot& snap,
                  report_fn done) {
  auto r = summary(self, snap);
  switch (q.kind) {
    case admin_kind::summary:
      done(std::move(r));
      return;
    case admin_kind::channels:
      channels_report(self, q, snap, std::move(r), std::move(done));
      return;
    case admin_kind::users:
      users_report(self, q, snap, std::move(r), std::move(done));
      return;
    case admin_kind::actors:
    case admin_kind::actor:
      actors_report(self, q, snap, std::move(r), std::move(done));
      return;
  }
}

// This node's report and, when asked everywhere, every up member's: the
// ones q.node names (empty: all).
caf::result<std::vector<admin_report>> answer(admin_actor* self, const admin_query& q,
                                              bool everywhere, const hub_snapshot& snap) {
  const auto& self_id = self->state.cfg->node_id;
  std::vector<node_ref> peers;
  if (everywhere && snap.view)
    for (auto& p : snap.view->peers)
      if (q.node.empty() || q.node == p.id) peers.push_back(p);
  bool here = q.node.empty() || q.node == self_id;
  auto rp = self->make_response_promise<std::vector<admin_report>>();
  auto out = std::make_shared<std::vector<admin_report>>();
  auto with_peers = [=](std::optional<admin_report> mine) mutable {
    std::vector<caf::actor> hubs;
    for (auto& p : peers) hubs.push_back(p.hub);
    gather<std::vector<admin_report>>(
        self, hubs, remote_timeout,
        [=](std::vector<std::optional<std::vector<admin_report>>> got) mutable {
          std::vector<admin_report> all;
          if (mine) all.push_back(std::move(*mine));
          for (std::size_t i = 0; i < got.size(); ++i) {
            if (got[i] && !got[i]->empty()) {
              all.push_back(std::move(got[i]->front()));
              continue;
            }
            log::warn("admin_node_silent", {{"member", peers[i].id}});
            admin_report silent;
            silent.node = peers[i].id;
            silent.reachable = false;
            all.push_back(std::move(silent));
          }
          rp.deliver(std::move(all));
        },
        admin_atom::value, q, false);
  };
  if (here)
    local_report(self, q, snap, [with_peers](admin_report r) mutable { with_peers(std::move(r)); });
  else
    with_peers(std::nullopt);
  return rp;
}

caf::result<bool> drain(admin_actor* self, const std::string& node, const hub_snapshot& snap) {
  if (node == self->state.cfg->node_id) {
    log::info("admin_drain", {{"node", node}});
    self->state.drain_self();
    return true;
  }
  if (!snap.view) return false;
  for (auto& p : snap.view->peers)
    if (p.id == node) {
      auto rp = self->make_response_promise<bool>();
      self->request(p.hub, remote_timeout, admin_atom::value, drain_atom::value, node)
          .then([rp](bool ok) mutable { rp.deliver(ok); },
                [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
      return rp;
    }
  return false;
}

caf::behavior admin(admin_actor* self, const config* cfg, std::function<void()> drain_self) {
  self->state.cfg = cfg;
  self->state.drain_self = std::move(drain_self);
  return {
      [=](admin_query& q, bool everywhere, hub_snapshot& snap) {
        return answer(self, q, everywhere, snap);
      },
      [=](drain_atom, const std::string& node, hub_snapshot& snap) {
        return drain(self, node, snap);
      },
  };
}

}  // namespace

caf::actor spawn_admin(caf::actor_system& sys, const config& cfg, std::function<void()> drain_self) {
  return sys.spawn(admin, &cfg, std::move(drain_self));
}

}  // namespace sb
