// What happens to an HTTP request between its bytes and a handler, with no
// socket involved: the parser's limits, where the request goes, the checks of
// a WebSocket upgrade, and the values read from its headers. server.cpp reads
// requests with these, and tests/fuzz/fuzz_http.cpp feeds them raw bytes.
// Beast's synchronous parser only: its async operations stay in server.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "core/config.hpp"
#include "net/api.hpp"
#include "net/router.hpp"

namespace sb {

namespace http = boost::beast::http;

using http_request = http::request<http::string_body>;
using http_request_parser = http::request_parser<http::string_body>;

// Sets the node's limits on a parser for the next request of a connection.
void limit_request(http_request_parser& parser);

// Where a parsed request goes; checked in this order.
enum class destination {
  admin,      // anything on the admin port
  websocket,  // an upgrade request
  health,     // GET /health
  metrics,    // GET /metrics
  preflight,  // OPTIONS to /api/events or the server API (CORS)
  events,     // GET /api/events (SSE)
  api,        // the server API
  other,      // a WebSocket route without upgrade (426), or nothing (404)
};

destination destination_of(const http_request& req, const request_target& target,
                           bool admin_port);

// Why a WebSocket upgrade is refused. upgrade_required: the version is not
// 13, and the answer names the one supported.
struct upgrade_refusal {
  http::status status;
  std::string_view code;
  std::string_view message;
};

// The route of an upgrade request, or why it is refused (before the token).
std::variant<route_match, upgrade_refusal> check_upgrade(const config& cfg,
                                                         const http_request& req,
                                                         const request_target& target);

// The request as the server API and the admin interface take it.
api::request api_request(const http_request& req, const request_target& target);

// Positions from an SSE Last-Event-ID (`user:42=17,role:cadet=5`), for the
// stream's `channels` only; malformed items are skipped.
std::map<std::string, uint64_t> last_event_ids(std::string_view header,
                                               const std::vector<std::string>& channels);

}  // namespace sb
