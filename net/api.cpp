#include "net/api.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include "core/channel_name.hpp"
#include "core/json_depth.hpp"
#include "core/log.hpp"
#include "net/jwt.hpp"
#include "net/router.hpp"
#include "net/wire.hpp"

namespace sb::api {

using json = nlohmann::json;

namespace {

constexpr std::size_t max_type_length = 64;
constexpr std::size_t max_idempotency_key_length = 64;  // as a client frame's `id`

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

response error(unsigned status, std::string_view code, std::string_view message) {
  return {status, error_body(code, message)};
}

unsigned status_of(const std::string& code) {
  if (code == "not_found") return 404;
  if (code == "forbidden") return 403;
  if (code == "rate_limited") return 429;
  return 503;
}

// App event types: free names, except those of frames the protocol gives
// their own shape (a "message" without content would break chat clients).
bool valid_type(const std::string& t) {
  static const std::set<std::string> reserved = {
      "connection_established", "message", "typing", "typing_start", "typing_stop",
      "user_joined", "user_left", "read", "reaction", "delete", "subscribed", "unsubscribed",
      "replay_complete", "history", "presence", "ack", "pong", "ping", "heartbeat", "error",
      "subscribe", "unsubscribe", "replay_request"};
  if (t.empty() || t.size() > max_type_length || reserved.count(t)) return false;
  for (char c : t)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
      return false;
  return true;
}

struct bad_request {
  std::string message;
};

json parse_body(const std::string& body) {
  auto [j, status] = parse_untrusted_json(body);
  if (status == json_status::too_deep)
    throw bad_request{"the body nests JSON deeper than " + std::to_string(max_json_depth) +
                      " levels"};
  if (status == json_status::malformed) throw bad_request{"the body is not valid JSON"};
  if (!j.is_object()) throw bad_request{"the body must be a JSON object"};
  return j;
}

std::string channel_field(const std::string& value) {
  if (!valid_channel_name(value))
    throw bad_request{"channel must be 1-255 characters of [A-Za-z0-9_.@:-]"};
  return value;
}

// The event an API publish stores: its type and data object.
draft event_draft(const json& j) {
  auto type = j.find("type");
  if (type == j.end() || !type->is_string() || !valid_type(type->get<std::string>()))
    throw bad_request{"type must be 1-64 characters of [A-Za-z0-9_.-] and not a protocol frame type"};
  auto data = j.find("data");
  if (data != j.end() && !data->is_object()) throw bad_request{"data must be a JSON object"};
  draft d;
  d.kind = event_kind::app;
  d.app_type = type->get<std::string>();
  d.data_json = data == j.end() ? "{}" : dump(*data);
  return d;
}

// Printable ASCII only: it may come as a header, and it keeps an API key in
// the dedup window apart from every client's (core/dedup_window.hpp).
bool valid_idempotency_key(const std::string& k) {
  if (k.empty() || k.size() > max_idempotency_key_length) return false;
  return std::all_of(k.begin(), k.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

// The publish's idempotency key, from the Idempotency-Key header or the
// body's `idempotency_key` (both: they must agree); empty when none is given.
std::string idempotency_key(const request& req, const json& j) {
  std::optional<std::string> key = req.idempotency_key;
  if (auto f = j.find("idempotency_key"); f != j.end()) {
    if (!f->is_string()) throw bad_request{"idempotency_key must be a string"};
    if (key && *key != f->get<std::string>())
      throw bad_request{"the Idempotency-Key header and idempotency_key differ"};
    key = f->get<std::string>();
  }
  if (key && !valid_idempotency_key(*key))
    throw bad_request{"the idempotency key must be 1-64 printable ASCII characters"};
  return key.value_or("");
}

// The event an API publish stores, with the request's idempotency key. A
// backend has no user id, which keeps its keys apart from the clients'.
draft api_draft(const request& req, const json& j) {
  auto d = event_draft(j);
  d.client_id = idempotency_key(req, j);
  return d;
}

std::optional<uint64_t> number_param(const request& req, const char* name) {
  auto it = req.query.find(name);
  if (it == req.query.end() || it->second.empty()) return std::nullopt;
  auto n = parse_uint(it->second);
  if (!n) throw bad_request{std::string{name} + " must be a non-negative integer"};
  return n;
}

void publish(actor_node& node, const request& req, std::function<void(response)> reply) {
  auto j = parse_body(req.body);
  auto ch = j.find("channel");
  if (ch == j.end() || !ch->is_string()) throw bad_request{"channel is required"};
  auto channel = channel_field(ch->get<std::string>());
  node.publish(channel, api_draft(req, j), [reply](api_published p) {
    if (!p.error.empty()) return reply(error(status_of(p.error), p.error, "publish failed"));
    reply({200, dump({{"channel", p.channel}, {"event_id", p.event_id}, {"epoch", p.epoch}})});
  });
}

void broadcast(actor_node& node, const request& req, std::function<void(response)> reply) {
  auto j = parse_body(req.body);
  auto chans = j.find("channels");
  if (chans == j.end() || !chans->is_array() || chans->empty())
    throw bad_request{"channels must be a non-empty list of channel names"};
  std::vector<std::string> channels;
  for (const auto& c : *chans) {
    if (!c.is_string()) throw bad_request{"channels must be a list of channel names"};
    channels.push_back(channel_field(c.get<std::string>()));
  }
  auto d = api_draft(req, j);
  struct gather {
    std::mutex mu;
    json results;
    std::size_t left;
  };
  auto g = std::make_shared<gather>();
  g->results = json::array();
  g->left = channels.size();
  for (std::size_t i = 0; i < channels.size(); ++i) g->results.push_back(nullptr);
  for (std::size_t i = 0; i < channels.size(); ++i) {
    node.publish(channels[i], d, [g, i, reply](api_published p) {
      std::lock_guard lk(g->mu);
      g->results[i] = p.error.empty()
                          ? json{{"channel", p.channel}, {"event_id", p.event_id}}
                          : json{{"channel", p.channel}, {"error", p.error}};
      if (--g->left == 0) reply({200, dump({{"results", g->results}})});
    });
  }
}

// The `channel` query parameter of a GET, checked.
std::string channel_param(const request& req) {
  auto it = req.query.find("channel");
  if (it == req.query.end()) throw bad_request{"channel is required"};
  return channel_field(it->second);
}

void history(actor_node& node, const request& req, std::function<void(response)> reply) {
  auto channel = channel_param(req);
  auto since = number_param(req, "since");
  auto before = number_param(req, "before");
  if (since && before) throw bad_request{"give since or before, not both"};
  auto limit = number_param(req, "limit").value_or(50);
  if (limit == 0) throw bad_request{"limit must be at least 1"};
  limit = std::min<uint64_t>(limit, 500);
  node.history(channel, since, before, limit, [reply, channel](api_history h) {
    if (!h.error.empty()) return reply(error(status_of(h.error), h.error, "history failed"));
    json head = {{"channel", channel}, {"epoch", h.epoch}, {"has_more", h.has_more}};
    std::string out = dump(head);
    wire::close_with_array(out, "events", h.payloads);
    reply({200, std::move(out)});
  });
}

void presence(actor_node& node, const request& req, std::function<void(response)> reply) {
  auto channel = channel_param(req);
  node.presence(channel, [reply, channel](api_presence p) {
    if (!p.error.empty()) return reply(error(status_of(p.error), p.error, "presence failed"));
    std::string out = dump({{"channel", channel}});
    out.pop_back();
    out += ",\"users\":" + wire::users_json(p.users) + "}";
    reply({200, std::move(out)});
  });
}

// Where a channel lives: its owner and replicas, epoch and newest event id.
void channel_info(actor_node& node, const request& req, std::function<void(response)> reply) {
  auto channel = channel_param(req);
  node.channel(channel, [reply, channel](api_channel c) {
    if (!c.error.empty()) return reply(error(status_of(c.error), c.error, "channel lookup failed"));
    reply({200, dump({{"channel", channel}, {"owner", c.owner}, {"replicas", c.replicas},
                      {"epoch", c.epoch}, {"last_event_id", c.last_event_id}})});
  });
}

void disconnect(actor_node& node, const request& req, std::function<void(response)> reply) {
  auto j = parse_body(req.body);
  auto u = j.find("user_id");
  if (u == j.end() || !(u->is_string() || u->is_number_integer()) ||
      (u->is_string() && u->get<std::string>().empty()))
    throw bad_request{"user_id must be a string or an integer"};
  auto user_id = u->is_string() ? u->get<std::string>() : u->dump();
  auto echoed = *u;
  node.disconnect(user_id, [reply, echoed](uint32_t n) {
    reply({200, dump({{"user_id", echoed}, {"disconnected", n}})});
  });
}

// `cfg` null: the caller is authenticated already.
void serve(const config* cfg, actor_node& node, const request& req,
           std::function<void(response)> reply) {
  using handler = void (*)(actor_node&, const request&, std::function<void(response)>);
  struct route {
    const char* method;
    const char* path;
    handler fn;
  };
  static const route routes[] = {
      {"POST", "/api/publish", publish},   {"POST", "/api/broadcast", broadcast},
      {"GET", "/api/history", history},    {"GET", "/api/presence", presence},
      {"GET", "/api/channel", channel_info}, {"POST", "/api/disconnect", disconnect},
  };
  std::string path = req.path.size() > 5 && req.path.back() == '/'
                         ? req.path.substr(0, req.path.size() - 1)
                         : req.path;
  const route* found = nullptr;
  bool path_known = false;
  for (const auto& r : routes) {
    if (path != r.path) continue;
    path_known = true;
    if (req.method == r.method) found = &r;
  }
  if (!path_known) return reply(error(404, "not_found", "no such API path"));
  if (!found) return reply(error(405, "method_not_allowed", "wrong method for this path"));
  if (cfg && !bearer_matches(req.authorization, cfg->auth.api_keys))
    return reply(error(401, "unauthorized", "a valid API key is required (Authorization: Bearer KEY)"));
  try {
    found->fn(node, req, reply);
  } catch (const bad_request& e) {
    log::info("api_bad_request", {{"path", path}, {"why", e.message}});
    reply(error(400, "bad_request", e.message));
  }
}

}  // namespace

std::string error_body(std::string_view code, std::string_view message) {
  return dump({{"error", code}, {"message", message}});
}

bool is_api_path(const std::string& path) { return path.rfind("/api/", 0) == 0; }

// Constant-time, so a wrong key's timing says nothing about the right one.
bool bearer_matches(const std::string& header, const std::vector<std::string>& keys) {
  auto key = jwt::bearer(header);
  if (key.empty()) return false;
  bool ok = false;
  for (const auto& k : keys)
    if (k.size() == key.size() && CRYPTO_memcmp(k.data(), key.data(), k.size()) == 0) ok = true;
  return ok;
}

void handle(const config& cfg, actor_node& node, const request& req,
            std::function<void(response)> reply) {
  serve(&cfg, node, req, std::move(reply));
}

void handle_trusted(actor_node& node, const request& req, std::function<void(response)> reply) {
  serve(nullptr, node, req, std::move(reply));
}

}  // namespace sb::api
