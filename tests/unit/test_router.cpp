#include <doctest/doctest.h>

#include "core/config.hpp"
#include "net/router.hpp"

namespace {

sb::config test_config() { return sb::load_config("", {"auth.jwt_secret=ssssssssssssssssssssssssssssssss"}, {}); }

sb::claims user(std::string id, std::string role = {}) {
  sb::claims c;
  c.user_id = std::move(id);
  c.role = std::move(role);
  return c;
}

}  // namespace

TEST_CASE("router: targets are split and decoded") {
  auto t = sb::parse_target("/ws/chat/a%2Db/?token=x%2By&last_event_id=5&flag&q=a+b");
  REQUIRE(t);
  CHECK(t->path == "/ws/chat/a-b/");
  CHECK(t->query.at("token") == "x+y");
  CHECK(t->query.at("last_event_id") == "5");
  CHECK(t->query.at("flag").empty());
  CHECK(t->query.at("q") == "a b");
  CHECK_FALSE(sb::parse_target("/ws/%zz"));
  CHECK_FALSE(sb::parse_target("/ws/%4"));
  CHECK_FALSE(sb::parse_target("/ws/?a=%"));
}

TEST_CASE("router: routes match with or without the trailing slash") {
  auto cfg = test_config();
  auto m = sb::match_route(cfg.routes, "/ws/chat/123/");
  REQUIRE(m);
  CHECK(m->route->path == "/ws/chat/{room}/");
  CHECK(m->params.at("room") == "123");
  CHECK(sb::match_route(cfg.routes, "/ws/chat/123"));
  CHECK(sb::match_route(cfg.routes, "/ws/health"));
  CHECK(sb::match_route(cfg.routes, "/ws/")->route->kind == sb::route_kind::multiplex);
  CHECK(sb::match_route(cfg.routes, "/ws")->route->kind == sb::route_kind::multiplex);
  CHECK_FALSE(sb::match_route(cfg.routes, "/ws/chat/"));
  CHECK_FALSE(sb::match_route(cfg.routes, "/ws/chat/1/2/"));
  CHECK_FALSE(sb::match_route(cfg.routes, "/ws//chat/1/"));
  CHECK_FALSE(sb::match_route(cfg.routes, "/nope"));
  CHECK_FALSE(sb::match_route(cfg.routes, ""));
}

TEST_CASE("router: channel templates take the path, the user and the role") {
  auto cfg = test_config();
  auto chat = sb::match_route(cfg.routes, "/ws/chat/lobby/");
  CHECK(*sb::route_channels(*chat, user("7")) == std::vector<std::string>{"chat:lobby"});
  auto updates = sb::match_route(cfg.routes, "/ws/updates/");
  CHECK(*sb::route_channels(*updates, user("7", "cadet")) ==
        std::vector<std::string>{"user:7", "role:cadet"});
  CHECK(*sb::route_channels(*updates, user("7")) == std::vector<std::string>{"user:7"});
  auto spaced = sb::match_route(cfg.routes, "/ws/chat/a b/");
  REQUIRE(spaced);
  CHECK_FALSE(sb::route_channels(*spaced, user("7")));
}

TEST_CASE("router: unsigned integers in query strings") {
  CHECK(*sb::parse_uint("0") == 0);
  CHECK(*sb::parse_uint("18446744073") == 18446744073ULL);
  CHECK_FALSE(sb::parse_uint(""));
  CHECK_FALSE(sb::parse_uint("-1"));
  CHECK_FALSE(sb::parse_uint("1e3"));
  CHECK_FALSE(sb::parse_uint("12345678901234567890"));
}
