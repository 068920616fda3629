#include "actors/node.hpp"

#include <caf/all.hpp>

#include "actors/connection_actor.hpp"
#include "actors/hub_actor.hpp"
#include "actors/messages.hpp"

namespace sb {

namespace {

// Built in code, not parsed: CAF would otherwise read a stray
// caf-application.ini from the working directory.
struct system_config : caf::actor_system_config {
  explicit system_config(const config& cfg) {
    set("scheduler.max-threads", static_cast<size_t>(cfg.actor_threads));
  }
};

class actor_link final : public connection_link {
 public:
  explicit actor_link(caf::actor a) : actor_(std::move(a)) {}

  void command(wire::command c) override { caf::anon_send(actor_, std::move(c)); }
  void closed() override { caf::anon_send(actor_, closed_atom::value); }

 private:
  caf::actor actor_;
};

}  // namespace

struct actor_node::impl {
  explicit impl(const config& c) : cfg(c), sys_cfg(c), sys(sys_cfg) {
    hub = spawn_hub(sys, cfg);
  }

  const config& cfg;
  system_config sys_cfg;
  caf::actor_system sys;
  caf::actor hub;
};

actor_node::actor_node(const config& cfg) : impl_(std::make_unique<impl>(cfg)) {}

actor_node::~actor_node() { shutdown(); }

std::unique_ptr<connection_link> actor_node::open(connection_args args) {
  return std::make_unique<actor_link>(spawn_connection(impl_->sys, impl_->hub, impl_->cfg,
                                                       std::move(args)));
}

void actor_node::shutdown() {
  if (!impl_->hub) return;
  caf::anon_send_exit(impl_->hub, caf::exit_reason::user_shutdown);
  impl_->hub = nullptr;
  impl_->sys.await_all_actors_done();
}

}  // namespace sb
