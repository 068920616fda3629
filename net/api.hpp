// The server API for application backends (PROTOCOL section 8): publish,
// broadcast, history, presence and disconnect over HTTP with JSON bodies.
// Transport-free: the Beast session hands a parsed request in and writes
// whatever comes back.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "actors/node.hpp"
#include "core/config.hpp"

namespace sb::api {

struct request {
  std::string method;
  std::string path;
  std::map<std::string, std::string> query;
  std::string authorization;  // the Authorization header as sent
  std::optional<std::string> idempotency_key;  // the Idempotency-Key header, when sent
  std::string body;
};

struct response {
  unsigned status = 200;
  std::string body;  // JSON
};

bool is_api_path(const std::string& path);

// Answers one request; `reply` is called exactly once, possibly on another thread.
void handle(const config& cfg, actor_node& node, const request& req,
            std::function<void(response)> reply);

// The same for a caller that another key authenticated (the admin
// interface reuses publish and disconnect): no API key is checked.
void handle_trusted(actor_node& node, const request& req, std::function<void(response)> reply);

// Whether the Authorization header carries one of `keys` (constant time).
bool bearer_matches(const std::string& header, const std::vector<std::string>& keys);

// `{"error": code, "message": message}`
std::string error_body(std::string_view code, std::string_view message);

}  // namespace sb::api
