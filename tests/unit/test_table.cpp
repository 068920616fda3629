#include <doctest/doctest.h>

#include "tools/sbctl_render.hpp"
#include "tools/table.hpp"

TEST_CASE("table: columns padded to the widest cell, short rows padded") {
  CHECK(sbctl::render_table({"NODE", "STATE"}, {{"a", "up"}, {"node-long", "draining"}, {"c"}}) ==
        "NODE       STATE\n"
        "a          up\n"
        "node-long  draining\n"
        "c          \n");
  CHECK(sbctl::render_table({"A", "B"}, {}) == "A  B\n(none)\n");
}

TEST_CASE("sbctl render: tables from the admin interface's JSON") {
  auto cluster = nlohmann::json::parse(R"({"node": "a", "members": [
      {"node": "a", "state": "up", "address": "127.0.0.1:9001", "self": true, "uptime_s": 5,
       "connections": 2, "channels": 3, "owned": 1},
      {"node": "b", "state": "unreachable", "address": "127.0.0.1:9002", "self": false,
       "uptime_s": null, "connections": null, "channels": null, "owned": null}]})");
  CHECK(sbctl::render("cluster", cluster) ==
        "NODE  STATE        ADDRESS         UPTIME_S  CONNECTIONS  CHANNELS  OWNED\n"
        "a *   up           127.0.0.1:9001  5         2            3         1\n"
        "b     unreachable  127.0.0.1:9002  -         -            -         -\n"
        "(* the node asked)\n");
  auto channels = nlohmann::json::parse(R"({"channels": [{"channel": "chat:1", "members": 4,
      "owner": "a", "replicas": ["b", "c"], "last_event_id": 9, "epoch": "e1",
      "events_per_second": 2.25}], "unreachable": ["c"]})");
  CHECK(sbctl::render("channels", channels) ==
        "CHANNEL  MEMBERS  OWNER  REPLICAS  LAST_ID  EPOCH  EVENTS/S\n"
        "chat:1   4        a      b,c       9        e1     2.2\n"
        "unreachable (did not answer): c\n");
  auto kick = nlohmann::json::parse(R"({"user_id": "42", "disconnected": 3})");
  CHECK(sbctl::render("kick", kick) == "closed 3 connection(s) of user 42\n");
}

TEST_CASE("sbctl render: an answer of another shape prints dashes, never crashes") {
  for (auto* command : {"cluster", "channels", "channel", "users", "user", "connections",
                        "actors", "actor", "kick", "publish", "drain"}) {
    CHECK_NOTHROW(sbctl::render(command, nlohmann::json::object()));
    CHECK_NOTHROW(sbctl::render(command, nlohmann::json::parse(
                                             R"({"members": 5, "channels": [1, "x"], "users": [[]],
                                                 "actors": [{"state": 3}], "retention": 1})")));
  }
}
