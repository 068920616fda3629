#include "actors/node.hpp"

#include <atomic>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>

#include "actors/admin_actor.hpp"
#include "actors/connection_actor.hpp"
#include "actors/hub_actor.hpp"
#include "actors/messages.hpp"
#include "actors/tap_actor.hpp"
#include "core/metrics.hpp"
#include "cluster/membership_actor.hpp"
#include "storage/event_log.hpp"

namespace sb {

namespace {

using namespace std::chrono_literals;

constexpr auto api_timeout = 10s;

// Built in code, not parsed: CAF would otherwise read a stray
// caf-application.ini from the working directory.
struct system_config : caf::actor_system_config {
  explicit system_config(const config& cfg) {
    set("scheduler.max-threads", static_cast<size_t>(cfg.actor_threads));
    set("scheduler.policy",
        cfg.actor_scheduler == "sharing" ? caf::atom("sharing") : caf::atom("stealing"));
    const auto& c = cfg.cluster;
    if (c.port == 0) return;
    register_cluster_types(*this);
    load<caf::io::middleman>();
    // Heartbeats on: a hung peer (SIGSTOP, partition) is noticed too.
    set("middleman.heartbeat-interval", caf::timespan{c.heartbeat_interval});
    set("middleman.connection-timeout", caf::timespan{c.dead_after});
    set("middleman.app-identifiers", std::vector<std::string>{"switchboard"});
    if (c.insecure) return;
    load<caf::openssl::manager>();
    set("openssl.certificate", c.certificate);
    set("openssl.key", c.key);
    set("openssl.cafile", c.ca_file);
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

log_options storage_options(const config& cfg) {
  log_options o;
  o.dir = cfg.data_dir;
  o.sync = cfg.storage.sync;
  o.retention_of = [&cfg](const std::string& channel) {
    const auto& ns = cfg.namespace_of(channel);
    return retention{ns.history_size,
                     std::chrono::duration_cast<std::chrono::milliseconds>(ns.history_ttl).count()};
  };
  return o;
}

std::string code_of(const caf::error& e) {
  auto text = describe(e);
  return text.code ? text.code : "internal_error";
}

// One long-lived actor makes the server API's requests, so that callers
// outside the actor system never block and no actor is spawned per request.
// A class: CAF 0.17 starts a function actor spawned without arguments by
// dereferencing a null pointer to its (empty) arguments, which UBSan reports.
class bridge : public caf::event_based_actor {
 public:
  using caf::event_based_actor::event_based_actor;

  caf::behavior make_behavior() override {
    return {[this](const api_job& job) { job(this); }};
  }
};

template <class OnOk, class OnError, class... Ts>
void ask(const caf::actor& bridge_actor, const caf::actor& dest, OnOk ok, OnError fail, Ts... xs) {
  caf::anon_send(bridge_actor, api_job{[=](caf::event_based_actor* self) {
                   self->request(dest, api_timeout, xs...)
                       .then(ok, [=](caf::error& e) { fail(code_of(e)); });
                 }});
}

}  // namespace

void register_cluster_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<user_ref>("sb::user_ref");
  cfg.add_message_type<draft>("sb::draft");
  cfg.add_message_type<history_query>("sb::history_query");
  cfg.add_message_type<history_page>("sb::history_page");
  cfg.add_message_type<term_id>("sb::term_id");
  cfg.add_message_type<term_start>("sb::term_start");
  cfg.add_message_type<log_position>("sb::log_position");
  cfg.add_message_type<replica_batch>("sb::replica_batch");
  cfg.add_message_type<sync_reply>("sb::sync_reply");
  cfg.add_message_type<follow_reply>("sb::follow_reply");
  cfg.add_message_type<replay_page>("sb::replay_page");
  cfg.add_message_type<std::vector<log_record>>("std::vector<sb::log_record>");
  cfg.add_message_type<std::vector<term_start>>("std::vector<sb::term_start>");
  cfg.add_message_type<std::vector<wire::presence_entry>>("std::vector<sb::presence_entry>");
  cfg.add_message_type<admin_query>("sb::admin_query");
  cfg.add_message_type<std::vector<admin_report>>("std::vector<sb::admin_report>");
}

// Member order matters: the log is closed (flushing its last appends, whose
// callbacks message actors) before the actor system goes away.
struct actor_node::impl {
  explicit impl(const config& c)
      : cfg(c), sys_cfg(c), sys(sys_cfg), log(open_rocksdb_log(storage_options(c))) {
    std::vector<std::string> spaces;
    for (const auto& [name, ns] : cfg.namespaces) spaces.push_back(name);
    metrics::declare_spaces(spaces);  // before any channel actor exists
    admin = spawn_admin(sys, cfg, [this] { drain([this] { close_clients(); }); });
    hub = spawn_hub(sys, cfg, log.get(), admin);
    api = sys.spawn<bridge>();
    if (cfg.cluster.port != 0) membership = spawn_membership(sys, cfg, hub);
  }

  void drain(std::function<void()> done) {
    draining = true;
    if (!membership) {
      done();
      return;
    }
    caf::anon_send(membership, drain_atom::value);
    // The view reaches every node at once; a new owner's sync is a round trip.
    auto handover = std::max<caf::timespan>(std::chrono::seconds(1),
                                            4 * cfg.cluster.heartbeat_interval);
    caf::anon_send(api, api_job{[=](caf::event_based_actor* self) {
                     self->delayed_send(self, handover,
                                        api_job{[=](caf::event_based_actor*) { done(); }});
                   }});
  }

  // Going away (1001): the clients reconnect, through the load balancer, to
  // a node that is not draining.
  void close_clients() { caf::anon_send(hub, kick_atom::value, uint16_t{1001}); }

  const config& cfg;
  system_config sys_cfg;
  caf::actor_system sys;
  std::unique_ptr<event_log> log;
  caf::actor admin;
  caf::actor hub;
  caf::actor api;         // the bridge for server-API requests
  caf::actor membership;  // none for a single node
  std::atomic<bool> draining{false};
};

actor_node::actor_node(const config& cfg) : impl_(std::make_unique<impl>(cfg)) {}

actor_node::~actor_node() { shutdown(); }

std::unique_ptr<connection_link> actor_node::open(connection_args args) {
  if (args.observer)
    return std::make_unique<actor_link>(spawn_tap(impl_->sys, impl_->hub, std::move(args)));
  return std::make_unique<actor_link>(spawn_connection(impl_->sys, impl_->hub, impl_->cfg,
                                                       std::move(args)));
}

void actor_node::publish(const std::string& channel, draft d,
                         std::function<void(api_published)> done) {
  ask(
      impl_->api, impl_->hub,
      [=](uint64_t id, const std::string& epoch) { done({channel, id, epoch, {}}); },
      [=](std::string code) { done({channel, 0, {}, std::move(code)}); }, api_atom::value,
      publish_atom::value, channel, std::move(d));
}

void actor_node::history(const std::string& channel, std::optional<uint64_t> since,
                         std::optional<uint64_t> before, std::size_t limit,
                         std::function<void(api_history)> done) {
  ask(
      impl_->api, impl_->hub,
      [=](history_page& page) {
        done({std::move(page.epoch), std::move(page.payloads), page.has_more, {}});
      },
      [=](std::string code) { done({{}, {}, false, std::move(code)}); }, api_atom::value,
      history_atom::value, channel, history_query{since, before, limit});
}

void actor_node::presence(const std::string& channel, std::function<void(api_presence)> done) {
  ask(
      impl_->api, impl_->hub,
      [=](std::vector<wire::presence_entry>& users) { done({std::move(users), {}}); },
      [=](std::string code) { done({{}, std::move(code)}); }, api_atom::value,
      presence_atom::value, channel);
}

void actor_node::disconnect(const std::string& user_id, std::function<void(uint32_t)> done) {
  // In a cluster the membership actor asks every node, this one included.
  auto& target = impl_->membership ? impl_->membership : impl_->hub;
  ask(
      impl_->api, target, [=](uint32_t n) { done(n); }, [=](std::string) { done(0); },
      kick_atom::value, user_id, uint16_t{4005});
}

void actor_node::members(std::function<void(std::vector<api_member>)> done) {
  if (!impl_->membership) {
    done({{impl_->cfg.node_id, {}, true, impl_->draining, true, 0}});
    return;
  }
  ask(
      impl_->api, impl_->membership,
      [=](const std::vector<member_info>& members) {
        std::vector<api_member> out;
        for (const auto& m : members)
          out.push_back({m.node, m.address, m.up, m.draining, m.self, m.since_ms});
        done(std::move(out));
      },
      [=](std::string) { done({{impl_->cfg.node_id, {}, true, false, true, 0}}); },
      caf::get_atom::value);
}

void actor_node::channel(const std::string& channel, std::function<void(api_channel)> done) {
  ask(
      impl_->api, impl_->hub,
      [=](const std::string& epoch, uint64_t last, const std::string& owner,
          const std::vector<std::string>& replicas) {
        done({epoch, last, owner, replicas, {}});
      },
      [=](std::string code) { done({{}, 0, {}, {}, std::move(code)}); }, api_atom::value,
      info_atom::value, channel);
}

bool actor_node::clustered() const { return static_cast<bool>(impl_->membership); }

void actor_node::drain(std::function<void()> done) { impl_->drain(std::move(done)); }

bool actor_node::draining() const { return impl_->draining; }

void actor_node::drain_node(const std::string& node, std::function<void(std::string)> done) {
  ask(
      impl_->api, impl_->hub, [=](bool found) { done(found ? "" : "not_found"); },
      [=](std::string) { done("unavailable"); }, admin_atom::value, drain_atom::value, node);
}

void actor_node::admin(admin_query q,
                       std::function<void(std::optional<std::vector<admin_report>>)> done) {
  ask(
      impl_->api, impl_->hub, [=](std::vector<admin_report>& reports) { done(std::move(reports)); },
      [=](std::string) { done(std::nullopt); }, admin_atom::value, std::move(q), true);
}

void actor_node::shutdown() {
  if (!impl_->hub) return;
  caf::anon_send_exit(impl_->hub, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(impl_->api, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(impl_->admin, caf::exit_reason::user_shutdown);
  if (impl_->membership) caf::anon_send_exit(impl_->membership, caf::exit_reason::user_shutdown);
  impl_->hub = nullptr;
  impl_->sys.await_all_actors_done();
}

}  // namespace sb
