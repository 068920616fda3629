#include "net/wire.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/channel_name.hpp"
#include "core/json_depth.hpp"
#include "core/time.hpp"
#include "net/ws_codec.hpp"

namespace sb::wire {

using json = nlohmann::json;

namespace {

constexpr std::size_t max_id_length = 64;
constexpr std::size_t max_emoji_length = 64;
constexpr std::size_t max_notification_type_length = 64;  // as the server API's event types

// Thrown inside parse_command for a frame of the right JSON but wrong fields.
struct bad_field {
  std::string code;
  std::string message;
};

[[noreturn]] void invalid(std::string message) {
  throw bad_field{"invalid_message", std::move(message)};
}

const json* field(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

uint64_t event_id_field(const json& j, const char* key) {
  auto v = field(j, key);
  if (!v) invalid(std::string{key} + " is required");
  if (!v->is_number_unsigned() || v->get<uint64_t>() == 0)
    invalid(std::string{key} + " must be a positive integer event id");
  return v->get<uint64_t>();
}

std::string string_field(const json& j, const char* key, bool required) {
  auto v = field(j, key);
  if (!v) {
    if (required) invalid(std::string{key} + " is required");
    return {};
  }
  if (!v->is_string()) invalid(std::string{key} + " must be a string");
  return v->get<std::string>();
}

void parse_message(const json& j, command& c) {
  auto text = field(j, "message");
  if (!text) text = field(j, "content");
  if (!text) invalid("message is required");
  if (!text->is_string()) invalid("message must be a string");
  c.body.kind = event_kind::message;
  c.body.content = text->get<std::string>();
  c.content_length = ws::utf8_length(c.body.content);
  if (c.content_length == 0) invalid("message is empty");
  if (auto r = field(j, "reply_to"); r && !r->is_null()) c.body.reply_to = event_id_field(j, "reply_to");
}

void parse_typing(const json& j, command& c, std::optional<bool> fixed) {
  if (fixed) {
    c.is_typing = *fixed;
    return;
  }
  auto v = field(j, "is_typing");
  if (v && !v->is_boolean()) invalid("is_typing must be true or false");
  c.is_typing = v ? v->get<bool>() : true;
}

void parse_reaction(const json& j, command& c) {
  c.body.kind = event_kind::reaction;
  c.body.message_id = event_id_field(j, "message_id");
  c.body.emoji = string_field(j, "emoji", true);
  auto n = ws::utf8_length(c.body.emoji);
  if (n == 0 || n > max_emoji_length) invalid("emoji must be 1 to 64 characters");
  auto action = string_field(j, "action", false);
  if (!action.empty() && action != "add" && action != "remove")
    invalid("action must be add or remove");
  c.body.remove = action == "remove";
}

std::optional<uint64_t> position_field(const json& j, const char* key) {
  auto v = field(j, key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_number_unsigned()) invalid(std::string{key} + " must be an event id (0 or more)");
  return v->get<uint64_t>();
}

void parse_replay_request(const json& j, command& c) {
  c.since = position_field(j, "last_event_id");
  if (auto p = field(j, "positions")) {
    if (!p->is_object()) invalid("positions must be an object of channel: event id");
    for (auto it = p->begin(); it != p->end(); ++it) {
      if (!valid_channel_name(it.key()) || !it.value().is_number_unsigned())
        invalid("positions must be an object of channel: event id");
      c.positions.emplace_back(it.key(), it.value().get<uint64_t>());
    }
  }
  if (!c.since && c.positions.empty()) invalid("last_event_id or positions is required");
}

void parse_history(const json& j, command& c) {
  c.before = position_field(j, "before");
  if (auto l = field(j, "limit"); l && !l->is_null()) {
    if (!l->is_number_unsigned() || l->get<uint64_t>() == 0)
      invalid("limit must be a positive integer");
    c.limit = std::min<uint64_t>(l->get<uint64_t>(), 500);
  }
}

void parse_subscription(const json& j, command& c) {
  c.since = position_field(j, "since");
  if (auto e = field(j, "epoch"); e && !e->is_null()) {
    if (!e->is_string()) invalid("epoch must be a string");
    c.epoch = e->get<std::string>();
  }
  if (auto types = field(j, "notification_types")) {
    if (!types->is_array()) invalid("notification_types must be a list of strings");
    for (const auto& t : *types) {
      if (!t.is_string() || t.get<std::string>().empty())
        invalid("notification_types must be a list of strings");
      if (t.get<std::string>().size() > max_notification_type_length)
        invalid("notification types are at most 64 characters");
      c.notification_types.push_back(t.get<std::string>());
    }
  } else if (c.channel.empty()) {
    invalid("channel or notification_types is required");
  }
}

void parse_body(const std::string& type, const json& j, command& c) {
  using t = command_type;
  if (type == "message") {
    c.type = t::message;
    parse_message(j, c);
  } else if (type == "typing" || type == "typing_start" || type == "typing_stop") {
    c.type = t::typing;
    parse_typing(j, c, type == "typing" ? std::nullopt
                                        : std::optional<bool>{type == "typing_start"});
  } else if (type == "read") {
    c.type = t::read;
    c.body.kind = event_kind::read;
    c.body.message_id = event_id_field(j, "message_id");
  } else if (type == "reaction") {
    c.type = t::reaction;
    parse_reaction(j, c);
  } else if (type == "delete") {
    c.type = t::remove;
    c.body.kind = event_kind::remove;
    c.body.message_id = event_id_field(j, "message_id");
  } else if (type == "ping") {
    c.type = t::ping;
    if (auto ts = field(j, "timestamp")) {
      // Echoed in the pong: a scalar keeps that echo small and flat.
      if (ts->is_structured()) invalid("timestamp must be a scalar, not an array or object");
      c.timestamp_json = ts->dump();
    }
  } else if (type == "presence") {
    c.type = t::presence;
  } else if (type == "subscribe" || type == "unsubscribe") {
    c.type = type == "subscribe" ? t::subscribe : t::unsubscribe;
    parse_subscription(j, c);
  } else if (type == "history") {
    c.type = t::history;
    parse_history(j, c);
  } else if (type == "replay_request") {
    c.type = t::replay_request;
    parse_replay_request(j, c);
  } else if (type == "refresh") {
    c.type = t::refresh;
    c.token = string_field(j, "token", true);
    if (c.token.empty()) invalid("token must not be empty");
  } else {
    throw bad_field{"unknown_type", "unknown frame type '" + type + "'"};
  }
}

json user_id_json(const user_ref& u) {
  if (u.numeric) {
    auto n = json::parse(u.id, nullptr, false);
    if (n.is_number()) return n;
  }
  return u.id;
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::variant<command, refusal> parse_command(std::string_view text) {
  auto [j, status] = parse_untrusted_json(text);
  if (status == json_status::too_deep)
    return refusal{"bad_json",
                   "frame nests JSON deeper than " + std::to_string(max_json_depth) + " levels", {}};
  if (status == json_status::malformed) return refusal{"bad_json", "frame is not valid JSON", {}};
  if (!j.is_object()) return refusal{"bad_json", "frame must be a JSON object", {}};
  command c;
  try {
    if (auto id = field(j, "id")) {
      if (!id->is_string() || ws::utf8_length(id->get<std::string>()) > max_id_length)
        invalid("id must be a string of at most 64 characters");
      c.id = id->get<std::string>();
    }
    auto type = field(j, "type");
    if (!type || !type->is_string()) invalid("type is required and must be a string");
    if (auto ch = field(j, "channel"); ch && !ch->is_null()) {
      if (!ch->is_string() || !valid_channel_name(ch->get<std::string>()))
        invalid("channel must be 1-255 characters of [A-Za-z0-9_.@:-]");
      c.channel = ch->get<std::string>();
    }
    parse_body(type->get<std::string>(), j, c);
    c.body.client_id = c.id;
  } catch (const bad_field& e) {
    return refusal{e.code, e.message, c.id};
  } catch (const json::exception& e) {
    return refusal{"invalid_message", e.what(), c.id};
  }
  return c;
}

frame_ptr text_frame(std::string payload) {
  auto f = std::make_shared<wire_frame>();
  f->header_size = static_cast<uint8_t>(ws::header_size(payload.size()));
  f->bytes = ws::encode_frame(ws::opcode::text, payload);
  return f;
}

frame_ptr connection_established(const user_ref& user, const std::string& node,
                                 double heartbeat_seconds,
                                 const std::vector<channel_position>& channels) {
  json list = json::array();
  for (const auto& c : channels)
    list.push_back({{"channel", c.channel}, {"epoch", c.epoch}, {"last_event_id", c.last_event_id}});
  json j = {{"type", "connection_established"},
            {"user_id", user_id_json(user)},
            {"role", user.role.empty() ? json(nullptr) : json(user.role)},
            {"node", node},
            {"heartbeat_interval", heartbeat_seconds},
            {"channels", std::move(list)}};
  return text_frame(dump(j));
}

frame_ptr subscription(bool subscribed, const channel_position& position,
                       const std::string& id) {
  json j = {{"type", subscribed ? "subscribed" : "unsubscribed"},
            {"channel", position.channel},
            {"epoch", position.epoch},
            {"last_event_id", position.last_event_id}};
  if (!id.empty()) j["id"] = id;
  return text_frame(dump(j));
}

frame_ptr stored_event(const event& e) {
  const draft& b = e.body;
  json j = {{"channel", e.channel},
            {"event_id", e.event_id},
            {"timestamp", iso8601_ms(e.timestamp_ms)}};
  switch (b.kind) {
    case event_kind::message:
      j["type"] = "message";
      j["message_id"] = e.event_id;
      j["sender_id"] = user_id_json(b.user);
      j["sender_name"] = b.user.name;
      j["reply_to"] = b.reply_to ? json(*b.reply_to) : json(nullptr);
      if (e.deleted) j["deleted"] = true;
      else j["content"] = b.content;
      break;
    case event_kind::read:
      j["type"] = "read";
      j["user_id"] = user_id_json(b.user);
      j["message_id"] = b.message_id;
      break;
    case event_kind::reaction:
      j["type"] = "reaction";
      j["user_id"] = user_id_json(b.user);
      j["message_id"] = b.message_id;
      j["emoji"] = b.emoji;
      j["action"] = b.remove ? "remove" : "add";
      break;
    case event_kind::remove:
      j["type"] = "delete";
      j["user_id"] = user_id_json(b.user);
      j["message_id"] = b.message_id;
      break;
    case event_kind::app:
      j["type"] = b.app_type;
      j["data"] = json::parse(b.data_json, nullptr, false);
      break;
  }
  return text_frame(dump(j));
}

std::string payload_of(const frame_ptr& live) { return std::string{live->payload()}; }

std::optional<event> parse_stored(const std::string& channel, std::string_view payload) {
  json j = json::parse(payload, nullptr, false);
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string() ||
      !j.value("event_id", json()).is_number_unsigned())
    return std::nullopt;
  auto user_of = [&](const char* key) {
    user_ref u;
    const auto& v = j.value(key, json());
    u.numeric = v.is_number();
    u.id = v.is_string() ? v.get<std::string>() : v.dump();
    return u;
  };
  event e;
  e.channel = channel;
  e.event_id = j["event_id"].get<uint64_t>();
  auto type = j["type"].get<std::string>();
  auto& b = e.body;
  b.message_id = j.value("message_id", json(0)).is_number_unsigned() ? j["message_id"].get<uint64_t>() : 0;
  if (type == "message") {
    b.kind = event_kind::message;
    b.user = user_of("sender_id");
    b.user.name = j.value("sender_name", b.user.id);
    b.content = j.value("content", "");
    if (j.value("reply_to", json()).is_number_unsigned()) b.reply_to = j["reply_to"].get<uint64_t>();
    e.deleted = j.value("deleted", false);
  } else if (type == "read" || type == "reaction" || type == "delete") {
    b.kind = type == "read" ? event_kind::read
             : type == "reaction" ? event_kind::reaction : event_kind::remove;
    b.user = user_of("user_id");
    b.emoji = j.value("emoji", "");
    b.remove = j.value("action", "") == "remove";
  } else {
    b.kind = event_kind::app;
    b.app_type = type;
    b.data_json = j.value("data", json::object()).dump();
  }
  return e;
}

frame_ptr replayed(std::string_view payload) {
  if (payload.size() < 2 || payload.front() != '{') return text_frame(std::string{payload});
  std::string out = "{\"replayed\":true,";
  out.append(payload.substr(1));
  return text_frame(std::move(out));
}

frame_ptr replay_complete(const channel_position& position, bool gap, const std::string& id) {
  json j = {{"type", "replay_complete"},
            {"channel", position.channel},
            {"epoch", position.epoch},
            {"last_event_id", position.last_event_id},
            {"gap", gap}};
  if (!id.empty()) j["id"] = id;
  return text_frame(dump(j));
}

frame_ptr history(const std::string& channel, const std::vector<std::string>& payloads,
                  bool has_more, const std::string& id) {
  json head = {{"type", "history"}, {"channel", channel}, {"has_more", has_more}};
  if (!id.empty()) head["id"] = id;
  std::string out = dump(head);
  close_with_array(out, "events", payloads);
  return text_frame(std::move(out));
}

void close_with_array(std::string& object, std::string_view key,
                      const std::vector<std::string>& payloads) {
  object.pop_back();
  object += ",\"";
  object += key;
  object += "\":[";
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    if (i) object += ',';
    object += payloads[i];
  }
  object += "]}";
}

frame_ptr typing(const std::string& channel, const user_ref& user, bool is_typing) {
  json j = {{"type", "typing"},
            {"channel", channel},
            {"user_id", user_id_json(user)},
            {"username", user.name},
            {"is_typing", is_typing}};
  return text_frame(dump(j));
}

frame_ptr membership(bool joined, const std::string& channel, const user_ref& user,
                     int64_t timestamp_ms) {
  json j = {{"type", joined ? "user_joined" : "user_left"},
            {"channel", channel},
            {"user_id", user_id_json(user)},
            {"username", user.name},
            {"timestamp", iso8601_ms(timestamp_ms)}};
  return text_frame(dump(j));
}

namespace {

json users_array(const std::vector<presence_entry>& users) {
  json list = json::array();
  for (const auto& u : users)
    list.push_back({{"user_id", user_id_json(u.user)},
                    {"username", u.user.name},
                    {"connections", u.connections}});
  return list;
}

}  // namespace

std::string users_json(const std::vector<presence_entry>& users) {
  return dump(users_array(users));
}

frame_ptr presence(const std::string& channel, const std::vector<presence_entry>& users,
                   const std::string& id) {
  json j = {{"type", "presence"}, {"channel", channel}, {"users", users_array(users)}};
  if (!id.empty()) j["id"] = id;
  return text_frame(dump(j));
}

frame_ptr ack(const std::string& id) {
  return text_frame(dump({{"type", "ack"}, {"id", id}}));
}

frame_ptr ack(const std::string& id, uint64_t event_id) {
  return text_frame(dump({{"type", "ack"}, {"id", id}, {"event_id", event_id}}));
}

frame_ptr error(std::string_view code, std::string_view message, const std::string& id) {
  json j = {{"type", "error"}, {"code", code}, {"message", message}};
  if (!id.empty()) j["id"] = id;
  return text_frame(dump(j));
}

frame_ptr pong(const std::string& timestamp_json, const std::string& id) {
  json j = {{"type", "pong"}};
  if (!timestamp_json.empty()) j["timestamp"] = json::parse(timestamp_json, nullptr, false);
  if (!id.empty()) j["id"] = id;
  return text_frame(dump(j));
}

frame_ptr refreshed(int64_t exp, const std::string& id) {
  json j = {{"type", "refreshed"}, {"exp", exp}};
  if (!id.empty()) j["id"] = id;
  return text_frame(dump(j));
}

frame_ptr heartbeat(int64_t timestamp_ms, std::string_view status) {
  return text_frame(
      dump({{"type", "heartbeat"}, {"timestamp", iso8601_ms(timestamp_ms)}, {"status", status}}));
}

}  // namespace sb::wire
