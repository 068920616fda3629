#include "actors/hub_actor.hpp"

#include <limits>
#include <set>
#include <unordered_map>

#include "actors/channel_actor.hpp"
#include "actors/counted_actor.hpp"
#include "actors/messages.hpp"
#include "actors/relayed_calls.hpp"
#include "actors/replica_actor.hpp"
#include "actors/user_actor.hpp"
#include "core/log.hpp"
#include "storage/event_log.hpp"

namespace sb {

namespace {

struct directory_entry {
  caf::actor actor;
  uint64_t forwarded = 0;  // requests sent to it; compared with its idle count
};

// Names to local actors, and each actor's name: a mass disconnect stops
// thousands of actors at once, and finding each one's entry by scanning the
// names was quadratic (10,000 leaving users took the hub seconds).
class directory {
 public:
  using map = std::unordered_map<std::string, directory_entry>;

  map::iterator begin() { return entries_.begin(); }
  map::iterator end() { return entries_.end(); }
  map::const_iterator begin() const { return entries_.begin(); }
  map::const_iterator end() const { return entries_.end(); }
  map::iterator find(const std::string& name) { return entries_.find(name); }
  std::size_t size() const { return entries_.size(); }

  // The entry for `name`, its actor made by `spawn` when it has none.
  template <class Spawn>
  directory_entry& get(const std::string& name, Spawn spawn) {
    auto& e = entries_[name];
    if (!e.actor) {
      e.actor = spawn();
      names_[e.actor.id()] = name;
    }
    return e;
  }

  void erase(map::iterator it) {
    names_.erase(it->second.actor.id());
    entries_.erase(it);
  }

  // `who` is a local actor: its id names it.
  void forget(const caf::actor_addr& who) {
    auto n = names_.find(who.id());
    if (n == names_.end()) return;
    entries_.erase(n->second);
    names_.erase(n);
  }

 private:
  map entries_;
  std::unordered_map<caf::actor_id, std::string> names_;
};

struct hub_state {
  directory channels;
  directory users;
  // API requests under way at other nodes' hubs: failed at once when that
  // node goes down, so the caller can retry on the new owner.
  relayed_calls calls;
  std::set<caf::actor_addr> watched;  // those hubs, monitored
  view_ptr view;     // none for a single node
  caf::actor replica;
  caf::actor admin;
  caf::actor membership;  // the view's sender; none for a single node
};

using hub_actor = counted_actor<hub_state>;

// Drops an idle child, unless a request forwarded to it is still in flight:
// then the child is busy again and will report idle later if need be.
void retire(caf::event_based_actor* self, directory& dir, const std::string& key,
            uint64_t handled) {
  auto it = dir.find(key);
  auto sender = caf::actor_cast<caf::actor>(self->current_sender());
  if (it == dir.end() || it->second.actor != sender || it->second.forwarded != handled)
    return;
  dir.erase(it);
  self->send(sender, idle_atom::value);
}

// The owner's hub, for a server-API request on a channel another node owns.
// A request another hub forwarded is served here whatever this node's view
// says, so two nodes whose views briefly differ never pass one back and forth.
caf::actor remote_owner(hub_actor* self, const std::string& channel) {
  auto& v = self->state.view;
  bool forwarded = self->current_sender() && self->current_sender()->node() != self->node();
  if (!v || forwarded || v->owners.empty()) return nullptr;
  auto owner = v->rank(channel).front();
  return owner.id == v->self ? nullptr : owner.hub;
}

// Asks the owner's hub for an API request and answers the caller.
template <class... Rs, class... Ts>
caf::result<caf::message> call_owner(hub_actor* self, const caf::actor& owner, Ts&&... xs) {
  constexpr auto timeout = std::chrono::seconds(9);  // under the API bridge's 10 s
  auto& st = self->state;
  if (st.watched.insert(owner.address()).second) self->monitor(owner);
  return st.calls.relay<Rs...>(self, owner, timeout, std::forward<Ts>(xs)...);
}

hub_snapshot snapshot(hub_actor* self) {
  auto& st = self->state;
  hub_snapshot s{caf::actor{self}, st.replica, st.membership, st.view, {}, {}};
  for (auto& [name, e] : st.channels) s.channels.emplace_back(name, e.actor);
  for (auto& [id, e] : st.users) s.users.emplace_back(id, e.actor);
  return s;
}

std::vector<admin_field> dump(const hub_state& st) {
  std::size_t calls = st.calls.size();
  return {{"channels", std::to_string(st.channels.size())},
          {"users", std::to_string(st.users.size())},
          {"relayed_calls", std::to_string(calls)},
          {"owners", st.view ? std::to_string(st.view->owners.size()) : "1"},
          {"peers", st.view ? std::to_string(st.view->peers.size()) : "0"}};
}

void fail_calls(hub_actor* self, const caf::actor_addr& hub) {
  auto& st = self->state;
  if (st.watched.erase(hub)) st.calls.fail(hub, make_error(sb_error::not_owner));
}

caf::behavior hub(hub_actor* self, const config* cfg, event_log* log, caf::actor admin) {
  self->state.replica = spawn_replica(self, log, cfg->node_id);
  self->state.admin = std::move(admin);
  self->set_down_handler([=](caf::down_msg& dm) {
    if (dm.source.node() == self->node()) {
      self->state.channels.forget(dm.source);
      self->state.users.forget(dm.source);
    }
    fail_calls(self, dm.source);
  });
  self->set_exit_handler([=](caf::exit_msg& msg) {
    for (auto* dir : {&self->state.channels, &self->state.users})
      for (auto& [key, entry] : *dir) self->send_exit(entry.actor, msg.reason);
    self->send_exit(self->state.replica, msg.reason);
    self->quit(msg.reason);
  });
  auto entry = [=](directory& dir, const std::string& key, auto spawn) -> directory_entry& {
    auto& e = dir.get(key, [&] {
      auto a = spawn();
      self->monitor(a);
      return a;
    });
    ++e.forwarded;
    return e;
  };
  auto channel_of = [=](const std::string& name) {
    return entry(self->state.channels, name, [&] {
             return spawn_channel(self, caf::actor{self}, self->state.replica, name,
                                  cfg->namespace_of(name), log, *cfg, self->state.view);
           }).actor;
  };
  auto user_of = [=](const std::string& id) {
    return entry(self->state.users, id, [&] {
             return spawn_user(self, caf::actor{self}, id, *cfg, self->state.view);
           }).actor;
  };
  return {
      [=](connect_atom, const std::string& user_id, const caf::actor& conn) {
        return self->delegate(user_of(user_id), register_atom::value, conn);
      },
      [=](claim_atom, const std::string& user_id, const std::string& node, const caf::actor& who,
          uint32_t count) {
        return self->delegate(user_of(user_id), claim_atom::value, node, who, count);
      },
      [=](count_atom, const std::string& user_id, const std::string& node, const caf::actor& who,
          uint32_t count) {
        self->send(user_of(user_id), count_atom::value, node, who, count);
      },
      [=](join_atom, const std::string& channel, join_request& req) {
        return self->delegate(channel_of(channel), join_atom::value, std::move(req));
      },
      [=](api_atom, publish_atom, const std::string& channel, draft& d) -> caf::result<caf::message> {
        if (auto owner = remote_owner(self, channel))
          return call_owner<uint64_t, std::string>(self, owner, api_atom::value,
                                                   publish_atom::value, channel, std::move(d));
        return self->delegate(channel_of(channel), api_atom::value, publish_atom::value,
                              std::move(d));
      },
      [=](api_atom, history_atom, const std::string& channel, const history_query& q) -> caf::result<caf::message> {
        if (auto owner = remote_owner(self, channel))
          return call_owner<history_page>(self, owner, api_atom::value, history_atom::value,
                                          channel, q);
        return self->delegate(channel_of(channel), api_atom::value, history_atom::value, q);
      },
      [=](api_atom, presence_atom, const std::string& channel) -> caf::result<caf::message> {
        if (auto owner = remote_owner(self, channel))
          return call_owner<std::vector<wire::presence_entry>>(self, owner, api_atom::value,
                                                               presence_atom::value, channel);
        return self->delegate(channel_of(channel), api_atom::value, presence_atom::value);
      },
      [=](api_atom, info_atom, const std::string& channel) -> caf::result<caf::message> {
        if (auto owner = remote_owner(self, channel))
          return call_owner<std::string, uint64_t, std::string, std::vector<std::string>>(
              self, owner, api_atom::value, info_atom::value, channel);
        return self->delegate(channel_of(channel), api_atom::value, info_atom::value);
      },
      // From other nodes.
      [=](follow_atom, const std::string& channel, const caf::actor& who, const std::string& node,
          uint64_t since, const std::string& epoch,
          const std::vector<wire::presence_entry>& users) {
        return self->delegate(channel_of(channel), follow_atom::value, who, node, since, epoch,
                              users);
      },
      [=](sync_atom, const std::string& channel, const std::string& node,
          const log_position& asker) -> caf::result<caf::message> {
        // Only a node that agrees who owns the channel answers: having
        // answered, its replica refuses every other node's writes.
        auto& view = self->state.view;
        if (view && !view->owners.empty() && view->rank(channel).front().id != node)
          return make_error(sb_error::not_owner);
        auto it = self->state.channels.find(channel);
        if (it == self->state.channels.end())
          return self->delegate(self->state.replica, sync_atom::value, channel, asker,
                                std::numeric_limits<uint64_t>::max());
        ++it->second.forwarded;
        return self->delegate(it->second.actor, sync_atom::value, node, asker);
      },
      [=](replicate_atom, replica_batch& b) {
        return self->delegate(self->state.replica, replicate_atom::value, std::move(b));
      },
      [=](view_atom, view_ptr& v) {
        self->state.view = v;
        self->state.membership = caf::actor_cast<caf::actor>(self->current_sender());
        self->send(self->state.replica, view_atom::value, v);
        for (auto& [name, entry] : self->state.channels) self->send(entry.actor, view_atom::value, v);
        for (auto& [id, entry] : self->state.users) self->send(entry.actor, view_atom::value, v);
      },
      [=](kick_atom, const std::string& user_id, uint16_t code) -> caf::result<caf::message> {
        auto it = self->state.users.find(user_id);
        if (it == self->state.users.end()) return caf::make_message(uint32_t{0});
        return self->delegate(it->second.actor, kick_atom::value, code);
      },
      // A drain: every connection of this node goes, to reconnect elsewhere.
      [=](kick_atom, uint16_t code) {
        for (auto& [id, entry] : self->state.users) self->send(entry.actor, kick_atom::value, code);
      },
      [=](admin_atom, admin_query& q, bool everywhere) {
        return self->delegate(self->state.admin, std::move(q), everywhere, snapshot(self));
      },
      [=](admin_atom, drain_atom, const std::string& node) {
        return self->delegate(self->state.admin, drain_atom::value, node, snapshot(self));
      },
      [=](admin_atom, bool with_fields) {
        auto s = self->stats("hub", "hub");
        if (with_fields) s.fields = dump(self->state);
        return s;
      },
      [=](idle_atom, channel_atom, const std::string& name, uint64_t handled) {
        retire(self, self->state.channels, name, handled);
      },
      [=](idle_atom, user_atom, const std::string& id, uint64_t handled) {
        retire(self, self->state.users, id, handled);
      },
  };
}

}  // namespace

caf::actor spawn_hub(caf::actor_system& sys, const config& cfg, event_log* log, caf::actor admin) {
  return sys.spawn(hub, &cfg, log, std::move(admin));
}

}  // namespace sb
