#include "actors/tap_actor.hpp"

#include "actors/messages.hpp"
#include "core/log.hpp"

namespace sb {

namespace {

using namespace std::chrono_literals;

caf::behavior tap(caf::event_based_actor* self, caf::actor hub, connection_args args) {
  const auto& channel = args.channels.front();
  auto since = args.positions.count(channel) ? std::optional{args.positions.at(channel)} : std::nullopt;
  auto out = args.out;
  member m{caf::actor{self}, out, user_ref{"sbctl", false, "sbctl", ""}, {}, true};
  log::info("tail_open", {{"conn", args.id}, {"channel", channel}, {"remote", args.remote}});
  self->request(hub, 10s, join_atom::value, channel, join_request{m, since, {}, {}, false})
      .then([out](joined& j) { out->start(wire::subscription(true, j.position, {})); },
            [=](caf::error& e) {
              log::warn("tail_failed", {{"conn", args.id}, {"why", to_string(e)}});
              out->close(4000, "cannot join the channel");
              self->quit();
            });
  self->attach_functor([out] { out->close(1001, "server shutting down"); });
  return {
      [=](closed_atom) {
        log::info("tail_close", {{"conn", args.id}, {"channel", channel}});
        self->quit();
      },
  };
}

}  // namespace

caf::actor spawn_tap(caf::actor_system& sys, caf::actor hub, connection_args args) {
  return sys.spawn(tap, std::move(hub), std::move(args));
}

}  // namespace sb
