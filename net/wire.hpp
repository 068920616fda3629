// The wire format (PROTOCOL sections 4, 5 and 10): client frames parsed into
// plain commands, server frames rendered once into shareable bytes. This is
// the only place that reads or writes the clients' JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/event.hpp"
#include "net/outbound.hpp"

namespace sb::wire {

enum class command_type {
  message, typing, read, reaction, remove, ping, presence,
  subscribe, unsubscribe, history, replay_request, refresh,
};

// A client frame that passed validation of its shape and field types.
struct command {
  command_type type = command_type::message;
  std::string id;        // the client's `id`, empty when none
  std::string channel;   // empty: the route's channel is implied
  draft body;            // stored-event frames
  std::size_t content_length = 0;  // `message` length in Unicode characters
  bool is_typing = false;
  std::string timestamp_json;  // ping: the `timestamp` value as sent
  std::vector<std::string> notification_types;
  std::optional<uint64_t> since;    // subscribe, replay_request (last_event_id)
  std::string epoch;                // subscribe
  std::vector<std::pair<std::string, uint64_t>> positions;  // replay_request
  std::optional<uint64_t> before;   // history
  std::size_t limit = 50;           // history, clamped to 500
  std::string token;                // refresh: the new JWT
};

// Why a client frame was refused (PROTOCOL section 4 error codes).
struct refusal {
  std::string code;
  std::string message;
  std::string id;  // the frame's `id` when it could be read
};

std::variant<command, refusal> parse_command(std::string_view text);

// Server frames. Each returns the bytes of one WebSocket text message.
frame_ptr text_frame(std::string json);

struct channel_position {
  std::string channel;
  std::string epoch;
  uint64_t last_event_id = 0;
};

frame_ptr connection_established(const user_ref& user, const std::string& node,
                                 double heartbeat_seconds,
                                 const std::vector<channel_position>& channels);
frame_ptr subscription(bool subscribed, const channel_position& position,
                       const std::string& id);
frame_ptr stored_event(const event& e);
// The stored form of an event is its live JSON; these read it back and
// derive the replayed frame (the same JSON plus "replayed": true).
std::string payload_of(const frame_ptr& live);
std::optional<event> parse_stored(const std::string& channel, std::string_view payload);
frame_ptr replayed(std::string_view payload);
frame_ptr replay_complete(const channel_position& position, bool gap, const std::string& id);
frame_ptr history(const std::string& channel, const std::vector<std::string>& payloads,
                  bool has_more, const std::string& id);

// Appends `,"key":[payload,...]}` to a rendered JSON object missing its final
// '}': stored payloads are JSON already and are spliced in unparsed.
void close_with_array(std::string& object, std::string_view key,
                      const std::vector<std::string>& payloads);

frame_ptr typing(const std::string& channel, const user_ref& user, bool is_typing);
frame_ptr membership(bool joined, const std::string& channel, const user_ref& user,
                     int64_t timestamp_ms);

struct presence_entry {
  user_ref user;
  unsigned connections = 0;
};
// `[{"user_id", "username", "connections"}, ...]`
std::string users_json(const std::vector<presence_entry>& users);
frame_ptr presence(const std::string& channel, const std::vector<presence_entry>& users,
                   const std::string& id);

frame_ptr ack(const std::string& id);
frame_ptr ack(const std::string& id, uint64_t event_id);
frame_ptr error(std::string_view code, std::string_view message, const std::string& id);
frame_ptr pong(const std::string& timestamp_json, const std::string& id);
// The answer to an accepted `refresh`: the connection now lives until `exp`.
frame_ptr refreshed(int64_t exp, const std::string& id);
frame_ptr heartbeat(int64_t timestamp_ms, std::string_view status);

}  // namespace sb::wire
