#include "tools/sbctl_args.hpp"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

namespace sbctl {

const char* const usage = R"(usage: sbctl [--node HOST:PORT] [--token TOKEN] [--json] COMMAND ...

Inspects and steers a running Switchboard cluster through any node's admin
interface (docs/admin.md).

  cluster                         members: state, uptime, connections, channels
  channels [--prefix P | --namespace NS]
                                  channels: members, owner, replicas, last id, rate
  channel NAME [--limit N]        one channel: members, presence, recent events, retention
  users                           connected users and their connections per node
  user ID                         one user's connections on every node, rate limits
  connections [--user U] [--channel C] [--sort queue|age] [--limit N]
  actors [--node NODE_ID] [--kind channel|user|connection|hub|replica|membership|admin]
                                  a node's actors: mailbox length, messages handled
  actor ID [--node NODE_ID]       one actor's state (ids: hub, replica, membership,
                                  admin, channel:NAME, user:ID, conn:N)
  kick user ID                    close the user's sockets on every node (4005)
  publish CHANNEL TYPE JSON       publish an event (durable, acknowledged)
  tail CHANNEL [--since ID] [--count N]
                                  print the channel's events as they come, one JSON
                                  per line (after replaying those after ID)
  drain NODE_ID                   the node hands its channels over and closes its
                                  clients with 1001; it keeps running
  token --user ID ...             mint a development token (sbctl token --help)

Global options (before the command; --json and --token anywhere):
  --node HOST:PORT   the admin interface (default 127.0.0.1:8100, or SBCTL_NODE);
                     after `actors` and `actor`, --node names a cluster member instead
  --token TOKEN      the admin token (default: SWITCHBOARD_ADMIN_TOKEN)
  --json             print the node's JSON answer instead of a table

Exit codes: 0 ok, 1 not found (channel, user, actor, node), 2 bad arguments,
3 node unreachable or unavailable, 4 admin token refused.
)";

namespace {

struct command_shape {
  const char* name;
  std::size_t min_args;
  std::size_t max_args;
  std::vector<std::string> options;
};

const std::vector<command_shape>& shapes() {
  static const std::vector<command_shape> all = {
      {"cluster", 0, 0, {}},
      {"channels", 0, 0, {"prefix", "namespace"}},
      {"channel", 1, 1, {"limit"}},
      {"users", 0, 0, {}},
      {"user", 1, 1, {}},
      {"connections", 0, 0, {"user", "channel", "sort", "limit"}},
      {"actors", 0, 0, {"node", "kind"}},
      {"actor", 1, 1, {"node"}},
      {"kick", 2, 2, {}},
      {"publish", 3, 3, {}},
      {"tail", 1, 1, {"since", "count"}},
      {"drain", 1, 1, {}},
  };
  return all;
}

const command_shape& shape_of(const std::string& name) {
  for (auto& s : shapes())
    if (name == s.name) return s;
  throw usage_error("unknown command '" + name + "' (try --help)");
}

bool is_count(const std::string& s) {
  return !s.empty() && s.size() < 19 && s.find_first_not_of("0123456789") == std::string::npos;
}

void check(const invocation& inv, const command_shape& shape) {
  auto n = inv.args.size();
  if (n < shape.min_args || n > shape.max_args)
    throw usage_error(inv.command + " takes " + std::to_string(shape.min_args) +
                      (shape.min_args == shape.max_args ? "" : "-" + std::to_string(shape.max_args)) +
                      " argument(s), not " + std::to_string(n) + " (try --help)");
  for (auto* key : {"limit", "count"})
    if (inv.options.count(key) && (!is_count(inv.options.at(key)) || inv.options.at(key) == "0"))
      throw usage_error(std::string{"--"} + key + " must be a positive integer");
  if (inv.options.count("since") && !is_count(inv.options.at("since")))
    throw usage_error("--since must be an event id (a non-negative integer)");
  if (inv.options.count("sort") && inv.options.at("sort") != "queue" && inv.options.at("sort") != "age")
    throw usage_error("--sort must be queue or age");
  if (inv.options.count("prefix") && inv.options.count("namespace"))
    throw usage_error("give --prefix or --namespace, not both");
  if (inv.command == "kick" && inv.args[0] != "user")
    throw usage_error("kick takes `user ID` (try --help)");
  if (inv.command == "publish" && !nlohmann::json::parse(inv.args[2], nullptr, false).is_object())
    throw usage_error("publish: JSON must be a JSON object, e.g. '{\"text\": \"hi\"}'");
}

std::string env_or(const std::map<std::string, std::string>& env, const char* key,
                   std::string fallback) {
  auto it = env.find(key);
  return it == env.end() || it->second.empty() ? fallback : it->second;
}

std::string encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':' || c == '@') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// `path?k=v&...` with the options that are set, in the order given.
std::string with_query(std::string path,
                       const std::vector<std::pair<std::string, std::string>>& params) {
  char sep = '?';
  for (auto& [key, value] : params) {
    if (value.empty()) continue;
    path += sep + key + "=" + encode(value);
    sep = '&';
  }
  return path;
}

std::string option(const invocation& inv, const char* key) {
  auto it = inv.options.find(key);
  return it == inv.options.end() ? std::string{} : it->second;
}

}  // namespace

invocation parse_args(const std::vector<std::string>& argv,
                      const std::map<std::string, std::string>& env) {
  invocation inv;
  inv.address = env_or(env, "SBCTL_NODE", inv.address);
  inv.token = env_or(env, "SWITCHBOARD_ADMIN_TOKEN", "");
  const command_shape* shape = nullptr;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const auto& a = argv[i];
    if (a == "--help" || a == "-h") {
      inv.help = true;
      continue;
    }
    if (a == "--json") {
      inv.json = true;
      continue;
    }
    if (a.rfind("--", 0) != 0 || a.size() == 2) {
      if (!shape) {
        shape = &shape_of(a);
        inv.command = a;
      } else {
        inv.args.push_back(a);
      }
      continue;
    }
    auto key = a.substr(2);
    bool own = shape && std::find(shape->options.begin(), shape->options.end(), key) !=
                            shape->options.end();
    if (!own && key != "token" && key != "node")
      throw usage_error("unknown option '" + a + "'" +
                        (shape ? " for " + inv.command : std::string{}) + " (try --help)");
    if (i + 1 >= argv.size()) throw usage_error(a + " needs a value (try --help)");
    const auto& value = argv[++i];
    if (own)
      inv.options[key] = value;
    else if (key == "token")
      inv.token = value;
    else
      inv.address = value;
  }
  if (inv.help) return inv;
  if (!shape) throw usage_error("no command given (try --help)");
  check(inv, *shape);
  split_address(inv.address);
  if (inv.token.empty())
    throw usage_error("no admin token: pass --token or set SWITCHBOARD_ADMIN_TOKEN");
  return inv;
}

admin_call call_for(const invocation& inv) {
  const auto& c = inv.command;
  auto arg = [&](std::size_t i) { return inv.args.at(i); };
  if (c == "cluster" || c == "users") return {"GET", "/admin/" + c, {}};
  if (c == "channels") {
    auto ns = option(inv, "namespace");
    return {"GET", with_query("/admin/channels", {{"prefix", ns.empty() ? option(inv, "prefix") : ns + ":"}}), {}};
  }
  if (c == "channel")
    return {"GET", with_query("/admin/channel", {{"name", arg(0)}, {"limit", option(inv, "limit")}}), {}};
  if (c == "user") return {"GET", with_query("/admin/user", {{"id", arg(0)}}), {}};
  if (c == "connections")
    return {"GET",
            with_query("/admin/connections", {{"user", option(inv, "user")},
                                              {"channel", option(inv, "channel")},
                                              {"sort", option(inv, "sort")},
                                              {"limit", option(inv, "limit")}}),
            {}};
  if (c == "actors")
    return {"GET", with_query("/admin/actors", {{"node", option(inv, "node")}, {"kind", option(inv, "kind")}}), {}};
  if (c == "actor")
    return {"GET", with_query("/admin/actor", {{"id", arg(0)}, {"node", option(inv, "node")}}), {}};
  if (c == "kick") return {"POST", "/admin/kick", nlohmann::json{{"user_id", arg(1)}}.dump()};
  if (c == "publish")
    return {"POST", "/admin/publish",
            nlohmann::json{{"channel", arg(0)}, {"type", arg(1)}, {"data", nlohmann::json::parse(arg(2))}}.dump()};
  if (c == "tail")
    return {"GET", with_query("/admin/tail", {{"channel", arg(0)}, {"since", option(inv, "since")}}), {}};
  return {"POST", "/admin/drain", nlohmann::json{{"node", arg(0)}}.dump()};
}

std::pair<std::string, uint16_t> split_address(const std::string& address) {
  auto colon = address.rfind(':');
  auto port = colon == std::string::npos ? std::string{} : address.substr(colon + 1);
  if (colon == 0 || !is_count(port) || port.size() > 5 || std::stoul(port) == 0 ||
      std::stoul(port) > 65535)
    throw usage_error("--node must be HOST:PORT (the admin interface), not '" + address + "'");
  return {address.substr(0, colon), static_cast<uint16_t>(std::stoul(port))};
}

}  // namespace sbctl
