// The admin interface (sbctl): HTTP/JSON on its own listener, every request
// authenticated with the admin token. Transport-free like the server API:
// the Beast session hands a parsed request in and writes what comes back,
// except `GET /admin/tail`, a stream the session opens itself.
//
//   GET  /admin/cluster                       members, state, uptime, counts
//   GET  /admin/channels?prefix=P             channels summed over nodes
//   GET  /admin/channel?name=C&limit=N        one channel: placement, presence, recent events, retention
//   GET  /admin/users                         users and their connection counts
//   GET  /admin/user?id=U                     one user's connections on every node, rate limits
//   GET  /admin/connections?user=&channel=&sort=queue|age&limit=N
//   GET  /admin/actors?node=N&kind=K          a node's actors (default: this node)
//   GET  /admin/actor?id=ID&node=N            one actor's state on every node that has it
//   POST /admin/kick     {"user_id"}          the server API's disconnect (4005, cluster-wide)
//   POST /admin/publish  {"channel", "type", "data"}  the server API's publish
//   POST /admin/drain    {"node"}             that node drains and keeps running
//   GET  /admin/tail?channel=C&since=N        text/event-stream of the channel's events
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "actors/node.hpp"
#include "core/config.hpp"
#include "net/api.hpp"

namespace sb::admin {

bool is_admin_path(const std::string& path);

bool authorized(const config& cfg, const std::string& authorization);

// The 401 answer to a request without the admin token.
api::response unauthorized();

// Answers one request (authenticated by the caller); `reply` is called
// exactly once, possibly on another thread.
void handle(const config& cfg, actor_node& node, const api::request& req,
            std::function<void(api::response)> reply);

// GET /admin/tail's parameters, checked.
struct tail_request {
  std::string channel;
  std::optional<uint64_t> since;
  std::string error;  // the 400 message when not empty
};

tail_request parse_tail(const api::request& req);

}  // namespace sb::admin
