#include "tools/sbctl_render.hpp"

#include <cstdio>

#include "tools/table.hpp"

namespace sbctl {

namespace {

using json = nlohmann::json;

std::string cell(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v.get<double>());
    return buf;
  }
  if (v.is_array()) {
    std::string out;
    for (auto& x : v) out += (out.empty() ? "" : ",") + cell(x);
    return out.empty() ? "-" : out;
  }
  return v.dump();
}

// One table row: the named fields of `entry`, in order.
row pick(const json& entry, const std::vector<const char*>& keys) {
  row r;
  for (auto* k : keys) r.push_back(cell(entry.value(k, json())));
  return r;
}

std::string table(const json& list, const row& header, const std::vector<const char*>& keys) {
  std::vector<row> rows;
  for (auto& e : list) rows.push_back(pick(e, keys));
  return render_table(header, rows);
}

std::string unreachable(const json& body) {
  auto it = body.find("unreachable");
  if (it == body.end() || !it->is_array() || it->empty()) return {};
  return "unreachable (did not answer): " + cell(*it) + "\n";
}

std::string cluster(const json& body) {
  std::vector<row> rows;
  for (auto& m : body["members"]) {
    auto r = pick(m, {"node", "state", "address", "uptime_s", "connections", "channels", "owned"});
    if (m.value("self", false)) r[0] += " *";
    rows.push_back(std::move(r));
  }
  return render_table({"NODE", "STATE", "ADDRESS", "UPTIME_S", "CONNECTIONS", "CHANNELS", "OWNED"},
                      rows) +
         "(* the node asked)\n";
}

std::string channel(const json& body) {
  std::string out;
  for (auto* k : {"channel", "owner", "replicas", "epoch", "last_event_id", "members"})
    out += std::string{k} + ": " + cell(body.value(k, json())) + "\n";
  auto& ret = body["retention"];
  out += "retention: " + cell(ret["history_size"]) + " events, " + cell(ret["history_ttl_s"]) + " s\n";
  out += "\nmembers by node:\n" + table(body["nodes"], {"NODE", "ROLE", "MEMBERS"}, {"node", "role", "members"});
  out += "\npresence:\n" + table(body["presence"], {"USER", "NAME", "CONNECTIONS"},
                                 {"user_id", "username", "connections"});
  out += "\nrecent events:\n";
  for (auto& e : body["recent"]) out += e.dump() + "\n";
  if (body["recent"].empty()) out += "(none)\n";
  return out;
}

const row connection_header{"NODE", "ID", "USER", "REMOTE", "ROUTE", "AGE_S", "QUEUED_BYTES", "CHANNELS"};
const std::vector<const char*> connection_keys{"node",  "id",           "user_id", "remote",
                                               "route", "age_s", "queued_bytes", "channels"};

std::string user(const json& body) {
  return "user " + cell(body["user_id"]) + "\n\nconnections:\n" +
         table(body["connections"], connection_header, connection_keys) + "\nrate limit:\n" +
         table(body["rate_limit"], {"NODE", "TOKENS", "RATE", "BURST"},
               {"node", "tokens", "rate", "burst"}) +
         unreachable(body);
}

std::string users(const json& body) {
  std::vector<row> rows;
  for (auto& u : body["users"]) {
    std::string nodes;
    for (auto& n : u["nodes"]) nodes += (nodes.empty() ? "" : " ") + cell(n["node"]) + "=" + cell(n["connections"]);
    rows.push_back({cell(u["user_id"]), cell(u["connections"]), nodes});
  }
  return render_table({"USER", "CONNECTIONS", "BY NODE"}, rows) + unreachable(body);
}

std::string actor(const json& body) {
  std::string out;
  for (auto& a : body["actors"]) {
    out += cell(a["id"]) + " on " + cell(a["node"]) + " (" + cell(a["kind"]) + ", caf id " +
           cell(a["caf_id"]) + "): mailbox " + cell(a["mailbox"]) + ", handled " +
           cell(a["handled"]) + "\n";
    for (auto& [key, value] : a["state"].items()) out += "  " + key + ": " + cell(value) + "\n";
  }
  return out + unreachable(body);
}

}  // namespace

std::string render(const std::string& command, const json& body) {
  if (command == "cluster") return cluster(body);
  if (command == "channels")
    return table(body["channels"], {"CHANNEL", "MEMBERS", "OWNER", "REPLICAS", "LAST_ID", "EPOCH", "EVENTS/S"},
                 {"channel", "members", "owner", "replicas", "last_event_id", "epoch", "events_per_second"}) +
           unreachable(body);
  if (command == "channel") return channel(body);
  if (command == "users") return users(body);
  if (command == "user") return user(body);
  if (command == "connections")
    return table(body["connections"], connection_header, connection_keys) + unreachable(body);
  if (command == "actors")
    return table(body["actors"], {"NODE", "KIND", "ID", "CAF_ID", "MAILBOX", "HANDLED"},
                 {"node", "kind", "id", "caf_id", "mailbox", "handled"}) +
           unreachable(body);
  if (command == "actor") return actor(body);
  if (command == "kick")
    return "closed " + cell(body["disconnected"]) + " connection(s) of user " + cell(body["user_id"]) + "\n";
  if (command == "publish")
    return "published " + cell(body["channel"]) + " event_id " + cell(body["event_id"]) + " (epoch " +
           cell(body["epoch"]) + ")\n";
  if (command == "drain") return "node " + cell(body["node"]) + " is draining\n";
  return body.dump(2) + "\n";
}

}  // namespace sbctl
