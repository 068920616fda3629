#include <doctest/doctest.h>

#include <functional>
#include <vector>

#include "core/config.hpp"

using sb::config_error;
using sb::load_config;

namespace {

const std::map<std::string, std::string> no_env;

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
    "auth": {"jwt_secret": "s"},
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
  std::map<std::string, std::string> env{{"SWITCHBOARD_JWT_SECRET", "from-env"},
                                         {"SWITCHBOARD_API_KEYS", "k1,k2"}};
  auto cfg = load_config(R"({"auth": {"jwt_secret": "from-file"}})", {}, env);
  CHECK(cfg.auth.jwt_secret == "from-env");
  CHECK(cfg.auth.api_keys == std::vector<std::string>{"k1", "k2"});
  cfg = load_config("", {"auth.jwt_secret=from-cli"}, env);
  CHECK(cfg.auth.jwt_secret == "from-cli");
}

TEST_CASE("config: errors name the key") {
  CHECK(error_of(R"({"auth": {"jwt_secret": "s"}, "http": {"prot": 1}})") ==
        "config: http.prot is not a known key");
  CHECK(error_of(R"({"auth": {"jwt_secret": "s"}, "htp": {}})") == "config: htp is not a known key");
  CHECK(error_of(R"({"auth": {"jwt_secret": "s"}, "http": {"port": "80"}})").find("http.port") !=
        std::string::npos);
  CHECK(error_of(R"({"auth": {"jwt_secret": "s"}, "http": {"port": 70000}})").find("http.port") !=
        std::string::npos);
  CHECK(error_of(R"({"auth": {"jwt_secret": "s"}, "http": {"port": -1}})").find("http.port") !=
        std::string::npos);
  CHECK(error_of(R"({"http": {}})").find("auth.jwt_secret") != std::string::npos);
  CHECK(error_of("{not json").find("not valid JSON") != std::string::npos);
  CHECK(error_of("[1]").find("JSON object") != std::string::npos);
  CHECK(error_of("", {"auth.jwt_secret=s", "limits.heartbeat_interval=0"})
            .find("limits.heartbeat_interval") != std::string::npos);
  CHECK(error_of("", {"auth.jwt_secret=s", "nonsense"}).find("key.path=value") != std::string::npos);
  CHECK(error_of("", {"auth.jwt_secret=s", "log.level=loud"}).find("log.level") != std::string::npos);
  CHECK(error_of("", {"auth.jwt_secret=s", "node.malloc_arenas=0"}).find("node.malloc_arenas") !=
        std::string::npos);
  CHECK(error_of("", {"auth.jwt_secret=s", "node.actor_scheduler=fifo"}).find("node.actor_scheduler") !=
        std::string::npos);
}

TEST_CASE("config: namespaces and routes") {
  auto cfg = load_config(R"({
    "auth": {"jwt_secret": "s"},
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

  CHECK(error_of(R"({"auth": {"jwt_secret": "s"},
                     "namespaces": {"ops": {"access": "roles", "publish": true, "roles": ["a"]}}})")
            .find("namespaces.ops.publish") != std::string::npos);
  CHECK(error_of(R"({"auth": {"jwt_secret": "s"},
                     "namespaces": {"ops": {"access": "roles", "roles": ["admin", ""]}}})")
            .find("namespaces.ops.roles") != std::string::npos);
  CHECK(error_of(R"({"auth": {"jwt_secret": "s"}, "namespaces": {"x": {"access": "everyone"}}})")
            .find("namespaces.x.access") != std::string::npos);
  CHECK(error_of(R"({"auth": {"jwt_secret": "s"}, "routes": [{"path": "ws/x"}]})")
            .find("routes[0].path") != std::string::npos);
  CHECK(error_of(R"({"auth": {"jwt_secret": "s"}, "routes": [{"path": "/ws/x/", "kind": "y"}]})")
            .find("routes[0].kind") != std::string::npos);
  CHECK(error_of(R"({"auth": {"jwt_secret": "s"}, "routes": [{"path": "/ws/x/", "chanels": []}]})")
            .find("routes[0].chanels") != std::string::npos);
}

TEST_CASE("config: cluster") {
  auto cfg = load_config("", {"auth.jwt_secret=s"}, no_env);
  CHECK(cfg.cluster.port == 0);
  CHECK(cfg.cluster.host == "127.0.0.1");
  cfg = load_config("", {"auth.jwt_secret=s", "cluster.port=7000", "cluster.insecure=true",
                         R"(cluster.seeds=["10.0.0.2:7000","node-b:7000"])"},
                    no_env);
  CHECK(cfg.cluster.seeds.size() == 2);
  CHECK(error_of("", {"auth.jwt_secret=s", "cluster.port=7000"}).find("mutual TLS") !=
        std::string::npos);
  CHECK(error_of("", {"auth.jwt_secret=s", R"(cluster.seeds=["nohost"])"})
            .find("cluster.seeds") != std::string::npos);
  CHECK(error_of("", {"auth.jwt_secret=s", R"(cluster.seeds=["h:99999"])"})
            .find("cluster.seeds") != std::string::npos);
  CHECK(error_of("", {"auth.jwt_secret=s", "cluster.dead_after=0.1"}).find("cluster.dead_after") !=
        std::string::npos);
}

TEST_CASE("config: admin listener") {
  const std::string base = R"({"auth": {"jwt_secret": "s"}, "http": {"port": 8005}})";
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
  };
  // 32 bytes: long enough wherever short secrets are refused.
  const std::string secret = "auth.jwt_secret=" + std::string(32, 's');
  for (const auto& k : keys) {
    std::string name = std::string("limits.") + k.key;
    CAPTURE(name);
    CHECK(k.get(load_config("", {secret}, no_env).limits) == k.fallback);
    CHECK(k.get(load_config("", {secret, name + "=" + k.value}, no_env).limits) == k.set);
    CHECK(error_of("", {secret, name + "=" + k.bad}).rfind("config: " + name + " ", 0) == 0);
  }
}
