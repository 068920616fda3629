// The domain records that flow between actors: who a user is, and the
// stored events of a channel. No JSON here; net/wire.cpp renders them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sb {

// A user as the token named them: ids are echoed back in the token's own
// JSON type (number or string).
struct user_ref {
  std::string id;
  bool numeric = false;
  std::string name;  // display name, the id when the token has none
  std::string role;
};

// The stored-event frames a client may send (PROTOCOL section 4), and app
// events published through the server API.
enum class event_kind { message, read, reaction, remove, app };

// What a client asks a channel to store; the channel adds id and time.
struct draft {
  event_kind kind = event_kind::message;
  user_ref user;
  std::string client_id;  // the frame's `id`, for idempotent resends
  std::string content;    // message
  std::optional<uint64_t> reply_to;  // message
  uint64_t message_id = 0;           // read, reaction, delete
  std::string emoji;                 // reaction
  bool remove = false;               // reaction: action "remove"
  std::string app_type;              // app: the event's `type`
  std::string data_json;             // app: the published `data` object, as JSON text
};

// A sequenced event of a channel.
struct event {
  std::string channel;
  uint64_t event_id = 0;
  int64_t timestamp_ms = 0;
  draft body;
  bool deleted = false;  // a message whose content was removed by a delete
};

// The `type` a client sees for an event (what notification filters match).
inline std::string_view event_type(const draft& d) {
  switch (d.kind) {
    case event_kind::message: return "message";
    case event_kind::read: return "read";
    case event_kind::reaction: return "reaction";
    case event_kind::remove: return "delete";
    case event_kind::app: return d.app_type;
  }
  return {};
}

}  // namespace sb
