#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/access.hpp"

using namespace sb;

namespace {

namespace_config with_rule(access_rule rule, bool publish = false) {
  namespace_config ns;
  ns.access = rule;
  ns.publish = publish;
  return ns;
}

// The default namespaces of PROTOCOL section 2, plus a read-only members one.
config test_config() {
  config cfg;
  cfg.namespaces["chat"] = with_rule(access_rule::members, true);
  cfg.namespaces["session"] = with_rule(access_rule::members, true);
  cfg.namespaces["announce"] = with_rule(access_rule::members, false);
  cfg.namespaces["user"] = with_rule(access_rule::owner);
  cfg.namespaces["role"] = with_rule(access_rule::role);
  cfg.namespaces["dashboard"] = with_rule(access_rule::roles);
  cfg.namespaces["dashboard"].roles = {"admin", "mentor"};
  cfg.namespaces["leaderboard"] = with_rule(access_rule::authenticated);
  // publish is set where it must not matter: only members namespaces take events.
  cfg.namespaces["open"] = with_rule(access_rule::authenticated, true);
  return cfg;
}

claims user(std::string id, std::string role = "", std::vector<std::string> channels = {}) {
  claims c;
  c.user_id = std::move(id);
  c.role = std::move(role);
  c.channels = std::move(channels);
  return c;
}

}  // namespace

TEST_SUITE("access") {

TEST_CASE("the channels claim grants exact names and prefix patterns") {
  claims c = user("1", "", {"chat:123", "session:*"});
  CHECK(channels_claim_grants(c, "chat:123"));
  CHECK_FALSE(channels_claim_grants(c, "chat:12"));
  CHECK_FALSE(channels_claim_grants(c, "chat:1234"));
  CHECK(channels_claim_grants(c, "session:abc"));
  CHECK(channels_claim_grants(c, "session:"));
  CHECK_FALSE(channels_claim_grants(c, "sessions:abc"));
  CHECK_FALSE(channels_claim_grants(c, "session"));
  CHECK_FALSE(channels_claim_grants(user("1"), "chat:123"));
  CHECK(channels_claim_grants(user("1", "", {"chat:1*"}), "chat:15"));
  CHECK(channels_claim_grants(user("1", "", {"*"}), "anything:at.all"));
  CHECK_FALSE(channels_claim_grants(user("1", "", {""}), "chat:1"));
}

TEST_CASE("members namespaces admit only what the channels claim names") {
  config cfg = test_config();
  claims c = user("1", "admin", {"chat:123", "session:*"});
  CHECK(may_subscribe(cfg, c, "chat:123"));
  CHECK_FALSE(may_subscribe(cfg, c, "chat:124"));
  CHECK(may_subscribe(cfg, c, "session:s-9"));
  CHECK_FALSE(may_subscribe(cfg, user("1", "admin"), "chat:123"));
  CHECK_FALSE(may_subscribe(cfg, user("1", "admin"), "session:s-9"));
}

TEST_CASE("user:{id} is for that user only") {
  config cfg = test_config();
  CHECK(may_subscribe(cfg, user("42"), "user:42"));
  CHECK_FALSE(may_subscribe(cfg, user("42"), "user:43"));
  CHECK_FALSE(may_subscribe(cfg, user("42"), "user:4"));
  CHECK_FALSE(may_subscribe(cfg, user("4"), "user:42"));
  CHECK_FALSE(may_subscribe(cfg, user("42", "admin"), "user:43"));
  CHECK(may_subscribe(cfg, user("42", "", {"user:43"}), "user:43"));
}

TEST_CASE("role:{r} is for users with that role") {
  config cfg = test_config();
  CHECK(may_subscribe(cfg, user("1", "mentor"), "role:mentor"));
  CHECK_FALSE(may_subscribe(cfg, user("1", "student"), "role:mentor"));
  CHECK_FALSE(may_subscribe(cfg, user("1"), "role:mentor"));
  CHECK_FALSE(may_subscribe(cfg, user("1"), "role:"));
  CHECK_FALSE(may_subscribe(cfg, user("1"), "role"));
}

TEST_CASE("a roles namespace admits the listed roles") {
  config cfg = test_config();
  CHECK(may_subscribe(cfg, user("1", "admin"), "dashboard:main"));
  CHECK(may_subscribe(cfg, user("1", "mentor"), "dashboard:main"));
  CHECK_FALSE(may_subscribe(cfg, user("1", "student"), "dashboard:main"));
  CHECK_FALSE(may_subscribe(cfg, user("1"), "dashboard:main"));
  CHECK_FALSE(may_subscribe(cfg, user("1", "Admin"), "dashboard:main"));
}

TEST_CASE("an authenticated namespace admits everyone with a token") {
  config cfg = test_config();
  CHECK(may_subscribe(cfg, user("1"), "leaderboard:global"));
  CHECK(may_subscribe(cfg, user("2", "student"), "leaderboard"));
}

TEST_CASE("an unconfigured namespace follows the members rule") {
  config cfg = test_config();
  CHECK_FALSE(may_subscribe(cfg, user("1", "admin"), "misc:1"));
  CHECK(may_subscribe(cfg, user("1", "", {"misc:*"}), "misc:1"));
}

TEST_CASE("publishing needs a members namespace that takes events and a grant") {
  config cfg = test_config();
  claims member = user("42", "admin", {"chat:123", "session:*", "announce:all", "misc:1",
                                       "leaderboard:global", "open:1", "user:42"});
  CHECK(may_publish(cfg, member, "chat:123"));
  CHECK(may_publish(cfg, member, "session:x"));
  CHECK_FALSE(may_publish(cfg, member, "chat:999"));
  CHECK_FALSE(may_publish(cfg, user("42"), "chat:123"));

  CHECK(may_subscribe(cfg, member, "announce:all"));
  CHECK_FALSE(may_publish(cfg, member, "announce:all"));

  CHECK(may_subscribe(cfg, member, "user:42"));
  CHECK_FALSE(may_publish(cfg, member, "user:42"));
  CHECK_FALSE(may_publish(cfg, member, "leaderboard:global"));
  CHECK_FALSE(may_publish(cfg, member, "open:1"));
  CHECK_FALSE(may_publish(cfg, user("1", "admin"), "dashboard:main"));
  CHECK_FALSE(may_publish(cfg, user("1", "admin"), "role:admin"));

  // Unconfigured namespaces have publishing off.
  CHECK(may_subscribe(cfg, member, "misc:1"));
  CHECK_FALSE(may_publish(cfg, member, "misc:1"));
}

}  // TEST_SUITE
