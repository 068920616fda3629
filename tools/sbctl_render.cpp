#include "tools/sbctl_render.hpp"

#include <cstdio>

#include "tools/table.hpp"

namespace sbctl {

namespace {

using json = nlohmann::json;

// `j[key]`, or null when `j` is no object or lacks `key` (a const
// operator[] on a missing key is undefined behaviour).
const json& field(const json& j, const char* key) {
  static const json null;
  if (!j.is_object()) return null;
  auto it = j.find(key);
  return it == j.end() ? null : *it;
}

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
  for (auto* k : keys) r.push_back(cell(field(entry, k)));
  return r;
}

std::string table(const json& list, const row& header, const std::vector<const char*>& keys) {
  std::vector<row> rows;
  for (auto& e : list) rows.push_back(pick(e, keys));
  return render_table(header, rows);
}

std::string unreachable(const json& body) {
  auto& nodes = field(body, "unreachable");
  if (!nodes.is_array() || nodes.empty()) return {};
  return "unreachable (did not answer): " + cell(nodes) + "\n";
}

std::string cluster(const json& body) {
  std::vector<row> rows;
  for (auto& m : field(body, "members")) {
    auto r = pick(m, {"node", "state", "address", "uptime_s", "connections", "channels", "owned"});
    if (field(m, "self") == true) r[0] += " *";
    rows.push_back(std::move(r));
  }
  return render_table({"NODE", "STATE", "ADDRESS", "UPTIME_S", "CONNECTIONS", "CHANNELS", "OWNED"},
                      rows) +
         "(* the node asked)\n";
}

std::string channel(const json& body) {
  std::string out;
  for (auto* k : {"channel", "owner", "replicas", "epoch", "last_event_id", "members"})
    out += std::string{k} + ": " + cell(field(body, k)) + "\n";
  auto& ret = field(body, "retention");
  out += "retention: " + cell(field(ret, "history_size")) + " events, " + cell(field(ret, "history_ttl_s")) + " s\n";
  out += "\nmembers by node:\n" + table(field(body, "nodes"), {"NODE", "ROLE", "MEMBERS"}, {"node", "role", "members"});
  out += "\npresence:\n" + table(field(body, "presence"), {"USER", "NAME", "CONNECTIONS"},
                                 {"user_id", "username", "connections"});
  out += "\nrecent events:\n";
  for (auto& e : field(body, "recent")) out += e.dump() + "\n";
  if (field(body, "recent").empty()) out += "(none)\n";
  return out;
}

const row connection_header{"NODE", "ID", "USER", "REMOTE", "ROUTE", "AGE_S", "QUEUED_BYTES", "CHANNELS"};
const std::vector<const char*> connection_keys{"node",  "id",           "user_id", "remote",
                                               "route", "age_s", "queued_bytes", "channels"};

std::string user(const json& body) {
  return "user " + cell(field(body, "user_id")) + "\n\nconnections:\n" +
         table(field(body, "connections"), connection_header, connection_keys) + "\nrate limit:\n" +
         table(field(body, "rate_limit"), {"NODE", "TOKENS", "RATE", "BURST"},
               {"node", "tokens", "rate", "burst"}) +
         unreachable(body);
}

std::string users(const json& body) {
  std::vector<row> rows;
  for (auto& u : field(body, "users")) {
    std::string nodes;
    for (auto& n : field(u, "nodes")) nodes += (nodes.empty() ? "" : " ") + cell(field(n, "node")) + "=" + cell(field(n, "connections"));
    rows.push_back({cell(field(u, "user_id")), cell(field(u, "connections")), nodes});
  }
  return render_table({"USER", "CONNECTIONS", "BY NODE"}, rows) + unreachable(body);
}

std::string actor(const json& body) {
  std::string out;
  for (auto& a : field(body, "actors")) {
    out += cell(field(a, "id")) + " on " + cell(field(a, "node")) + " (" + cell(field(a, "kind")) + ", caf id " +
           cell(field(a, "caf_id")) + "): mailbox " + cell(field(a, "mailbox")) + ", handled " +
           cell(field(a, "handled")) + "\n";
    for (auto& [key, value] : field(a, "state").items()) out += "  " + key + ": " + cell(value) + "\n";
  }
  return out + unreachable(body);
}

}  // namespace

std::string render(const std::string& command, const json& body) {
  if (command == "cluster") return cluster(body);
  if (command == "channels")
    return table(field(body, "channels"), {"CHANNEL", "MEMBERS", "OWNER", "REPLICAS", "LAST_ID", "EPOCH", "EVENTS/S"},
                 {"channel", "members", "owner", "replicas", "last_event_id", "epoch", "events_per_second"}) +
           unreachable(body);
  if (command == "channel") return channel(body);
  if (command == "users") return users(body);
  if (command == "user") return user(body);
  if (command == "connections")
    return table(field(body, "connections"), connection_header, connection_keys) + unreachable(body);
  if (command == "actors")
    return table(field(body, "actors"), {"NODE", "KIND", "ID", "CAF_ID", "MAILBOX", "HANDLED"},
                 {"node", "kind", "id", "caf_id", "mailbox", "handled"}) +
           unreachable(body);
  if (command == "actor") return actor(body);
  if (command == "kick")
    return "closed " + cell(field(body, "disconnected")) + " connection(s) of user " + cell(field(body, "user_id")) + "\n";
  if (command == "publish")
    return "published " + cell(field(body, "channel")) + " event_id " + cell(field(body, "event_id")) + " (epoch " +
           cell(field(body, "epoch")) + ")\n";
  if (command == "drain") return "node " + cell(field(body, "node")) + " is draining\n";
  return body.dump(2) + "\n";
}

}  // namespace sbctl
