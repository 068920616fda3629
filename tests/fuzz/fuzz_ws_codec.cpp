// The WebSocket frame reader (net/ws_codec) on the bytes a client sends after
// the handshake. Checks beyond "no crash": the reader gives the same messages
// and the same verdict whether the bytes come at once or a few at a time;
// no message exceeds the limit; text messages are valid UTF-8; a close frame
// the server encodes is one frame of at most 125 payload bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "net/ws_codec.hpp"

namespace {

using sb::ws::frame_reader;

struct outcome {
  std::vector<std::pair<sb::ws::opcode, std::string>> messages;
  uint16_t error = 0;

  bool operator==(const outcome& o) const { return messages == o.messages && error == o.error; }
};

void check(bool ok) {
  if (!ok) std::abort();
}

// Reads like the server: feed what arrived, take every message, stop at the
// first error.
outcome read_all(const uint8_t* data, std::size_t size, std::size_t step, std::size_t limit) {
  frame_reader reader(limit);
  outcome out;
  for (std::size_t at = 0; at < size && !out.error; at += step) {
    reader.feed(reinterpret_cast<const char*>(data) + at, std::min(step, size - at));
    for (;;) {
      auto r = reader.next();
      if (r == frame_reader::result::none) break;
      if (r == frame_reader::result::error) {
        out.error = reader.error_code();
        check(out.error >= 1000 && out.error < 1012);
        break;
      }
      bool control = (static_cast<uint8_t>(reader.op()) & 0x8) != 0;
      check(reader.payload().size() <= (control ? 125 : limit));
      if (reader.op() == sb::ws::opcode::text) check(sb::ws::valid_utf8(reader.payload()));
      out.messages.emplace_back(reader.op(), reader.payload());
    }
  }
  return out;
}

void check_close_encoding(const uint8_t* data, std::size_t size) {
  std::string reason(reinterpret_cast<const char*>(data), size);
  auto frame = sb::ws::encode_close(4009, reason);
  check(frame.size() >= 4 && frame.size() <= 2 + 125);
  if (sb::ws::valid_utf8(reason)) check(sb::ws::valid_utf8(frame.substr(4)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  constexpr std::size_t node_limit = 64 * 1024;  // http.max_frame_bytes' default
  auto whole = read_all(data, size, size ? size : 1, node_limit);
  auto pieces = read_all(data, size, 1 + size % 13, node_limit);
  check(whole == pieces);
  read_all(data, size, size ? size : 1, 100);  // a small limit, reached by small inputs
  check_close_encoding(data, size);
  return 0;
}
