#include "actors/user_actor.hpp"

#include <algorithm>
#include <vector>

#include "actors/messages.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/rate_limiter.hpp"

namespace sb {

namespace {

struct user_state {
  std::string id;
  std::vector<caf::actor> connections;
  rate_limiter bucket{1, 1};
  uint64_t registrations = 0;  // handled requests forwarded by the hub
};

caf::behavior user(caf::stateful_actor<user_state>* self, caf::actor hub, std::string id,
                   limits_config limits) {
  auto& st = self->state;
  st.id = std::move(id);
  st.bucket = rate_limiter{limits.rate_limit_per_second, limits.rate_limit_burst};
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& conns = self->state.connections;
    conns.erase(std::remove_if(conns.begin(), conns.end(),
                               [&](const caf::actor& c) { return c.address() == dm.source; }),
                conns.end());
    if (conns.empty())
      self->send(hub, idle_atom::value, user_atom::value, self->state.id,
                 self->state.registrations);
  });
  return {
      [=](register_atom, const caf::actor& conn) -> caf::result<caf::actor> {
        auto& st = self->state;
        ++st.registrations;
        if (st.connections.size() >= limits.max_connections_per_user) {
          log::info("connection_limit", {{"user", st.id},
                                         {"limit", limits.max_connections_per_user}});
          if (st.connections.empty())
            self->send(hub, idle_atom::value, user_atom::value, st.id, st.registrations);
          return make_error(sb_error::too_many_connections);
        }
        st.connections.push_back(conn);
        self->monitor(conn);
        return caf::actor{self};
      },
      [=](publish_atom, const caf::actor& channel, draft& d) -> caf::result<caf::message> {
        if (!self->state.bucket.try_take()) {
          log::debug("rate_limited", {{"user", self->state.id}});
          metrics::node().rate_limited++;
          return make_error(sb_error::rate_limited);
        }
        return self->delegate(channel, publish_atom::value, std::move(d));
      },
      [=](kick_atom, uint16_t code) {
        for (auto& c : self->state.connections) self->send(c, kick_atom::value, code);
        log::info("user_kicked", {{"user", self->state.id},
                                  {"connections", self->state.connections.size()}});
        return static_cast<uint32_t>(self->state.connections.size());
      },
      [=](idle_atom) {
        if (self->state.connections.empty()) self->quit();
      },
  };
}

}  // namespace

caf::actor spawn_user(caf::event_based_actor* parent, caf::actor hub, std::string user_id,
                      const limits_config& limits) {
  return parent->spawn(user, std::move(hub), std::move(user_id), limits);
}

}  // namespace sb
