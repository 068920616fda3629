#include "net/http_request.hpp"

#include <algorithm>

#include <boost/beast/websocket/rfc6455.hpp>

#include "core/channel_name.hpp"

namespace sb {

namespace {

constexpr std::size_t max_header_bytes = 16 * 1024;
constexpr std::size_t max_body_bytes = 1024 * 1024;

std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

bool is_get(const http_request& req, const request_target& target, std::string_view path) {
  return target.path == path && req.method() == http::verb::get;
}

}  // namespace

void limit_request(http_request_parser& parser) {
  parser.header_limit(max_header_bytes);
  parser.body_limit(max_body_bytes);
}

destination destination_of(const http_request& req, const request_target& target,
                           bool admin_port) {
  if (admin_port) return destination::admin;
  if (boost::beast::websocket::is_upgrade(req)) return destination::websocket;
  if (is_get(req, target, "/health")) return destination::health;
  if (is_get(req, target, "/metrics")) return destination::metrics;
  if (req.method() == http::verb::options &&
      (target.path == "/api/events" || api::is_api_path(target.path)))
    return destination::preflight;
  if (is_get(req, target, "/api/events")) return destination::events;
  if (api::is_api_path(target.path)) return destination::api;
  return destination::other;
}

std::variant<route_match, upgrade_refusal> check_upgrade(const config& cfg,
                                                         const http_request& req,
                                                         const request_target& target) {
  auto route = match_route(cfg.routes, target.path);
  if (!route) return upgrade_refusal{http::status::not_found, "not_found", "no such route"};
  for (const auto& [name, value] : route->params)
    if (!valid_channel_name(name + ":" + value))
      return upgrade_refusal{http::status::not_found, "not_found", "invalid channel in path"};
  if (req.method() != http::verb::get)
    return upgrade_refusal{http::status::bad_request, "bad_request", "WebSocket upgrades use GET"};
  auto origin = req.find(http::field::origin);
  const auto& allowed = cfg.http.allowed_origins;
  if (origin != req.end() &&
      std::find(allowed.begin(), allowed.end(), sv(origin->value())) == allowed.end())
    return upgrade_refusal{http::status::forbidden, "forbidden", "origin not allowed"};
  if (req[http::field::sec_websocket_version] != "13")
    return upgrade_refusal{http::status::upgrade_required, "bad_request",
                           "Sec-WebSocket-Version must be 13"};
  if (req[http::field::sec_websocket_key].size() != 24)
    return upgrade_refusal{http::status::bad_request, "bad_request", "bad Sec-WebSocket-Key"};
  return std::move(*route);
}

api::request api_request(const http_request& req, const request_target& target) {
  api::request r;
  r.method = std::string{sv(req.method_string())};
  r.path = target.path;
  r.query = target.query;
  r.authorization = std::string{sv(req[http::field::authorization])};
  if (auto key = req.find("Idempotency-Key"); key != req.end())
    r.idempotency_key = std::string{sv(key->value())};
  r.body = req.body();
  return r;
}

std::map<std::string, uint64_t> last_event_ids(std::string_view header,
                                               const std::vector<std::string>& channels) {
  std::map<std::string, uint64_t> positions;
  while (!header.empty()) {
    auto comma = header.find(',');
    auto item = header.substr(0, comma);
    auto eq = item.rfind('=');
    if (eq != std::string_view::npos) {
      auto channel = item.substr(0, eq);
      auto id = parse_uint(item.substr(eq + 1));
      if (id && std::find(channels.begin(), channels.end(), channel) != channels.end())
        positions[std::string{channel}] = *id;
    }
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
  }
  return positions;
}

}  // namespace sb
