// The client-frame parser (net/wire) on the text of a WebSocket message, and
// what the server renders from its result: the error frame of a refusal, the
// pong of a ping, the stored event of a message, read, reaction or delete.
// Checks beyond "no crash": every rendered frame is a JSON object, and a
// stored event reads back (parse_stored, as replay and history do) with the
// fields the client sent.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "net/wire.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_object(const sb::frame_ptr& f) {
  check(nlohmann::json::parse(f->payload(), nullptr, false).is_object());
}

bool stored(sb::wire::command_type t) {
  using t_ = sb::wire::command_type;
  return t == t_::message || t == t_::read || t == t_::reaction || t == t_::remove;
}

void check_stored_round_trip(const sb::wire::command& c) {
  sb::event e;
  e.channel = "chat:fuzz";
  e.event_id = 7;
  e.timestamp_ms = 1700000000000;
  e.body = c.body;
  e.body.user = {"42", true, "Alice", ""};
  auto live = sb::wire::stored_event(e);
  check_object(live);
  auto back = sb::wire::parse_stored(e.channel, live->payload());
  check(back.has_value());
  check(back->event_id == e.event_id && back->body.kind == c.body.kind);
  check(back->body.content == c.body.content && back->body.reply_to == c.body.reply_to);
  check(back->body.emoji == c.body.emoji && back->body.remove == c.body.remove);
  if (c.body.kind != sb::event_kind::message) check(back->body.message_id == c.body.message_id);
  check_object(sb::wire::replayed(live->payload()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = sb::wire::parse_command(text);
  if (auto* r = std::get_if<sb::wire::refusal>(&parsed)) {
    check_object(sb::wire::error(r->code, r->message, r->id));
    return 0;
  }
  auto& c = std::get<sb::wire::command>(parsed);
  check(c.id.size() <= 4 * 64);
  if (c.type == sb::wire::command_type::ping) check_object(sb::wire::pong(c.timestamp_json, c.id));
  if (stored(c.type)) check_stored_round_trip(c);
  if (!c.id.empty()) check_object(sb::wire::ack(c.id, 1));
  return 0;
}
