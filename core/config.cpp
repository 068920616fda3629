#include "core/config.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "core/channel_name.hpp"
#include "core/json_depth.hpp"

namespace sb {

using json = nlohmann::json;

namespace {

std::map<std::string, namespace_config> default_namespaces() {
  namespace_config members;
  namespace_config read_only;
  read_only.publish = false;
  auto with = [&](access_rule rule, std::vector<std::string> roles = {}) {
    auto ns = read_only;
    ns.access = rule;
    ns.roles = std::move(roles);
    return ns;
  };
  return {
      {"chat", members},
      {"session", members},
      {"user", with(access_rule::owner)},
      {"role", with(access_rule::role)},
      {"dashboard", with(access_rule::roles, {"admin", "mentor"})},
      {"leaderboard", with(access_rule::authenticated)},
  };
}

std::vector<route_config> default_routes() {
  using k = route_kind;
  return {
      {"/ws/chat/{room}/", k::channels, {"chat:{room}"}, false},
      {"/ws/sessions/{id}/", k::channels, {"session:{id}"}, false},
      {"/ws/notifications/", k::channels, {"user:{user_id}"}, true},
      {"/ws/updates/", k::channels, {"user:{user_id}", "role:{role}"}, false},
      {"/ws/dashboard/", k::channels, {"dashboard"}, false},
      {"/ws/leaderboard/", k::channels, {"leaderboard"}, false},
      {"/ws/health/", k::health, {}, false},
      {"/ws/", k::multiplex, {}, false},
  };
}

// Reads one JSON object into a struct, remembering which keys it consumed so
// that a misspelt key is an error instead of being silently ignored.
class object_reader {
 public:
  object_reader(const json& j, std::string path) : j_(j), path_(std::move(path)) {
    if (!j_.is_object()) fail(path_, "must be an object");
  }

  // Call after reading every known key: what is left is a misspelt key.
  void done() const {
    for (auto it = j_.begin(); it != j_.end(); ++it)
      if (!seen_.count(it.key())) fail(key_path(it.key()), "is not a known key");
  }

  const json* find(const std::string& key) {
    seen_.insert(key);
    auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }

  std::string key_path(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }

  void read(const std::string& key, std::string& out) {
    if (auto v = find(key)) {
      if (!v->is_string()) fail(key_path(key), "must be a string");
      out = v->get<std::string>();
    }
  }

  void read(const std::string& key, bool& out) {
    if (auto v = find(key)) {
      if (!v->is_boolean()) fail(key_path(key), "must be true or false");
      out = v->get<bool>();
    }
  }

  template <class Int>
  void read_int(const std::string& key, Int& out, uint64_t min, uint64_t max) {
    if (auto v = find(key)) {
      if (!v->is_number_unsigned())
        fail(key_path(key), "must be a whole number from " + std::to_string(min) +
                                " to " + std::to_string(max));
      auto n = v->get<uint64_t>();
      if (n < min || n > max)
        fail(key_path(key), "must be from " + std::to_string(min) + " to " +
                                std::to_string(max) + ", not " + std::to_string(n));
      out = static_cast<Int>(n);
    }
  }

  void read_positive(const std::string& key, double& out) {
    if (auto v = find(key)) {
      if (!v->is_number() || !(v->get<double>() > 0) || !std::isfinite(v->get<double>()))
        fail(key_path(key), "must be a number above 0");
      out = v->get<double>();
    }
  }

  // Durations are given in seconds (fractions allowed).
  template <class Duration>
  void read_seconds(const std::string& key, Duration& out) {
    double s = 0;
    if (find(key) == nullptr) return;
    read_positive(key, s);
    out = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
    if (out.count() <= 0) fail(key_path(key), "is too short");
  }

  void read(const std::string& key, std::vector<std::string>& out) {
    if (auto v = find(key)) {
      if (!v->is_array()) fail(key_path(key), "must be a list of strings");
      out.clear();
      for (const auto& e : *v) {
        if (!e.is_string()) fail(key_path(key), "must be a list of strings");
        out.push_back(e.get<std::string>());
      }
    }
  }

  [[noreturn]] static void fail(const std::string& path, const std::string& what) {
    throw config_error("config: " + path + " " + what);
  }

 private:
  const json& j_;
  std::string path_;
  std::set<std::string> seen_;
};

access_rule parse_access(const std::string& path, const std::string& s) {
  if (s == "members") return access_rule::members;
  if (s == "owner") return access_rule::owner;
  if (s == "role") return access_rule::role;
  if (s == "roles") return access_rule::roles;
  if (s == "authenticated") return access_rule::authenticated;
  object_reader::fail(path, "must be one of members, owner, role, roles, authenticated (got '" + s + "')");
}

void read_namespace(const std::string& name, const json& j, namespace_config& ns) {
  if (!valid_channel_name(name) || name.find(':') != std::string::npos)
    object_reader::fail("namespaces." + name, "is not a valid namespace name");
  object_reader r{j, "namespaces." + name};
  std::string access;
  r.read("access", access);
  if (!access.empty()) ns.access = parse_access(r.key_path("access"), access);
  r.read("roles", ns.roles);
  bool publish_set = j.contains("publish");
  r.read("publish", ns.publish);
  if (!publish_set) ns.publish = ns.access == access_rule::members;
  r.read("presence", ns.presence);
  r.read_int("max_message_length", ns.max_message_length, 1, 1 << 20);
  r.read_int("history_size", ns.history_size, 0, 100000000);
  r.read_seconds("history_ttl", ns.history_ttl);
  r.done();
  if (ns.publish && ns.access != access_rule::members)
    object_reader::fail(r.key_path("publish"), "can be true only for namespaces with access 'members'");
  if (ns.access == access_rule::roles && ns.roles.empty())
    object_reader::fail(r.key_path("roles"), "must list at least one role for access 'roles'");
  if (std::find(ns.roles.begin(), ns.roles.end(), "") != ns.roles.end())
    object_reader::fail(r.key_path("roles"), "must not hold an empty role name");
}

// Checks a route path: segments of literal text or `{name}`.
void check_route_path(const std::string& where, const std::string& path) {
  if (path.empty() || path[0] != '/') object_reader::fail(where, "must start with '/'");
  std::size_t open = 0;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '{') open = i;
    if (path[i] == '}' && (open == 0 || i == open + 1))
      object_reader::fail(where, "has an empty or unbalanced {parameter}");
  }
}

route_config read_route(const json& j, std::size_t index) {
  std::string where = "routes[" + std::to_string(index) + "]";
  object_reader r{j, where};
  route_config route;
  r.read("path", route.path);
  check_route_path(r.key_path("path"), route.path);
  std::string kind = "channels";
  r.read("kind", kind);
  if (kind == "channels") route.kind = route_kind::channels;
  else if (kind == "health") route.kind = route_kind::health;
  else if (kind == "multiplex") route.kind = route_kind::multiplex;
  else object_reader::fail(r.key_path("kind"), "must be channels, health or multiplex");
  r.read("channels", route.channels);
  r.read("notification_filter", route.notification_filter);
  r.done();
  if (route.kind == route_kind::channels && route.channels.empty())
    object_reader::fail(r.key_path("channels"), "must name at least one channel template");
  return route;
}

// admin.port stays unset when not given: its default depends on http.port.
void read_admin(const json& j, admin_config& a) {
  object_reader r{j, "admin"};
  r.read("host", a.host);
  if (r.find("port")) {
    uint16_t port = 0;
    r.read_int("port", port, 0, 65535);
    a.port = port;
  }
  r.read("token", a.token);
  r.done();
}

void read_config(const json& root, config& cfg) {
  object_reader top{root, ""};
  if (auto node = top.find("node")) {
    object_reader r{*node, "node"};
    r.read("id", cfg.node_id);
    r.read("data_dir", cfg.data_dir);
    r.read_int("actor_threads", cfg.actor_threads, 1, 64);
    r.read("actor_scheduler", cfg.actor_scheduler);
    r.read_int("malloc_arenas", cfg.malloc_arenas, 1, 64);
    r.done();
  }
  if (auto http = top.find("http")) {
    object_reader r{*http, "http"};
    r.read("host", cfg.http.host);
    r.read_int("port", cfg.http.port, 0, 65535);
    r.read_int("threads", cfg.http.threads, 1, 64);
    r.read("allowed_origins", cfg.http.allowed_origins);
    r.read_int("max_frame_bytes", cfg.http.max_frame_bytes, 1024, 16 << 20);
    r.read_seconds("handshake_timeout", cfg.http.handshake_timeout);
    r.done();
  }
  if (auto auth = top.find("auth")) {
    object_reader r{*auth, "auth"};
    r.read("jwt_secret", cfg.auth.jwt_secret);
    r.read("api_keys", cfg.auth.api_keys);
    r.read("allow_weak_secrets", cfg.auth.allow_weak_secrets);
    r.done();
  }
  if (auto limits = top.find("limits")) {
    object_reader r{*limits, "limits"};
    auto& l = cfg.limits;
    r.read_seconds("heartbeat_interval", l.heartbeat_interval);
    r.read_int("max_connections", l.max_connections, 1, 10000000);
    r.read_int("max_connections_per_user", l.max_connections_per_user, 1, 1000000);
    r.read_positive("rate_limit", l.rate_limit_per_second);
    r.read_positive("rate_limit_burst", l.rate_limit_burst);
    r.read_positive("request_rate_limit", l.request_rate_per_second);
    r.read_positive("request_rate_limit_burst", l.request_rate_burst);
    r.read_int("max_channels_per_connection", l.max_channels_per_connection, 1, 100000);
    r.read_int("max_channels_per_user", l.max_channels_per_user, 1, 10000000);
    r.read_int("max_notification_types", l.max_notification_types, 1, 10000);
    r.read_int("outbound_max_frames", l.outbound_max_frames, 1, 1 << 24);
    r.read_int("outbound_max_bytes", l.outbound_max_bytes, 1024, uint64_t{1} << 34);
    r.read_int("max_requests_in_flight", l.max_requests_in_flight, 1, 100000);
    uint64_t grace_ms = static_cast<uint64_t>(l.slow_consumer_grace.count());
    r.read_int("slow_consumer_grace_ms", grace_ms, 0, 600000);
    l.slow_consumer_grace = std::chrono::milliseconds(grace_ms);
    r.done();
  }
  if (auto cluster = top.find("cluster")) {
    object_reader r{*cluster, "cluster"};
    auto& c = cfg.cluster;
    r.read("host", c.host);
    r.read_int("port", c.port, 0, 65535);
    r.read("seeds", c.seeds);
    r.read_seconds("heartbeat_interval", c.heartbeat_interval);
    r.read_seconds("dead_after", c.dead_after);
    r.read_int("replication", c.replication, 1, 16);
    r.read("insecure", c.insecure);
    r.read("certificate", c.certificate);
    r.read("key", c.key);
    r.read("ca_file", c.ca_file);
    r.done();
  }
  if (auto admin = top.find("admin")) read_admin(*admin, cfg.admin);
  if (auto storage = top.find("storage")) {
    object_reader r{*storage, "storage"};
    r.read("sync", cfg.storage.sync);
    r.done();
  }
  if (auto log = top.find("log")) {
    object_reader r{*log, "log"};
    r.read("level", cfg.log.level);
    r.read("format", cfg.log.format);
    r.done();
  }
  if (auto namespaces = top.find("namespaces")) {
    if (!namespaces->is_object()) object_reader::fail("namespaces", "must be an object");
    for (auto it = namespaces->begin(); it != namespaces->end(); ++it)
      read_namespace(it.key(), it.value(), cfg.namespaces[it.key()]);
  }
  if (auto routes = top.find("routes")) {
    if (!routes->is_array()) object_reader::fail("routes", "must be a list");
    for (std::size_t i = 0; i < routes->size(); ++i) {
      auto route = read_route((*routes)[i], i);
      auto same = std::find_if(cfg.routes.begin(), cfg.routes.end(),
                               [&](const route_config& r) { return r.path == route.path; });
      if (same != cfg.routes.end()) *same = std::move(route);
      else cfg.routes.push_back(std::move(route));
    }
  }
  top.done();
}

void validate_cluster(const cluster_config& c) {
  for (const auto& seed : c.seeds) {
    auto colon = seed.rfind(':');
    bool ok = colon != std::string::npos && colon > 0 && colon + 1 < seed.size() &&
              seed.find_first_not_of("0123456789", colon + 1) == std::string::npos &&
              seed.size() - colon - 1 <= 5 && std::stoul(seed.substr(colon + 1)) <= 65535;
    if (!ok) object_reader::fail("cluster.seeds", "must be \"host:port\" entries, not '" + seed + "'");
  }
  if (c.dead_after <= c.heartbeat_interval)
    object_reader::fail("cluster.dead_after", "must be longer than cluster.heartbeat_interval");
  if (c.port == 0 || c.insecure) return;
  if (c.certificate.empty() || c.key.empty() || c.ca_file.empty())
    object_reader::fail("cluster", "needs certificate, key and ca_file for mutual TLS "
                                   "(or insecure: true for a local test cluster)");
}

void validate_admin(admin_config& a, const http_config& http) {
  constexpr std::size_t min_token = 16;
  constexpr uint16_t offset = 100;
  if (a.host.empty()) object_reader::fail("admin.host", "must not be empty");
  if (!a.token.empty() && a.token.size() < min_token)
    object_reader::fail("admin.token", "must be at least " + std::to_string(min_token) +
                                           " characters");
  if (a.port) {
    if (*a.port == 0) a.port.reset();
    return;
  }
  if (http.port > 65535 - offset)
    object_reader::fail("admin.port", "must be given when http.port is above " +
                                          std::to_string(65535 - offset));
  a.port = http.port == 0 ? 0 : http.port + offset;
}

// Names the short secret, never shows it.
void validate_auth(const auth_config& a) {
  if (a.jwt_secret.empty())
    object_reader::fail("auth.jwt_secret", "is required (or set SWITCHBOARD_JWT_SECRET)");
  if (a.allow_weak_secrets) return;
  const std::string too_short = "is shorter than " + std::to_string(min_secret_bytes) +
                                " bytes (auth.allow_weak_secrets: true allows that, for "
                                "development only)";
  if (a.jwt_secret.size() < min_secret_bytes) object_reader::fail("auth.jwt_secret", too_short);
  for (std::size_t i = 0; i < a.api_keys.size(); ++i)
    if (a.api_keys[i].size() < min_secret_bytes)
      object_reader::fail("auth.api_keys[" + std::to_string(i) + "]", too_short);
}

void validate(config& cfg) {
  validate_auth(cfg.auth);
  if (cfg.log.level != "debug" && cfg.log.level != "info" && cfg.log.level != "warn" &&
      cfg.log.level != "error")
    object_reader::fail("log.level", "must be debug, info, warn or error");
  if (cfg.actor_scheduler != "sharing" && cfg.actor_scheduler != "stealing")
    object_reader::fail("node.actor_scheduler", "must be sharing or stealing");
  if (cfg.log.format != "plain" && cfg.log.format != "json")
    object_reader::fail("log.format", "must be plain or json");
  if (cfg.limits.rate_limit_burst < 1)
    object_reader::fail("limits.rate_limit_burst", "must be at least 1");
  if (cfg.limits.request_rate_burst < 1)
    object_reader::fail("limits.request_rate_limit_burst", "must be at least 1");
  if (cfg.http.host.empty()) object_reader::fail("http.host", "must not be empty");
  if (cfg.node_id.empty()) cfg.node_id = cfg.http.host + ":" + std::to_string(cfg.http.port);
  // Stored in every channel's term history (one length byte).
  if (cfg.node_id.size() > 128) object_reader::fail("node.id", "must be at most 128 bytes");
  validate_cluster(cfg.cluster);
  validate_admin(cfg.admin, cfg.http);
}

// Sets `dotted.key=value` in the JSON tree; the value is JSON when it parses
// as JSON, otherwise a plain string.
void apply_override(json& root, const std::string& item) {
  auto eq = item.find('=');
  // The value is not shown: it may be a secret.
  if (eq == std::string::npos || eq == 0)
    throw config_error("config: an override must look like key.path=value");
  std::string key = item.substr(0, eq);
  std::string text = item.substr(eq + 1);
  auto [value, status] = parse_untrusted_json(text);
  if (status == json_status::too_deep)
    throw config_error("config: override " + key + " nests JSON deeper than " +
                       std::to_string(max_json_depth) + " levels");
  if (status == json_status::malformed) value = text;
  json* node = &root;
  std::size_t start = 0;
  while (true) {
    auto dot = key.find('.', start);
    std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty()) throw config_error("config: override key '" + key + "' has an empty part");
    if (!node->is_object()) throw config_error("config: override key '" + key + "' goes through a non-object");
    if (dot == std::string::npos) {
      (*node)[part] = value;
      return;
    }
    node = &(*node)[part];
    if (node->is_null()) *node = json::object();
    start = dot + 1;
  }
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto comma = s.find(',', start);
    auto item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

const namespace_config& config::namespace_of(const std::string& channel) const {
  static const namespace_config unconfigured = [] {
    namespace_config ns;
    ns.publish = false;
    return ns;
  }();
  auto it = namespaces.find(std::string{channel_namespace(channel)});
  return it == namespaces.end() ? unconfigured : it->second;
}

config load_config(const std::string& text, const std::vector<std::string>& overrides,
                   const std::map<std::string, std::string>& env) {
  auto [root, status] = text.empty() ? parsed_json{json::object()}
                                     : parse_untrusted_json(text, /*comments=*/true);
  if (status == json_status::too_deep)
    throw config_error("config: the file nests JSON deeper than " +
                       std::to_string(max_json_depth) + " levels");
  if (status == json_status::malformed) throw config_error("config: the file is not valid JSON");
  if (!root.is_object()) throw config_error("config: the file must hold a JSON object");
  if (auto it = env.find("SWITCHBOARD_JWT_SECRET"); it != env.end() && !it->second.empty())
    root["auth"]["jwt_secret"] = it->second;
  if (auto it = env.find("SWITCHBOARD_API_KEYS"); it != env.end() && !it->second.empty())
    root["auth"]["api_keys"] = split_commas(it->second);
  if (auto it = env.find("SWITCHBOARD_ADMIN_TOKEN"); it != env.end() && !it->second.empty())
    root["admin"]["token"] = it->second;
  for (const auto& o : overrides) apply_override(root, o);

  config cfg;
  cfg.namespaces = default_namespaces();
  cfg.routes = default_routes();
  read_config(root, cfg);
  validate(cfg);
  return cfg;
}

}  // namespace sb
