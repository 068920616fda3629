// The admin interface's JSON: node reports merged across the cluster,
// filtered and rendered. Pure functions, no I/O, so they are unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/admin_report.hpp"
#include "actors/node.hpp"

namespace sb::admin {

using json = nlohmann::json;

// `{"node", "members": [{"node", "address", "state", "self", "uptime_s",
// "connections", "channels", "owned"}]}`; a member that is up but did not
// answer is "unreachable".
json cluster_json(const std::string& self, const std::vector<api_member>& members,
                  const std::vector<admin_report>& reports);

// One entry per channel, summed over nodes: members, the owner's position and rate.
json channels_json(const std::vector<admin_report>& reports);

// One entry per connected user, summed over nodes.
json users_json(const std::vector<admin_report>& reports);

struct connection_filter {
  std::string user;
  std::string channel;
  std::string sort;  // "queue" (most queued first), "age" (oldest first) or empty
  std::optional<std::size_t> limit;
};

// Every connection on every node that passes the filter.
json connections_json(const std::vector<admin_report>& reports, const connection_filter& f,
                      int64_t now_ms);

// Rate-limit buckets of the user on each node where it is connected.
json rate_limits_json(const std::vector<admin_report>& reports);

json actors_json(const std::vector<admin_report>& reports, bool with_state);

// The nodes that did not answer.
json unreachable_json(const std::vector<admin_report>& reports);

}  // namespace sb::admin
