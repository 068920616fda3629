#include <doctest/doctest.h>

#include "net/admin_view.hpp"

using namespace sb;

namespace {

admin_report node(std::string id) {
  admin_report r;
  r.node = std::move(id);
  return r;
}

connection_stats conn(uint64_t id, std::string user, int64_t opened, uint64_t queued,
                      std::vector<std::string> channels) {
  return {id, std::move(user), "127.0.0.1:1", "/ws/", opened, 1, queued, std::move(channels)};
}

}  // namespace

TEST_CASE("admin view: channels summed over nodes, the primary's position wins") {
  auto a = node("a");
  auto b = node("b");
  a.channel_list.push_back({"chat:1", "follower", 2, "old", 5, "b", {"a"}, 0});
  b.channel_list.push_back({"chat:1", "primary", 3, "e", 7, "b", {"a"}, 1.5});
  b.channel_list.push_back({"chat:2", "primary", 0, "f", 1, "b", {"a"}, 0});
  auto c = node("c");
  c.reachable = false;
  auto j = admin::channels_json({a, b, c});
  REQUIRE(j["channels"].size() == 2);
  auto& ch = j["channels"][0];
  CHECK(ch["channel"] == "chat:1");
  CHECK(ch["members"] == 5);
  CHECK(ch["epoch"] == "e");
  CHECK(ch["last_event_id"] == 7);
  CHECK(ch["events_per_second"] == 1.5);
  CHECK(ch["nodes"].size() == 2);
  CHECK(j["unreachable"] == nlohmann::json::array({"c"}));
}

TEST_CASE("admin view: cluster states from membership and who answered") {
  std::vector<api_member> members{{"a", "h:1", true, false, true, 0},
                                  {"b", "h:2", true, true, false, 0},
                                  {"c", "h:3", true, false, false, 0},
                                  {"d", "h:4", false, false, false, 0}};
  auto a = node("a");
  a.connections = 4;
  auto b = node("b");
  auto c = node("c");
  c.reachable = false;
  auto j = admin::cluster_json("a", members, {a, b, c});
  std::vector<std::string> states;
  for (auto& m : j["members"]) states.push_back(m["state"]);
  CHECK(states == std::vector<std::string>{"up", "draining", "unreachable", "down"});
  CHECK(j["members"][0]["connections"] == 4);
  CHECK(j["members"][2]["connections"].is_null());
}

TEST_CASE("admin view: connections filtered, sorted and limited") {
  auto a = node("a");
  a.connection_list = {conn(1, "u1", 300, 10, {"chat:1"}), conn(2, "u2", 100, 50, {"chat:2"})};
  auto b = node("b");
  b.connection_list = {conn(1, "u1", 200, 90, {"chat:1", "chat:2"})};
  auto ids = [](const nlohmann::json& j) {
    std::vector<std::string> out;
    for (auto& c : j["connections"]) out.push_back(c["node"].get<std::string>() + std::to_string(c["id"].get<int>()));
    return out;
  };
  CHECK(ids(admin::connections_json({a, b}, {"u1", "", "", std::nullopt}, 1000)) ==
        std::vector<std::string>{"a1", "b1"});
  CHECK(ids(admin::connections_json({a, b}, {"", "chat:2", "queue", std::nullopt}, 1000)) ==
        std::vector<std::string>{"b1", "a2"});
  CHECK(ids(admin::connections_json({a, b}, {"", "", "age", 2}, 1000)) ==
        std::vector<std::string>{"a2", "b1"});
  auto one = admin::connections_json({a}, {"u2", "", "", std::nullopt}, 5100);
  CHECK(one["connections"][0]["age_s"] == 5);
}

TEST_CASE("admin view: connected users summed over nodes") {
  auto a = node("a");
  a.users.push_back({"42", 2, 3.5, 10, 20});
  auto b = node("b");
  b.users.push_back({"42", 1, 20, 10, 20});
  b.users.push_back({"7", 0, 20, 10, 20});  // b only counts user 7's connections
  auto j = admin::users_json({a, b});
  REQUIRE(j["users"].size() == 1);
  CHECK(j["users"][0]["connections"] == 3);
  CHECK(j["users"][0]["nodes"].size() == 2);
  CHECK(admin::rate_limits_json({a, b}).size() == 2);
}
