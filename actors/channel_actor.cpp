#include "actors/channel_actor.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <vector>

#include "actors/messages.hpp"
#include "core/dedup_window.hpp"
#include "core/log.hpp"
#include "core/time.hpp"

namespace sb {

namespace {

struct channel_state {
  std::string name;
  std::string epoch;
  uint64_t last_event_id = 0;
  std::vector<member> members;
  std::map<std::string, wire::presence_entry> presence;  // by user id
  std::deque<event> recent;  // the retained events, oldest first, ids contiguous
  uint64_t joins = 0;        // handled joins forwarded by the hub
  dedup_window sent_ids{10 * 60 * 1000};

  event* find(uint64_t event_id) {
    if (recent.empty() || event_id < recent.front().event_id || event_id > last_event_id)
      return nullptr;
    return &recent[event_id - recent.front().event_id];
  }
};

std::string random_epoch() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

void broadcast(channel_state& st, const frame_ptr& f) {
  for (auto& m : st.members) m.out->send(f);
}

// Checks that a read, reaction or delete names a live message this user may touch.
caf::error check_target(channel_state& st, const draft& d) {
  if (d.kind == event_kind::message) return caf::none;
  auto* target = st.find(d.message_id);
  if (!target || target->body.kind != event_kind::message || target->deleted)
    return make_error(sb_error::not_found);
  if (d.kind == event_kind::remove && target->body.user.id != d.user.id &&
      d.user.role != "admin" && d.user.role != "moderator")
    return make_error(sb_error::forbidden);
  return caf::none;
}

uint64_t append(channel_state& st, draft d, const namespace_config& ns) {
  event e;
  e.channel = st.name;
  e.event_id = ++st.last_event_id;
  e.timestamp_ms = now_ms();
  e.body = std::move(d);
  if (e.body.kind == event_kind::remove) {
    auto* target = st.find(e.body.message_id);
    target->deleted = true;
    target->body.content.clear();
  }
  st.recent.push_back(std::move(e));
  while (st.recent.size() > ns.history_size) st.recent.pop_front();
  return st.last_event_id;
}

void report_if_idle(caf::stateful_actor<channel_state>* self, const caf::actor& hub) {
  if (self->state.members.empty())
    self->send(hub, idle_atom::value, channel_atom::value, self->state.name, self->state.joins);
}

// Removes a member; announces user_left when it was the user's last connection.
bool remove_member(caf::stateful_actor<channel_state>* self, const caf::actor_addr& conn,
                   const namespace_config& ns) {
  auto& st = self->state;
  auto it = std::find_if(st.members.begin(), st.members.end(),
                         [&](const member& m) { return m.connection.address() == conn; });
  if (it == st.members.end()) return false;
  user_ref user = it->user;
  *it = std::move(st.members.back());
  st.members.pop_back();
  auto p = st.presence.find(user.id);
  if (p != st.presence.end() && --p->second.connections == 0) {
    st.presence.erase(p);
    if (ns.presence) broadcast(st, wire::membership(false, st.name, user, now_ms()));
  }
  return true;
}

caf::behavior channel(caf::stateful_actor<channel_state>* self, caf::actor hub,
                      std::string name, namespace_config ns) {
  self->state.name = std::move(name);
  self->state.epoch = random_epoch();
  log::debug("channel_start", {{"channel", self->state.name}, {"epoch", self->state.epoch}});
  self->set_down_handler([=](caf::down_msg& dm) {
    if (remove_member(self, dm.source, ns)) report_if_idle(self, hub);
  });
  return {
      [=](join_atom, member& m) {
        auto& st = self->state;
        ++st.joins;
        self->monitor(m.connection);
        auto& p = st.presence[m.user.id];
        p.user = m.user;
        if (++p.connections == 1 && ns.presence)
          broadcast(st, wire::membership(true, st.name, m.user, now_ms()));
        st.members.push_back(std::move(m));
        return joined{caf::actor{self}, {st.name, st.epoch, st.last_event_id}};
      },
      [=](leave_atom, const caf::actor& conn) {
        auto& st = self->state;
        self->demonitor(conn);
        if (remove_member(self, conn.address(), ns)) report_if_idle(self, hub);
        return wire::channel_position{st.name, st.epoch, st.last_event_id};
      },
      [=](publish_atom, draft& d) -> caf::result<uint64_t> {
        auto& st = self->state;
        auto now = now_ms();
        std::string resend_key;
        if (!d.client_id.empty()) {
          resend_key = dedup_window::key(d.user.id, d.client_id);
          if (auto first = st.sent_ids.find(resend_key, now)) return *first;
        }
        if (auto err = check_target(st, d)) return err;
        auto id = append(st, std::move(d), ns);
        if (!resend_key.empty()) st.sent_ids.remember(resend_key, id, now);
        broadcast(st, wire::stored_event(st.recent.back()));
        return id;
      },
      [=](typing_atom, const user_ref& user, bool is_typing) {
        auto f = wire::typing(self->state.name, user, is_typing);
        for (auto& m : self->state.members)
          if (m.user.id != user.id) m.out->send(f);
      },
      [=](presence_atom) {
        std::vector<wire::presence_entry> users;
        for (auto& [id, entry] : self->state.presence) users.push_back(entry);
        return users;
      },
      [=](idle_atom) {
        if (self->state.members.empty()) {
          log::debug("channel_stop", {{"channel", self->state.name}});
          self->quit();
        }
      },
  };
}

}  // namespace

caf::actor spawn_channel(caf::event_based_actor* parent, caf::actor hub, std::string name,
                         const namespace_config& ns) {
  return parent->spawn(channel, std::move(hub), std::move(name), ns);
}

}  // namespace sb
