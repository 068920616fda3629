#include <doctest/doctest.h>

#include "tools/sbctl_args.hpp"

using sbctl::call_for;
using sbctl::parse_args;
using sbctl::usage_error;

namespace {

const std::map<std::string, std::string> env{{"SWITCHBOARD_ADMIN_TOKEN", "from-env"}};

std::string error_of(std::vector<std::string> argv,
                     const std::map<std::string, std::string>& e = env) {
  try {
    parse_args(argv, e);
  } catch (const usage_error& err) {
    return err.what();
  }
  return "";
}

}  // namespace

TEST_CASE("sbctl args: global options anywhere, defaults from the environment") {
  auto inv = parse_args({"channels", "--prefix", "chat:", "--json"}, env);
  CHECK(inv.command == "channels");
  CHECK(inv.options.at("prefix") == "chat:");
  CHECK(inv.json);
  CHECK(inv.token == "from-env");
  CHECK(inv.address == "127.0.0.1:8100");

  inv = parse_args({"--node", "10.0.0.1:9100", "--token", "given", "cluster"},
                   {{"SBCTL_NODE", "127.0.0.1:1"}, {"SWITCHBOARD_ADMIN_TOKEN", "env"}});
  CHECK(inv.address == "10.0.0.1:9100");
  CHECK(inv.token == "given");
  CHECK(parse_args({"cluster"}, {{"SBCTL_NODE", "127.0.0.1:8101"}, {"SWITCHBOARD_ADMIN_TOKEN", "t"}})
            .address == "127.0.0.1:8101");
}

TEST_CASE("sbctl args: --node after actors and actor names a cluster member") {
  auto inv = parse_args({"--node", "127.0.0.1:8101", "actors", "--node", "b", "--kind", "user"}, env);
  CHECK(inv.address == "127.0.0.1:8101");
  CHECK(inv.options.at("node") == "b");
  CHECK(call_for(inv).target == "/admin/actors?node=b&kind=user");
  inv = parse_args({"user", "42", "--node", "127.0.0.1:8102"}, env);
  CHECK(inv.address == "127.0.0.1:8102");
}

TEST_CASE("sbctl args: bad input is a usage error that says what is wrong") {
  CHECK(error_of({}) == "no command given (try --help)");
  CHECK(error_of({"bogus"}) == "unknown command 'bogus' (try --help)");
  CHECK(error_of({"channel"}) == "channel takes 1 argument(s), not 0 (try --help)");
  CHECK(error_of({"user", "1", "2"}) == "user takes 1 argument(s), not 2 (try --help)");
  CHECK(error_of({"connections", "--sort", "size"}) == "--sort must be queue or age");
  CHECK(error_of({"connections", "--limit", "0"}) == "--limit must be a positive integer");
  CHECK(error_of({"tail", "chat:x", "--since", "-1"}) ==
        "--since must be an event id (a non-negative integer)");
  CHECK(error_of({"channels", "--prefix", "a", "--namespace", "b"}) ==
        "give --prefix or --namespace, not both");
  CHECK(error_of({"channels", "--kind", "x"}) == "unknown option '--kind' for channels (try --help)");
  CHECK(error_of({"kick", "channel", "x"}) == "kick takes `user ID` (try --help)");
  CHECK(error_of({"publish", "chat:x", "t", "[1]"}).rfind("publish: JSON must be a JSON object", 0) == 0);
  CHECK(error_of({"cluster", "--node"}) == "--node needs a value (try --help)");
  CHECK(error_of({"--bogus"}) == "unknown option '--bogus' (try --help)");
  CHECK(error_of({"cluster", "--bogus"}) == "unknown option '--bogus' for cluster (try --help)");
  CHECK(error_of({"--node", "nohost", "cluster"}) ==
        "--node must be HOST:PORT (the admin interface), not 'nohost'");
  CHECK(error_of({"--node", "h:70000", "cluster"}).rfind("--node must be HOST:PORT", 0) == 0);
  CHECK(error_of({"cluster"}, {}) == "no admin token: pass --token or set SWITCHBOARD_ADMIN_TOKEN");
  CHECK(parse_args({"--help"}, {}).help);
}

TEST_CASE("sbctl args: each command's admin request") {
  auto call = [](std::vector<std::string> argv) { return call_for(parse_args(argv, env)); };
  CHECK(call({"cluster"}).target == "/admin/cluster");
  CHECK(call({"channels", "--namespace", "chat"}).target == "/admin/channels?prefix=chat:");
  CHECK(call({"channel", "chat:a b", "--limit", "5"}).target == "/admin/channel?name=chat:a%20b&limit=5");
  CHECK(call({"user", "u&1"}).target == "/admin/user?id=u%261");
  CHECK(call({"connections", "--user", "7", "--sort", "queue", "--limit", "3"}).target ==
        "/admin/connections?user=7&sort=queue&limit=3");
  CHECK(call({"actor", "channel:chat:1"}).target == "/admin/actor?id=channel:chat:1");
  CHECK(call({"tail", "chat:1", "--since", "17", "--count", "2"}).target ==
        "/admin/tail?channel=chat:1&since=17");
  auto kick = call({"kick", "user", "42"});
  CHECK(kick.method == "POST");
  CHECK(kick.target == "/admin/kick");
  CHECK(kick.body == R"({"user_id":"42"})");
  CHECK(call({"publish", "chat:1", "note", R"({"a": 1})"}).body ==
        R"({"channel":"chat:1","data":{"a":1},"type":"note"})");
  CHECK(call({"drain", "node-b"}).body == R"({"node":"node-b"})");
}
