#include "cluster/membership_actor.hpp"

#include <map>
#include <set>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/all.hpp>

#include "actors/counted_actor.hpp"
#include "actors/messages.hpp"
#include "core/log.hpp"
#include "core/time.hpp"

namespace sb {

namespace {

struct peer {
  std::string address;
  caf::actor handle;  // its membership actor
  caf::actor hub;
  bool up = false;
  bool draining = false;
  int64_t since_ms = 0;
};

struct membership_state {
  std::string self_address;
  bool draining = false;  // this node hands its channels over before it stops
  std::map<std::string, peer> members;  // by node id, this node excluded
  std::set<std::string> addresses;      // cluster addresses to stay connected to
  std::set<std::string> dialing;
  std::map<std::string, std::string> node_at;  // cluster address -> node id, once known
  std::map<std::string, int> waited;           // ticks an address has been left undialled
};

using membership = counted_actor<membership_state>;

std::pair<std::string, uint16_t> split_address(const std::string& addr) {
  auto colon = addr.rfind(':');
  return {addr.substr(0, colon), static_cast<uint16_t>(std::stoul(addr.substr(colon + 1)))};
}

// Dials one address at a time with CAF's blocking connect, on a thread of
// its own (a detached actor), so no scheduler thread ever waits on a network.
void dialer(caf::blocking_actor* self, bool tls) {
  bool running = true;
  self->receive_while(running)(
      [&](connect_atom, const std::string& addr) -> caf::result<caf::actor> {
        auto [host, port] = split_address(addr);
        auto& sys = self->home_system();
        auto h = tls ? caf::openssl::remote_actor<caf::actor>(sys, host, port)
                     : sys.middleman().remote_actor<caf::actor>(host, port);
        if (!h) return h.error();
        return *h;
      },
      [&](caf::exit_msg&) { running = false; });
}

// Tells the hub who may own channels now: every up member that is not
// draining, this node included.
void publish_view(membership* self, const config* cfg, const caf::actor& hub) {
  auto& st = self->state;
  auto v = std::make_shared<cluster_view>();
  v->self = cfg->node_id;
  v->replication = cfg->cluster.replication;
  v->members = 1 + st.addresses.size();
  if (!st.draining) v->owners.push_back({cfg->node_id, hub});
  for (const auto& [node, p] : st.members) {
    if (!p.up) continue;
    v->peers.push_back({node, p.hub});
    if (!p.draining) v->owners.push_back({node, p.hub});
  }
  std::sort(v->owners.begin(), v->owners.end(),
            [](const node_ref& a, const node_ref& b) { return a.id < b.id; });
  self->send(hub, view_atom::value, view_ptr{std::move(v)});
}

void mark(membership* self, const config* cfg, const caf::actor& local_hub, const std::string& node,
          const std::string& address, const caf::actor& handle, const caf::actor& hub,
          bool draining) {
  auto& st = self->state;
  if (node.empty()) return;
  if (address == st.self_address || handle == caf::actor{self}) {
    st.addresses.erase(address);
    return;
  }
  st.node_at[address] = node;
  auto& p = st.members[node];
  bool changed = !p.up || p.handle != handle || p.draining != draining;
  p.address = address;
  st.addresses.insert(address);
  if (!changed) return;
  p.handle = handle;
  p.hub = hub;
  p.up = true;
  p.draining = draining;
  p.since_ms = now_ms();
  self->monitor(handle);
  log::info("member_up", {{"member", node}, {"address", address}, {"draining", draining}});
  publish_view(self, cfg, local_hub);
}

void dial(membership* self, const caf::actor& dialer_actor, const config* cfg,
          const caf::actor& hub, const std::string& addr) {
  auto& st = self->state;
  if (!st.dialing.insert(addr).second) return;
  auto timeout = cfg->cluster.dead_after;
  // A fresh connection answers at once; a reply lost with its connection
  // would otherwise hold the next dial back for the whole timeout.
  auto hello_timeout = 4 * cfg->cluster.heartbeat_interval;
  self->request(dialer_actor, timeout, connect_atom::value, addr)
      .then(
          [=](const caf::actor& remote) {
            self->request(remote, hello_timeout, hello_atom::value, cfg->node_id,
                          self->state.self_address, caf::actor{self}, hub, self->state.draining)
                .then(
                    [=](const std::string& node, const std::string& address,
                        const std::vector<std::string>& known,
                        const std::vector<std::string>& known_ids, const caf::actor& remote_hub,
                        bool draining) {
                      auto& st = self->state;
                      st.dialing.erase(addr);
                      mark(self, cfg, hub, node, address, remote, remote_hub, draining);
                      // Knowing the others' ids at once lets the tie-break in
                      // should_dial pick who dials without waiting.
                      for (std::size_t i = 0; i < known.size(); ++i) {
                        if (known[i] == st.self_address) continue;
                        st.addresses.insert(known[i]);
                        if (i < known_ids.size() && !known_ids[i].empty() &&
                            known_ids[i] != cfg->node_id)
                          st.node_at.emplace(known[i], known_ids[i]);
                      }
                    },
                    [=](caf::error&) { self->state.dialing.erase(addr); });
          },
          [=](caf::error&) { self->state.dialing.erase(addr); });
}

// Whether to dial `addr` now. Two nodes dialling each other at once open two
// connections for one pair, and one replaces the other (both ends see the
// member go down). So one side of each pair dials first: the smaller node id,
// or while ids are unknown the smaller address. The other dials only when
// nothing came for a few ticks (the first may not know its address).
bool should_dial(membership_state& st, const std::string& addr, const std::string& self_id) {
  constexpr int patience_ticks = 3;
  for (const auto& [node, p] : st.members)
    if (p.address == addr && p.up) {
      st.waited.erase(addr);
      return false;
    }
  auto known = st.node_at.find(addr);
  bool first = known == st.node_at.end() ? st.self_address < addr : self_id < known->second;
  return first || ++st.waited[addr] > patience_ticks;
}

// Asks the local hub and every up member to close a user's connections, and
// answers with the sum once all have answered (or timed out: counted as 0).
void kick_everywhere(membership* self, const caf::actor& hub, const config* cfg,
                     const std::string& user_id, uint16_t code) {
  struct tally {
    caf::response_promise rp;
    uint32_t closed = 0;
    std::size_t waiting = 1;
  };
  auto t = std::make_shared<tally>();
  t->rp = self->make_response_promise();
  auto done = [=](uint32_t n) {
    t->closed += n;
    if (--t->waiting == 0) t->rp.deliver(t->closed);
  };
  auto timeout = cfg->cluster.dead_after;
  std::vector<caf::actor> peers;
  for (const auto& [node, p] : self->state.members)
    if (p.up) peers.push_back(p.handle);
  t->waiting += peers.size();
  self->request(hub, timeout, kick_atom::value, user_id, code)
      .then(done, [=](caf::error&) { done(0); });
  for (const auto& peer : peers)
    self->request(peer, timeout, kick_atom::value, user_id, code, true)
        .then(done, [=](caf::error&) { done(0); });
}

std::vector<admin_field> dump(const membership_state& st) {
  std::vector<admin_field> out{{"address", st.self_address},
                               {"draining", st.draining ? "yes" : "no"},
                               {"dialing", std::to_string(st.dialing.size())}};
  for (const auto& [node, p] : st.members)
    out.push_back({"member " + node, p.address + (p.up ? (p.draining ? " draining" : " up") : " down")});
  return out;
}

caf::behavior membership_behavior(membership* self, const config* cfg, std::string self_address,
                                  caf::actor dialer_actor, caf::actor hub) {
  auto& st = self->state;
  st.self_address = std::move(self_address);
  for (const auto& s : cfg->cluster.seeds)
    if (s != st.self_address) st.addresses.insert(s);
  self->set_down_handler([=](caf::down_msg& dm) {
    for (auto& [node, p] : self->state.members)
      if (p.up && p.handle.address() == dm.source) {
        p.up = false;
        p.since_ms = now_ms();
        log::warn("member_down", {{"member", node}, {"address", p.address},
                                  {"why", to_string(dm.reason)}});
        publish_view(self, cfg, hub);
      }
  });
  self->set_exit_handler([=](caf::exit_msg& msg) {
    self->send_exit(dialer_actor, msg.reason);
    self->quit(msg.reason);
  });
  self->send(self, tick_atom::value);
  publish_view(self, cfg, hub);
  return {
      [=](tick_atom) {
        for (const auto& addr : std::set<std::string>{self->state.addresses})
          if (should_dial(self->state, addr, cfg->node_id)) dial(self, dialer_actor, cfg, hub, addr);
        self->delayed_send(self, cfg->cluster.heartbeat_interval, tick_atom::value);
      },
      [=](hello_atom, const std::string& node, const std::string& address,
          const caf::actor& remote, const caf::actor& remote_hub, bool draining) {
        mark(self, cfg, hub, node, address, remote, remote_hub, draining);
        auto& st = self->state;
        std::vector<std::string> known(st.addresses.begin(), st.addresses.end());
        std::vector<std::string> ids;
        for (const auto& a : known) {
          auto it = st.node_at.find(a);
          ids.push_back(it == st.node_at.end() ? std::string{} : it->second);
        }
        return caf::make_message(cfg->node_id, st.self_address, std::move(known), std::move(ids),
                                 hub, st.draining);
      },
      [=](drain_atom) {
        auto& st = self->state;
        if (st.draining) return;
        st.draining = true;
        log::info("node_draining", {{"node", cfg->node_id}});
        for (const auto& [node, p] : st.members)
          if (p.up) self->send(p.handle, drain_atom::value, cfg->node_id);
        publish_view(self, cfg, hub);
      },
      [=](drain_atom, const std::string& node) {
        auto it = self->state.members.find(node);
        if (it == self->state.members.end() || it->second.draining) return;
        it->second.draining = true;
        log::info("member_draining", {{"member", node}});
        publish_view(self, cfg, hub);
      },
      [=](kick_atom, const std::string& user_id, uint16_t code) {
        kick_everywhere(self, hub, cfg, user_id, code);
      },
      [=](kick_atom, const std::string& user_id, uint16_t code, bool) {
        return self->delegate(hub, kick_atom::value, user_id, code);
      },
      [=](caf::get_atom) {
        auto& st = self->state;
        std::vector<member_info> out{{cfg->node_id, st.self_address, true, st.draining, true, 0}};
        for (const auto& [node, p] : st.members)
          out.push_back({node, p.address, p.up, p.draining, false, p.since_ms});
        return out;
      },
      [=](admin_atom, bool with_fields) {
        auto s = self->stats("membership", "membership");
        if (with_fields) s.fields = dump(self->state);
        return s;
      },
  };
}

}  // namespace

caf::actor spawn_membership(caf::actor_system& sys, const config& cfg, caf::actor hub) {
  const auto& c = cfg.cluster;
  bool tls = !c.insecure;
  auto dialer_actor = sys.spawn<caf::detached>(dialer, tls);
  auto placeholder = c.host + ":" + std::to_string(c.port);
  auto actor = sys.spawn(membership_behavior, &cfg, placeholder, dialer_actor, std::move(hub));
  auto port = tls ? caf::openssl::publish(actor, c.port, c.host.c_str(), true)
                  : sys.middleman().publish(actor, c.port, c.host.c_str(), true);
  if (!port) {
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    throw std::runtime_error("cannot open the cluster port " + placeholder + ": " +
                             sys.render(port.error()));
  }
  log::info("cluster_port_open", {{"cluster_addr", c.host}, {"cluster_port", *port}, {"tls", tls ? "on" : "off"},
                                  {"seeds", std::to_string(c.seeds.size())}});
  return actor;
}

}  // namespace sb
