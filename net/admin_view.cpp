#include "net/admin_view.hpp"

#include <algorithm>
#include <map>

namespace sb::admin {

namespace {

const char* state_of(const api_member& m, const admin_report* r) {
  if (!m.up) return "down";
  if (!r || !r->reachable) return "unreachable";
  return m.draining ? "draining" : "up";
}

const admin_report* report_of(const std::vector<admin_report>& reports, const std::string& node) {
  for (auto& r : reports)
    if (r.node == node) return &r;
  return nullptr;
}

bool better_source(const channel_stats& candidate, const channel_stats& current) {
  if ((candidate.role == "primary") != (current.role == "primary"))
    return candidate.role == "primary";
  return candidate.last_event_id > current.last_event_id;
}

json connection_json(const std::string& node, const connection_stats& c, int64_t now_ms) {
  return {{"node", node},
          {"id", c.id},
          {"user_id", c.user},
          {"remote", c.remote},
          {"route", c.route},
          {"age_s", std::max<int64_t>(0, now_ms - c.opened_ms) / 1000},
          {"queued_frames", c.queued_frames},
          {"queued_bytes", c.queued_bytes},
          {"channels", c.channels}};
}

bool passes(const connection_stats& c, const connection_filter& f) {
  if (!f.user.empty() && c.user != f.user) return false;
  return f.channel.empty() ||
         std::find(c.channels.begin(), c.channels.end(), f.channel) != c.channels.end();
}

}  // namespace

json cluster_json(const std::string& self, const std::vector<api_member>& members,
                  const std::vector<admin_report>& reports) {
  json list = json::array();
  for (auto& m : members) {
    auto* r = report_of(reports, m.node);
    json entry = {{"node", m.node}, {"address", m.address}, {"state", state_of(m, r)},
                  {"self", m.self}, {"uptime_s", nullptr}, {"connections", nullptr},
                  {"channels", nullptr}, {"owned", nullptr}};
    if (r && r->reachable) {
      entry["uptime_s"] = r->uptime_ms / 1000;
      entry["connections"] = r->connections;
      entry["channels"] = r->channels;
      entry["owned"] = r->owned;
    }
    list.push_back(std::move(entry));
  }
  return {{"node", self}, {"members", std::move(list)}};
}

json channels_json(const std::vector<admin_report>& reports) {
  struct merged {
    const channel_stats* source = nullptr;
    uint32_t members = 0;
    json nodes = json::array();
  };
  std::map<std::string, merged> by_name;
  for (auto& r : reports)
    for (auto& c : r.channel_list) {
      auto& m = by_name[c.name];
      m.members += c.members;
      m.nodes.push_back({{"node", r.node}, {"role", c.role}, {"members", c.members}});
      if (!m.source || better_source(c, *m.source)) m.source = &c;
    }
  json list = json::array();
  for (auto& [name, m] : by_name)
    list.push_back({{"channel", name},
                    {"members", m.members},
                    {"owner", m.source->owner},
                    {"replicas", m.source->replicas},
                    {"epoch", m.source->epoch},
                    {"last_event_id", m.source->last_event_id},
                    {"events_per_second", m.source->events_per_second},
                    {"nodes", std::move(m.nodes)}});
  return {{"channels", std::move(list)}, {"unreachable", unreachable_json(reports)}};
}

json users_json(const std::vector<admin_report>& reports) {
  std::map<std::string, json> by_id;
  for (auto& r : reports)
    for (auto& u : r.users) {
      if (u.connections == 0) continue;  // a node that only counts the user's connections
      auto& entry = by_id[u.id];
      if (entry.is_null()) entry = {{"user_id", u.id}, {"connections", 0}, {"nodes", json::array()}};
      entry["connections"] = entry["connections"].get<uint32_t>() + u.connections;
      entry["nodes"].push_back({{"node", r.node}, {"connections", u.connections}});
    }
  json list = json::array();
  for (auto& [id, entry] : by_id) list.push_back(std::move(entry));
  return {{"users", std::move(list)}, {"unreachable", unreachable_json(reports)}};
}

json connections_json(const std::vector<admin_report>& reports, const connection_filter& f,
                      int64_t now_ms) {
  std::vector<std::pair<const std::string*, const connection_stats*>> rows;
  for (auto& r : reports)
    for (auto& c : r.connection_list)
      if (passes(c, f)) rows.emplace_back(&r.node, &c);
  if (f.sort == "queue")
    std::stable_sort(rows.begin(), rows.end(), [](auto& a, auto& b) {
      return a.second->queued_bytes > b.second->queued_bytes;
    });
  if (f.sort == "age")
    std::stable_sort(rows.begin(), rows.end(), [](auto& a, auto& b) {
      return a.second->opened_ms < b.second->opened_ms;
    });
  if (f.limit && rows.size() > *f.limit) rows.resize(*f.limit);
  json list = json::array();
  for (auto& [node, c] : rows) list.push_back(connection_json(*node, *c, now_ms));
  return {{"connections", std::move(list)}, {"unreachable", unreachable_json(reports)}};
}

json rate_limits_json(const std::vector<admin_report>& reports) {
  json list = json::array();
  for (auto& r : reports)
    for (auto& u : r.users)
      if (u.connections > 0)
        list.push_back({{"node", r.node}, {"tokens", u.tokens}, {"rate", u.rate}, {"burst", u.burst}});
  return list;
}

json actors_json(const std::vector<admin_report>& reports, bool with_state) {
  auto counter = [](int64_t n) { return n < 0 ? json() : json(n); };
  json list = json::array();
  for (auto& r : reports)
    for (auto& a : r.actors) {
      json entry = {{"node", r.node},       {"kind", a.kind},
                    {"id", a.id},           {"caf_id", a.caf_id},
                    {"mailbox", counter(a.mailbox)}, {"handled", counter(a.handled)}};
      if (with_state) {
        json state = json::object();
        for (auto& f : a.fields) state[f.key] = f.value;
        entry["state"] = std::move(state);
      }
      list.push_back(std::move(entry));
    }
  return {{"actors", std::move(list)}, {"unreachable", unreachable_json(reports)}};
}

json unreachable_json(const std::vector<admin_report>& reports) {
  json list = json::array();
  for (auto& r : reports)
    if (!r.reachable) list.push_back(r.node);
  return list;
}

}  // namespace sb::admin
