#include <doctest/doctest.h>

#include <functional>
#include <vector>

#include "core/config.hpp"

using sb::config_error;
using sb::load_config;

namespace {

const std::map<std::string, std::string> no_env;
// A jwt_secret of the shortest accepted length (32 bytes), for tests about other keys.
const std::string secret_arg = "auth.jwt_secret=" + std::string(sb::min_secret_bytes, 's');

std::string error_of(const std::string& text, std::vector<std::string> overrides = {}) {
  try {
    load_config(text, overrides, no_env);
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("config: defaults, file values and overrides") {
  auto cfg = load_config(R"({
    // comments are allowed
    "http": {"port": 9001, "allowed_origins": ["https://a.example"]},
    "auth": {"jwt_secret": "ssssssssssssssssssssssssssssssss"},
    "limits": {"heartbeat_interval": 0.5}
  })", {"http.port=9002", "node.id=n7"}, no_env);
  CHECK(cfg.http.port == 9002);
  CHECK(cfg.node_id == "n7");
  CHECK(cfg.http.host == "127.0.0.1");
  CHECK(cfg.http.allowed_origins == std::vector<std::string>{"https://a.example"});
  CHECK(cfg.limits.heartbeat_interval == std::chrono::milliseconds(500));
  CHECK(cfg.limits.max_connections_per_user == 10);
  CHECK(cfg.malloc_arenas == 2);
  CHECK(cfg.actor_scheduler == "stealing");
  CHECK(cfg.routes.size() == 8);
  CHECK(cfg.namespace_of("chat:1").access == sb::access_rule::members);
  CHECK(cfg.namespace_of("dashboard").roles == std::vector<std::string>{"admin", "mentor"});
  CHECK_FALSE(cfg.namespace_of("user:4").publish);
  CHECK_FALSE(cfg.namespace_of("elsewhere:4").publish);
}

TEST_CASE("config: the environment supplies secrets; the command line wins") {
  const std::string k1 = "key-one-0123456789abcdef01234567";
  const std::string k2 = "key-two-0123456789abcdef01234567";
  std::map<std::string, std::string> env{{"SWITCHBOARD_JWT_SECRET", "from-env-0123456789abcdef0123456"},
                                         {"SWITCHBOARD_API_KEYS", k1 + "," + k2}};
  auto cfg = load_config(R"({"auth": {"jwt_secret": "from-file"}})", {}, env);
  CHECK(cfg.auth.jwt_secret == "from-env-0123456789abcdef0123456");
  CHECK(cfg.auth.api_keys == std::vector<std::string>{k1, k2});
  cfg = load_config("", {"auth.jwt_secret=from-cli-0123456789abcdef0123456"}, env);
  CHECK(cfg.auth.jwt_secret == "from-cli-0123456789abcdef0123456");
}

TEST_CASE("config: secrets and API keys shorter than 32 bytes are refused, without showing them") {
  const std::string short_secret = "abcdef";
  const std::string strong(sb::min_secret_bytes, 'k');
  std::string e = error_of("", {"auth.jwt_secret=" + short_secret});
  CHECK(e.find("auth.jwt_secret is shorter than 32 bytes") != std::string::npos);
  CHECK(e.find(short_secret) == std::string::npos);
  e = error_of("", {"auth.jwt_secret=" + std::string(31, 's')});
  CHECK(e.find("auth.jwt_secret") != std::string::npos);
  e = error_of("", {secret_arg, R"(auth.api_keys=[")" + strong + R"(", "short-key"])"});
  CHECK(e.find("auth.api_keys[1] is shorter than 32 bytes") != std::string::npos);
  CHECK(e.find("short-key") == std::string::npos);
  e = error_of("", {secret_arg, R"(auth.api_keys=[""])"});
  CHECK(e.find("auth.api_keys[0]") != std::string::npos);
  auto cfg = load_config("", {secret_arg, R"(auth.api_keys=[")" + strong + R"("])"}, no_env);
  CHECK(cfg.auth.api_keys == std::vector<std::string>{strong});
  CHECK_FALSE(cfg.auth.allow_weak_secrets);
}

TEST_CASE("config: auth.allow_weak_secrets lets development configs use short secrets") {
  auto cfg = load_config(R"({"auth": {"jwt_secret": "dev", "api_keys": ["k"], "allow_weak_secrets": true}})",
                         {}, no_env);
  CHECK(cfg.auth.allow_weak_secrets);
  CHECK(cfg.auth.jwt_secret == "dev");
  CHECK(error_of("", {"auth.jwt_secret=dev", "auth.allow_weak_secrets=false"})
            .find("auth.jwt_secret") != std::string::npos);
  CHECK(error_of("", {secret_arg, "auth.allow_weak_secrets=yes"})
            .find("auth.allow_weak_secrets must be true or false") != std::string::npos);
  // Even so, a secret is required.
  CHECK(error_of("", {"auth.allow_weak_secrets=true"}).find("auth.jwt_secret is required") !=
        std::string::npos);
}

TEST_CASE("config: JSON nested deeper than 64 levels is refused in the file and in overrides") {
  std::string deep = std::string(65, '[') + std::string(65, ']');
  CHECK(error_of(R"({"routes": )" + deep + "}", {secret_arg}) ==
        "config: the file nests JSON deeper than 64 levels");
  CHECK(error_of("", {secret_arg, "http.allowed_origins=" + deep}) ==
        "config: override http.allowed_origins nests JSON deeper than 64 levels");
  // 450,000 levels: refused before anything is built, no stack overflow.
  std::string huge = std::string(450000, '[') + std::string(450000, ']');
  CHECK(error_of(huge).find("deeper than 64") != std::string::npos);
  // Brackets in comments and strings do not count.
  auto cfg = load_config("// " + deep + "\n{\"http\": {\"allowed_origins\": [\"" + deep + "\"]}}",
                         {secret_arg}, no_env);
  CHECK(cfg.http.allowed_origins == std::vector<std::string>{deep});
}

TEST_CASE("config: errors name the key") {
  CHECK(error_of(R"({"http": {"prot": 1}})", {secret_arg}) ==
        "config: http.prot is not a known key");
  CHECK(error_of(R"({"htp": {}})", {secret_arg}) == "config: htp is not a known key");
  CHECK(error_of(R"({"http": {"port": "80"}})", {secret_arg}).find("http.port") !=
        std::string::npos);
  CHECK(error_of(R"({"http": {"port": 70000}})", {secret_arg}).find("http.port") !=
        std::string::npos);
  CHECK(error_of(R"({"http": {"port": -1}})", {secret_arg}).find("http.port") !=
        std::string::npos);
  CHECK(error_of(R"({"http": {}})").find("auth.jwt_secret") != std::string::npos);
  CHECK(error_of("{not json").find("not valid JSON") != std::string::npos);
  CHECK(error_of("[1]").find("JSON object") != std::string::npos);
  CHECK(error_of("", {secret_arg, "limits.heartbeat_interval=0"})
            .find("limits.heartbeat_interval") != std::string::npos);
  CHECK(error_of("", {secret_arg, "nonsense"}).find("key.path=value") != std::string::npos);
  CHECK(error_of("", {secret_arg, "log.level=loud"}).find("log.level") != std::string::npos);
  CHECK(error_of("", {secret_arg, "node.malloc_arenas=0"}).find("node.malloc_arenas") !=
        std::string::npos);
  CHECK(error_of("", {secret_arg, "node.actor_scheduler=fifo"}).find("node.actor_scheduler") !=
        std::string::npos);
}

TEST_CASE("config: namespaces and routes") {
  auto cfg = load_config(R"({
    "auth": {"jwt_secret": "ssssssssssssssssssssssssssssssss"},
    "namespaces": {"course": {"access": "members", "max_message_length": 500},
                   "ops": {"access": "roles", "roles": ["admin"]}},
    "routes": [{"path": "/ws/course/{id}/", "channels": ["course:{id}"]},
               {"path": "/ws/chat/{room}/", "channels": ["chat:{room}", "course:{room}"]}]
  })", {}, no_env);
  CHECK(cfg.namespace_of("course:1").max_message_length == 500);
  CHECK(cfg.namespace_of("course:1").publish);
  CHECK_FALSE(cfg.namespace_of("ops").publish);
  CHECK(cfg.routes.size() == 9);
  CHECK(cfg.routes.front().channels.size() == 2);

  CHECK(error_of(R"({"auth": {"jwt_secret": "ssssssssssssssssssssssssssssssss"},
                     "namespaces": {"ops": {"access": "roles", "publish": true, "roles": ["a"]}}})")
            .find("namespaces.ops.publish") != std::string::npos);
  CHECK(error_of(R"({"auth": {"jwt_secret": "ssssssssssssssssssssssssssssssss"},
                     "namespaces": {"ops": {"access": "roles", "roles": ["admin", ""]}}})")
            .find("namespaces.ops.roles") != std::string::npos);
  CHECK(error_of(R"({"namespaces": {"x": {"access": "everyone"}}})", {secret_arg})
            .find("namespaces.x.access") != std::string::npos);
  CHECK(error_of(R"({"routes": [{"path": "ws/x"}]})", {secret_arg})
            .find("routes[0].path") != std::string::npos);
  CHECK(error_of(R"({"routes": [{"path": "/ws/x/", "kind": "y"}]})", {secret_arg})
            .find("routes[0].kind") != std::string::npos);
  CHECK(error_of(R"({"routes": [{"path": "/ws/x/", "chanels": []}]})", {secret_arg})
            .find("routes[0].chanels") != std::string::npos);
}

TEST_CASE("config: cluster") {
  auto cfg = load_config("", {secret_arg}, no_env);
  CHECK(cfg.cluster.port == 0);
  CHECK(cfg.cluster.host == "127.0.0.1");
  cfg = load_config("", {secret_arg, "cluster.port=7000", "cluster.insecure=true",
                         R"(cluster.seeds=["10.0.0.2:7000","node-b:7000"])"},
                    no_env);
  CHECK(cfg.cluster.seeds.size() == 2);
  CHECK(error_of("", {secret_arg, "cluster.port=7000"}).find("mutual TLS") !=
        std::string::npos);
  CHECK(error_of("", {secret_arg, R"(cluster.seeds=["nohost"])"})
            .find("cluster.seeds") != std::string::npos);
  CHECK(error_of("", {secret_arg, R"(cluster.seeds=["h:99999"])"})
            .find("cluster.seeds") != std::string::npos);
  CHECK(error_of("", {secret_arg, "cluster.dead_after=0.1"}).find("cluster.dead_after") !=
        std::string::npos);
}

TEST_CASE("config: admin listener") {
  const std::string base =
      R"({"auth": {"jwt_secret": "ssssssssssssssssssssssssssssssss"}, "http": {"port": 8005}})";
  SUBCASE("off without a token, on http.port + 100 by default") {
    auto cfg = load_config(base, {}, no_env);
    CHECK(cfg.admin.port == std::optional<uint16_t>{8105});
    CHECK(cfg.admin.host == "127.0.0.1");
    CHECK_FALSE(cfg.admin.enabled());
  }
  SUBCASE("the token from the file or the environment; the command line wins") {
    auto cfg = load_config(base, {"admin.token=from-the-command-line"},
                           {{"SWITCHBOARD_ADMIN_TOKEN", "from-the-environment"}});
    CHECK(cfg.admin.token == "from-the-command-line");
    cfg = load_config(base, {}, {{"SWITCHBOARD_ADMIN_TOKEN", "from-the-environment"}});
    CHECK(cfg.admin.token == "from-the-environment");
    CHECK(cfg.admin.enabled());
  }
  SUBCASE("port 0 turns it off; http.port 0 makes it any free port") {
    auto cfg = load_config(base, {"admin.port=0", "admin.token=0123456789abcdef"}, no_env);
    CHECK_FALSE(cfg.admin.port.has_value());
    CHECK_FALSE(cfg.admin.enabled());
    cfg = load_config(base, {"http.port=0", "admin.token=0123456789abcdef"}, no_env);
    CHECK(cfg.admin.port == std::optional<uint16_t>{0});
    CHECK(cfg.admin.enabled());
    cfg = load_config(base, {"admin.port=7000", "admin.host=127.0.0.2"}, no_env);
    CHECK(cfg.admin.port == std::optional<uint16_t>{7000});
    CHECK(cfg.admin.host == "127.0.0.2");
  }
  SUBCASE("errors name the key") {
    CHECK(error_of(base, {"admin.token=short"}) ==
          "config: admin.token must be at least 16 characters");
    CHECK(error_of(base, {"admin.port=70000"}) == "config: admin.port must be from 0 to 65535, not 70000");
    CHECK(error_of(base, {"admin.port=\"x\""}).rfind("config: admin.port must be a whole number", 0) == 0);
    CHECK(error_of(base, {"admin.host="}) == "config: admin.host must not be empty");
    CHECK(error_of(base, {"admin.tokn=x"}) == "config: admin.tokn is not a known key");
    CHECK(error_of(base, {"http.port=65500"}) ==
          "config: admin.port must be given when http.port is above 65435");
  }
}

TEST_CASE("config: connection, subscription and request limits") {
  struct limit_key {
    const char* key;
    double fallback;  // the default
    const char* value;
    double set;       // as `value` reads
    const char* bad;
    std::function<double(const sb::limits_config&)> get;
  };
  const std::vector<limit_key> keys{
      {"max_connections", 50000, "3", 3, "0",
       [](const sb::limits_config& l) { return double(l.max_connections); }},
      {"max_channels_per_connection", 100, "5", 5, "0",
       [](const sb::limits_config& l) { return double(l.max_channels_per_connection); }},
      {"max_channels_per_user", 1000, "7", 7, "-1",
       [](const sb::limits_config& l) { return double(l.max_channels_per_user); }},
      {"request_rate_limit", 20, "0.5", 0.5, "0",
       [](const sb::limits_config& l) { return l.request_rate_per_second; }},
      {"request_rate_limit_burst", 100, "4", 4, "0.5",
       [](const sb::limits_config& l) { return l.request_rate_burst; }},
      {"max_notification_types", 100, "2", 2, "0",
       [](const sb::limits_config& l) { return double(l.max_notification_types); }},
      {"max_requests_in_flight", 32, "4", 4, "0",
       [](const sb::limits_config& l) { return double(l.max_requests_in_flight); }},
  };
  const std::string& secret = secret_arg;
  for (const auto& k : keys) {
    std::string name = std::string("limits.") + k.key;
    CAPTURE(name);
    CHECK(k.get(load_config("", {secret}, no_env).limits) == k.fallback);
    CHECK(k.get(load_config("", {secret, name + "=" + k.value}, no_env).limits) == k.set);
    CHECK(error_of("", {secret, name + "=" + k.bad}).rfind("config: " + name + " ", 0) == 0);
  }
}
