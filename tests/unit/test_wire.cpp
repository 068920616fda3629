#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "net/wire.hpp"

using nlohmann::json;
using sb::wire::command;
using sb::wire::command_type;
using sb::wire::parse_command;
using sb::wire::refusal;

namespace {

refusal refused(const std::string& text) {
  auto r = parse_command(text);
  REQUIRE(std::holds_alternative<refusal>(r));
  return std::get<refusal>(r);
}

command parsed(const std::string& text) {
  auto r = parse_command(text);
  if (auto* e = std::get_if<refusal>(&r)) FAIL("refused: " << e->code << " " << e->message);
  return std::get<command>(r);
}

json payload(const sb::frame_ptr& f) { return json::parse(f->payload()); }

}  // namespace

TEST_CASE("wire: bad JSON and bad shapes") {
  CHECK(refused("not json").code == "bad_json");
  CHECK(refused("[1,2]").code == "bad_json");
  CHECK(refused("42").code == "bad_json");
  CHECK(refused("\"message\"").code == "bad_json");
  CHECK(refused("{}").code == "invalid_message");
  CHECK(refused(R"({"type": 5})").code == "invalid_message");
  CHECK(refused(R"({"type": "dance"})").code == "unknown_type");
  auto r = refused(R"({"type": "dance", "id": "x1"})");
  CHECK(r.id == "x1");
  CHECK(refused(R"({"type": "ping", "id": 5})").code == "invalid_message");
  CHECK(refused(R"({"type": "ping", "id": ")" + std::string(65, 'a') + "\"}").code ==
        "invalid_message");
  CHECK(refused(R"({"type": "message", "message": "hi", "channel": "bad name"})").code ==
        "invalid_message");
}

TEST_CASE("wire: frames nested deeper than 64 levels are bad_json, before parsing") {
  std::string deep = R"({"type": "ping", "timestamp": 1, "x": )" + std::string(64, '[') +
                     std::string(64, ']') + "}";
  auto r = refused(deep);
  CHECK(r.code == "bad_json");
  CHECK(r.message.find("deeper than 64") != std::string::npos);
  std::string at_limit =
      R"({"type": "ping", "x": )" + std::string(63, '[') + std::string(63, ']') + "}";
  CHECK(parsed(at_limit).type == command_type::ping);
  CHECK(refused(std::string(450000, '[') + std::string(450000, ']')).code == "bad_json");
}

TEST_CASE("wire: a ping's timestamp must be a scalar") {
  CHECK(parsed(R"({"type": "ping", "timestamp": "t-1"})").timestamp_json == "\"t-1\"");
  CHECK(parsed(R"({"type": "ping", "timestamp": null})").timestamp_json == "null");
  auto r = refused(R"({"type": "ping", "id": "p", "timestamp": {"a": 1}})");
  CHECK(r.code == "invalid_message");
  CHECK(r.id == "p");
  CHECK(refused(R"({"type": "ping", "timestamp": [1]})").code == "invalid_message");
}

TEST_CASE("wire: message frames") {
  auto c = parsed(R"({"type": "message", "message": "héllo", "id": "m1", "reply_to": 3})");
  CHECK(c.type == command_type::message);
  CHECK(c.id == "m1");
  CHECK(c.body.client_id == "m1");
  CHECK(c.body.content == "héllo");
  CHECK(c.content_length == 5);
  CHECK(*c.body.reply_to == 3);
  CHECK(parsed(R"({"type": "message", "content": "alias"})").body.content == "alias");
  CHECK_FALSE(parsed(R"({"type": "message", "content": "x", "reply_to": null})").body.reply_to);
  CHECK(refused(R"({"type": "message", "message": ""})").code == "invalid_message");
  CHECK(refused(R"({"type": "message"})").code == "invalid_message");
  CHECK(refused(R"({"type": "message", "message": 5})").code == "invalid_message");
  CHECK(refused(R"({"type": "message", "message": "x", "reply_to": "3"})").code ==
        "invalid_message");
  CHECK(refused(R"({"type": "message", "message": "x", "reply_to": -1})").code ==
        "invalid_message");
}

TEST_CASE("wire: typing, read, reaction, delete, ping, subscribe") {
  CHECK(parsed(R"({"type": "typing", "is_typing": false})").is_typing == false);
  CHECK(parsed(R"({"type": "typing_start"})").is_typing == true);
  CHECK(parsed(R"({"type": "typing_stop"})").is_typing == false);
  CHECK(parsed(R"({"type": "typing_stop"})").type == command_type::typing);
  CHECK(refused(R"({"type": "typing", "is_typing": "yes"})").code == "invalid_message");

  CHECK(parsed(R"({"type": "read", "message_id": 4})").body.message_id == 4);
  CHECK(refused(R"({"type": "read", "message_id": "4"})").code == "invalid_message");
  CHECK(refused(R"({"type": "read", "message_id": 0})").code == "invalid_message");
  CHECK(refused(R"({"type": "read"})").code == "invalid_message");

  auto r = parsed(R"({"type": "reaction", "message_id": 4, "emoji": "👍", "action": "remove"})");
  CHECK(r.body.kind == sb::event_kind::reaction);
  CHECK(r.body.remove);
  CHECK_FALSE(parsed(R"({"type": "reaction", "message_id": 4, "emoji": "x"})").body.remove);
  CHECK(refused(R"({"type": "reaction", "message_id": 4, "emoji": "x", "action": "boo"})").code ==
        "invalid_message");
  CHECK(refused(R"({"type": "reaction", "message_id": 4, "emoji": ""})").code ==
        "invalid_message");

  CHECK(parsed(R"({"type": "delete", "message_id": 9})").type == command_type::remove);
  CHECK(parsed(R"({"type": "ping", "timestamp": 12.5})").timestamp_json == "12.5");
  CHECK(parsed(R"({"type": "ping"})").timestamp_json.empty());
  CHECK(parsed(R"({"type": "subscribe", "channel": "chat:1"})").channel == "chat:1");
  CHECK(parsed(R"({"type": "subscribe", "notification_types": ["a", "b"]})")
            .notification_types.size() == 2);
  CHECK(refused(R"({"type": "subscribe"})").code == "invalid_message");
}

TEST_CASE("wire: notification types are at most 64 characters, as the API's event types") {
  auto longest = std::string(64, 'a');
  CHECK(parsed(R"({"type": "subscribe", "notification_types": [")" + longest + R"("]})")
            .notification_types.front() == longest);
  auto refusal = refused(R"({"type": "subscribe", "notification_types": ["ok", ")" + longest +
                         R"(b"], "id": "f"})");
  CHECK(refusal.code == "invalid_message");
  CHECK(refusal.id == "f");
  CHECK(refused(R"({"type": "unsubscribe", "notification_types": [")" + longest + R"(b"]})").code ==
        "invalid_message");
}

TEST_CASE("wire: server frames are framed once and carry the protocol fields") {
  sb::event e;
  e.channel = "chat:1";
  e.event_id = 7;
  e.timestamp_ms = 1768329000123;
  e.body.user = {"42", true, "Alice", ""};
  e.body.content = "hi";
  auto f = sb::wire::stored_event(e);
  CHECK(f->bytes.size() == f->header_size + f->payload().size());
  CHECK(static_cast<unsigned char>(f->bytes[0]) == 0x81);
  auto j = payload(f);
  CHECK(j["type"] == "message");
  CHECK(j["event_id"] == 7);
  CHECK(j["message_id"] == 7);
  CHECK(j["sender_id"] == 42);
  CHECK(j["sender_name"] == "Alice");
  CHECK(j["content"] == "hi");
  CHECK(j["reply_to"].is_null());
  CHECK(j["timestamp"] == "2026-01-13T18:30:00.123Z");

  e.deleted = true;
  j = payload(sb::wire::stored_event(e));
  CHECK(j["deleted"] == true);
  CHECK_FALSE(j.contains("content"));

  j = payload(sb::wire::pong("\"t1\"", "p1"));
  CHECK(j["timestamp"] == "t1");
  CHECK(j["id"] == "p1");
  j = payload(sb::wire::error("bad_json", "nope", ""));
  CHECK_FALSE(j.contains("id"));
  j = payload(sb::wire::ack("a1", 3));
  CHECK(j == json{{"type", "ack"}, {"id", "a1"}, {"event_id", 3}});
  j = payload(sb::wire::typing("chat:1", {"bob", false, "Bob", ""}, true));
  CHECK(j["user_id"] == "bob");
  CHECK(j["username"] == "Bob");
}

TEST_CASE("wire: refresh carries a token, refreshed the new expiry") {
  auto c = parsed(R"({"type": "refresh", "token": "a.b.c", "id": "r1"})");
  CHECK(c.type == command_type::refresh);
  CHECK(c.token == "a.b.c");
  CHECK(c.id == "r1");
  CHECK(refused(R"({"type": "refresh"})").code == "invalid_message");
  CHECK(refused(R"({"type": "refresh", "token": ""})").code == "invalid_message");
  CHECK(refused(R"({"type": "refresh", "token": 5, "id": "r2"})").id == "r2");
  CHECK(payload(sb::wire::refreshed(1767225600, "r1")) ==
        json{{"type", "refreshed"}, {"exp", 1767225600}, {"id", "r1"}});
  CHECK(payload(sb::wire::refreshed(1767225600, "")) ==
        json{{"type", "refreshed"}, {"exp", 1767225600}});
}
