// Node configuration: parsed and validated once at start-up into plain structs.
// Everything after start-up reads these structs; nothing re-reads the file.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sb {

// Who may subscribe to the channels of a namespace (PROTOCOL section 2).
enum class access_rule {
  members,        // only channels named in the token's `channels` claim
  owner,          // user:{id}: only that user
  role,           // role:{r}: only users whose role is r
  roles,          // users whose role is in namespace_config::roles
  authenticated,  // any user with a valid token
};

struct namespace_config {
  access_rule access = access_rule::members;
  std::vector<std::string> roles;  // for access_rule::roles
  bool publish = true;             // clients may publish (members namespaces only)
  bool presence = true;
  std::size_t max_message_length = 2000;  // Unicode characters
  std::size_t history_size = 10000;
  std::chrono::seconds history_ttl{7 * 24 * 3600};
};

enum class route_kind { channels, health, multiplex };

// A WebSocket route: `path` may hold `{name}` segments; `channels` are
// templates over those names plus `{user_id}` and `{role}`.
struct route_config {
  std::string path;
  route_kind kind = route_kind::channels;
  std::vector<std::string> channels;
  bool notification_filter = false;  // accepts subscribe{notification_types}
};

struct http_config {
  std::string host = "127.0.0.1";
  uint16_t port = 8000;
  unsigned threads = 1;
  std::vector<std::string> allowed_origins;
  std::size_t max_frame_bytes = 64 * 1024;
  std::chrono::milliseconds handshake_timeout{10000};
};

struct limits_config {
  std::chrono::milliseconds heartbeat_interval{25000};
  std::size_t max_connections = 50000;  // WebSocket and SSE on this node; more get HTTP 503
  unsigned max_connections_per_user = 10;
  double rate_limit_per_second = 10;
  double rate_limit_burst = 20;
  // typing, presence, history, replay_request and subscribe: their own bucket per user
  double request_rate_per_second = 20;
  double request_rate_burst = 100;
  std::size_t max_channels_per_connection = 100;  // joined with `subscribe`
  std::size_t max_channels_per_user = 1000;       // the same, over the user's connections here
  std::size_t max_notification_types = 100;       // per connection
  std::size_t outbound_max_frames = 4096;
  std::size_t outbound_max_bytes = 4 * 1024 * 1024;
  std::chrono::milliseconds slow_consumer_grace{5000};
  // history, presence and (un)subscribe requests one connection may have
  // under way; more are refused with rate_limited
  std::size_t max_requests_in_flight = 32;
};

struct auth_config {
  std::string jwt_secret;
  std::vector<std::string> api_keys;
  // Development only: accept a jwt_secret or API keys shorter than
  // min_secret_bytes (configs/dev.json).
  bool allow_weak_secrets = false;
};

// Shortest jwt_secret and API key accepted: 256 bits, as HS256's key should have.
inline constexpr std::size_t min_secret_bytes = 32;

// The cluster port (CAF's middleman). Port 0: a single node, no cluster.
struct cluster_config {
  std::string host = "127.0.0.1";  // never all interfaces unless said so
  uint16_t port = 0;
  std::vector<std::string> seeds;  // "host:port" of other nodes' cluster ports
  std::chrono::milliseconds heartbeat_interval{500};
  std::chrono::milliseconds dead_after{5000};  // silence before a member is down
  unsigned replication = 2;  // copies of each event (owner included) before it is acknowledged
  bool insecure = false;  // plain TCP; otherwise mutual TLS with the files below
  std::string certificate;
  std::string key;
  std::string ca_file;
};

// The admin listener (sbctl): HTTP/JSON on its own port, loopback by default.
struct admin_config {
  std::string host = "127.0.0.1";
  // Resolved at load: http.port + 100 when not given, or any free port when
  // http.port is 0; no value when admin.port is 0 (the listener is off).
  std::optional<uint16_t> port;
  std::string token;  // bearer token sbctl must send; empty: the listener is off

  bool enabled() const { return port.has_value() && !token.empty(); }
};

struct storage_config {
  bool sync = true;  // fsync the write-ahead log on every group commit
};

struct log_config {
  std::string level = "info";   // debug, info, warn, error
  std::string format = "plain"; // plain or json
};

struct config {
  std::string node_id;  // defaults to host:port
  std::string data_dir = "./data";
  unsigned actor_threads = 2;
  // CAF's scheduler: "stealing" (per-worker queues; idle workers poll and
  // sleep in turns) or "sharing" (one queue; idle workers wait on a condition
  // variable). Sharing needed a third less CPU at steady low rates on one
  // core; it is not the default until an abort at shutdown, seen once in
  // testing after the switch, is understood (docs/performance.md).
  std::string actor_scheduler = "stealing";
  // glibc malloc arenas. Its default (8 per core) spreads one connection's
  // session, actors and buffers over several arenas' partly used pages; two
  // cut idle memory by 13% with no measured loss of throughput.
  unsigned malloc_arenas = 2;
  http_config http;
  limits_config limits;
  auth_config auth;
  storage_config storage;
  cluster_config cluster;
  admin_config admin;
  log_config log;
  std::map<std::string, namespace_config> namespaces;
  std::vector<route_config> routes;

  // The options of a channel's namespace; unconfigured namespaces get the
  // members rule with publishing off.
  const namespace_config& namespace_of(const std::string& channel) const;
};

// Parses `text` (JSON, comments allowed) over the built-in defaults, applies
// `overrides` ("dotted.key=value"), then the environment, and validates.
// Throws config_error naming the offending key.
config load_config(const std::string& text,
                   const std::vector<std::string>& overrides,
                   const std::map<std::string, std::string>& env);

struct config_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace sb
