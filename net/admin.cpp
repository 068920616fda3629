#include "net/admin.hpp"

#include <nlohmann/json.hpp>

#include "core/channel_name.hpp"
#include "core/json_depth.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "net/admin_view.hpp"
#include "net/router.hpp"
#include "net/wire.hpp"

namespace sb::admin {

namespace {

using reply_fn = std::function<void(api::response)>;

constexpr std::size_t default_recent = 10;
constexpr std::size_t max_recent = 100;

api::response ok(const json& body) {
  return {200, body.dump(-1, ' ', false, json::error_handler_t::replace)};
}

api::response fail(unsigned status, std::string_view code, std::string_view message) {
  return {status, api::error_body(code, message)};
}

api::response unavailable() {
  return fail(503, "unavailable", "the node's actors did not answer in time");
}

std::string param(const api::request& req, const char* name) {
  auto it = req.query.find(name);
  return it == req.query.end() ? std::string{} : it->second;
}

// A positive count parameter; nullopt when absent, an error text when bad.
std::optional<std::size_t> count_param(const api::request& req, const char* name,
                                       std::string& error) {
  auto text = param(req, name);
  if (text.empty()) return std::nullopt;
  auto n = parse_uint(text);
  if (!n || *n == 0) error = std::string{name} + " must be a positive integer";
  return n ? std::optional<std::size_t>{*n} : std::nullopt;
}

// Runs `q` on the nodes and answers with `render(reports)`, or 503.
void query(actor_node& node, admin_query q, reply_fn reply,
           std::function<api::response(const std::vector<admin_report>&)> render) {
  node.admin(std::move(q), [reply, render](std::optional<std::vector<admin_report>> reports) {
    reply(reports ? render(*reports) : unavailable());
  });
}

void cluster(const config& cfg, actor_node& node, const api::request&, reply_fn reply) {
  node.members([&cfg, &node, reply](std::vector<api_member> members) {
    query(node, {admin_kind::summary, {}, {}}, reply,
          [&cfg, members](const std::vector<admin_report>& reports) {
            return ok(cluster_json(cfg.node_id, members, reports));
          });
  });
}

void channels(const config&, actor_node& node, const api::request& req, reply_fn reply) {
  query(node, {admin_kind::channels, param(req, "prefix"), {}}, reply,
        [](const std::vector<admin_report>& reports) { return ok(channels_json(reports)); });
}

json retention_json(const namespace_config& ns) {
  return {{"history_size", ns.history_size}, {"history_ttl_s", ns.history_ttl.count()}};
}

// The channel's node entries (members on each node) from the merged list.
json channel_nodes(const std::vector<admin_report>& reports, const std::string& name) {
  auto merged = channels_json(reports);
  for (auto& c : merged["channels"])
    if (c["channel"] == name) return c;
  return {{"members", 0}, {"nodes", json::array()}};
}

// `channel NAME` gathers in four steps: placement, members on each node,
// presence, then recent events.
struct channel_view {
  std::string name;
  std::size_t limit = default_recent;
  json retention;
  api_channel where;
  json local;
  api_presence who;
};

// A channel nobody uses and nothing was ever stored in is unknown.
bool unknown(const channel_view& v) {
  return v.where.last_event_id == 0 && v.local["members"] == 0 && v.who.users.empty();
}

void channel_recent(actor_node& node, channel_view v, reply_fn reply) {
  node.history(v.name, std::nullopt, std::nullopt, v.limit, [v, reply](api_history h) {
    std::string body = ok({{"channel", v.name},
                           {"owner", v.where.owner},
                           {"replicas", v.where.replicas},
                           {"epoch", v.where.epoch},
                           {"last_event_id", v.where.last_event_id},
                           {"members", v.local["members"]},
                           {"nodes", v.local["nodes"]},
                           {"presence", json::parse(wire::users_json(v.who.users))},
                           {"retention", v.retention}})
                           .body;
    wire::close_with_array(body, "recent", h.payloads);
    reply({200, std::move(body)});
  });
}

void channel_presence(actor_node& node, channel_view v, reply_fn reply) {
  node.presence(v.name, [&node, v, reply](api_presence who) mutable {
    v.who = std::move(who);
    if (unknown(v)) return reply(fail(404, "not_found", "no such channel: " + v.name));
    channel_recent(node, std::move(v), reply);
  });
}

void channel_members(actor_node& node, channel_view v, reply_fn reply) {
  node.admin({admin_kind::channels, v.name, {}},
             [&node, v, reply](std::optional<std::vector<admin_report>> reports) mutable {
               if (!reports) return reply(unavailable());
               v.local = channel_nodes(*reports, v.name);
               channel_presence(node, std::move(v), reply);
             });
}

void channel(const config& cfg, actor_node& node, const api::request& req, reply_fn reply) {
  channel_view v;
  v.name = param(req, "name");
  if (!valid_channel_name(v.name))
    return reply(fail(400, "bad_request", "name must be a channel name, e.g. chat:lobby"));
  std::string error;
  v.limit = std::min(count_param(req, "limit", error).value_or(default_recent), max_recent);
  if (!error.empty()) return reply(fail(400, "bad_request", error));
  v.retention = retention_json(cfg.namespace_of(v.name));
  node.channel(v.name, [&node, v, reply](api_channel where) mutable {
    if (!where.error.empty()) return reply(fail(503, where.error, "channel lookup failed"));
    v.where = std::move(where);
    channel_members(node, std::move(v), reply);
  });
}

void users(const config&, actor_node& node, const api::request&, reply_fn reply) {
  query(node, {admin_kind::users, {}, {}}, reply,
        [](const std::vector<admin_report>& reports) { return ok(users_json(reports)); });
}

void user(const config&, actor_node& node, const api::request& req, reply_fn reply) {
  auto id = param(req, "id");
  if (id.empty()) return reply(fail(400, "bad_request", "id is required"));
  query(node, {admin_kind::users, id, {}}, reply, [id](const std::vector<admin_report>& reports) {
    auto conns = connections_json(reports, {id, {}, {}, std::nullopt}, now_ms());
    auto limits = rate_limits_json(reports);
    if (conns["connections"].empty()) return fail(404, "not_found", "no such user connected: " + id);
    return ok({{"user_id", id},
               {"connections", conns["connections"]},
               {"rate_limit", limits},
               {"unreachable", conns["unreachable"]}});
  });
}

void connections(const config&, actor_node& node, const api::request& req, reply_fn reply) {
  connection_filter f{param(req, "user"), param(req, "channel"), param(req, "sort"), {}};
  std::string error;
  f.limit = count_param(req, "limit", error);
  if (f.sort != "" && f.sort != "queue" && f.sort != "age") error = "sort must be queue or age";
  if (!error.empty()) return reply(fail(400, "bad_request", error));
  query(node, {admin_kind::users, f.user, {}}, reply, [f](const std::vector<admin_report>& reports) {
    return ok(connections_json(reports, f, now_ms()));
  });
}

bool known_kind(const std::string& kind) {
  for (const char* k : {"", "channel", "user", "connection", "hub", "replica", "membership", "admin"})
    if (kind == k) return true;
  return false;
}

void actors(const config& cfg, actor_node& node, const api::request& req, reply_fn reply) {
  auto kind = param(req, "kind");
  if (!known_kind(kind))
    return reply(fail(400, "bad_request",
                      "kind must be channel, user, connection, hub, replica, membership or admin"));
  auto target = param(req, "node");
  if (target.empty()) target = cfg.node_id;
  query(node, {admin_kind::actors, kind, target}, reply,
        [target](const std::vector<admin_report>& reports) {
          if (reports.empty()) return fail(404, "not_found", "no such node: " + target);
          return ok(actors_json(reports, false));
        });
}

void actor(const config&, actor_node& node, const api::request& req, reply_fn reply) {
  auto id = param(req, "id");
  if (id.empty()) return reply(fail(400, "bad_request", "id is required"));
  query(node, {admin_kind::actor, id, param(req, "node")}, reply,
        [id](const std::vector<admin_report>& reports) {
          auto body = actors_json(reports, true);
          if (body["actors"].empty()) return fail(404, "not_found", "no such actor: " + id);
          return ok(body);
        });
}

// Publish and kick are the server API's own, without its API key.
void reuse_api(actor_node& node, const api::request& req, const char* path, reply_fn reply) {
  auto r = req;
  r.path = path;
  api::handle_trusted(node, r, std::move(reply));
}

void kick(const config&, actor_node& node, const api::request& req, reply_fn reply) {
  reuse_api(node, req, "/api/disconnect", std::move(reply));
}

void publish(const config&, actor_node& node, const api::request& req, reply_fn reply) {
  reuse_api(node, req, "/api/publish", std::move(reply));
}

void drain(const config&, actor_node& node, const api::request& req, reply_fn reply) {
  auto j = parse_untrusted_json(req.body).value;
  if (!j.is_object() || !j.contains("node") || !j["node"].is_string())
    return reply(fail(400, "bad_request", "the body must be {\"node\": \"NODE_ID\"}"));
  auto target = j["node"].get<std::string>();
  node.drain_node(target, [reply, target](std::string error) {
    if (error == "not_found") return reply(fail(404, "not_found", "no such node up: " + target));
    if (!error.empty()) return reply(fail(503, error, "the drain request got no answer"));
    reply(ok({{"node", target}, {"draining", true}}));
  });
}

}  // namespace

bool is_admin_path(const std::string& path) { return path.rfind("/admin/", 0) == 0; }

bool authorized(const config& cfg, const std::string& authorization) {
  return api::bearer_matches(authorization, {cfg.admin.token});
}

api::response unauthorized() {
  return fail(401, "unauthorized", "a valid admin token is required (Authorization: Bearer TOKEN)");
}

void handle(const config& cfg, actor_node& node, const api::request& req, reply_fn reply) {
  using handler = void (*)(const config&, actor_node&, const api::request&, reply_fn);
  struct route {
    const char* method;
    const char* path;
    handler fn;
  };
  static const route routes[] = {
      {"GET", "/admin/cluster", cluster},         {"GET", "/admin/channels", channels},
      {"GET", "/admin/channel", channel},         {"GET", "/admin/users", users},
      {"GET", "/admin/user", user},               {"GET", "/admin/connections", connections},
      {"GET", "/admin/actors", actors},           {"GET", "/admin/actor", actor},
      {"POST", "/admin/kick", kick},              {"POST", "/admin/publish", publish},
      {"POST", "/admin/drain", drain},
  };
  for (const auto& r : routes) {
    if (req.path != r.path) continue;
    if (req.method != r.method) return reply(fail(405, "method_not_allowed", "use " + std::string{r.method}));
    log::debug("admin_request", {{"path", req.path}});
    return r.fn(cfg, node, req, std::move(reply));
  }
  reply(fail(404, "not_found", "no such admin path"));
}

tail_request parse_tail(const api::request& req) {
  tail_request t{param(req, "channel"), std::nullopt, {}};
  if (!valid_channel_name(t.channel)) t.error = "channel must be a channel name, e.g. chat:lobby";
  auto since = param(req, "since");
  if (!since.empty()) {
    t.since = parse_uint(since);
    if (!t.since) t.error = "since must be a non-negative integer";
  }
  return t;
}

}  // namespace sb::admin
