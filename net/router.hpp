// Request targets and WebSocket routes: which route a path is, and which
// channels it stands for once the token's user and role are known.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/claims.hpp"
#include "core/config.hpp"

namespace sb {

struct request_target {
  std::string path;  // percent-decoded
  std::map<std::string, std::string> query;
};

// Splits "/a/b?x=1&y=%20" into its decoded path and query; a malformed
// percent escape makes it nullopt.
std::optional<request_target> parse_target(std::string_view target);

// A non-negative integer written in decimal digits only (an event id or a
// limit in a query string or header), or nullopt.
std::optional<uint64_t> parse_uint(std::string_view s);

struct route_match {
  const route_config* route = nullptr;
  std::map<std::string, std::string> params;  // from the path's {name} segments
};

// The route for a path; a trailing slash is optional.
std::optional<route_match> match_route(const std::vector<route_config>& routes,
                                       std::string_view path);

// The route's channel names for this user. A template that needs the role is
// skipped when the token has none; an invalid name makes it nullopt.
std::optional<std::vector<std::string>> route_channels(const route_match& m, const claims& c);

}  // namespace sb
