// WebSocket framing (RFC 6455) for the server side. We frame messages
// ourselves rather than through beast::websocket::stream so that many queued
// messages leave in one gather write, and so a message is framed once and its
// bytes shared by every receiver.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sb::ws {

enum class opcode : uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

// Close codes of RFC 6455 that the codec itself produces.
constexpr uint16_t close_normal = 1000;
constexpr uint16_t close_going_away = 1001;
constexpr uint16_t close_protocol_error = 1002;
constexpr uint16_t close_invalid_payload = 1007;
constexpr uint16_t close_too_big = 1009;

// Size of the header of an unmasked server frame with this payload length.
std::size_t header_size(std::size_t payload_size);

// A complete unmasked server frame (FIN set).
std::string encode_frame(opcode op, std::string_view payload);

// A close frame: the code in network order, then the reason (cut to fit 125 bytes).
std::string encode_close(uint16_t code, std::string_view reason);

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool valid_utf8(std::string_view s);

// Number of Unicode code points in well-formed UTF-8.
std::size_t utf8_length(std::string_view s);

// Reassembles client frames (which must be masked) into whole messages.
// Feed it bytes as they arrive, then call next() until it returns none.
class frame_reader {
 public:
  explicit frame_reader(std::size_t max_message_size);

  enum class result {
    none,     // need more bytes
    message,  // a whole data message or a control frame is ready
    error,    // protocol violation: close the connection with error_code()
  };

  void feed(const char* data, std::size_t size);
  result next();

  // Valid after next() returned message.
  opcode op() const { return op_; }
  const std::string& payload() const { return payload_; }

  // Valid after next() returned error.
  uint16_t error_code() const { return error_code_; }
  const std::string& error_reason() const { return error_reason_; }

  // Bytes buffered but not yet consumed.
  std::size_t buffered() const { return buf_.size() - pos_; }

 private:
  result fail(uint16_t code, std::string reason);

  std::size_t max_message_size_;
  std::string buf_;
  std::size_t pos_ = 0;
  opcode op_ = opcode::text;
  std::string payload_;
  std::string partial_;          // data of a fragmented message so far
  opcode partial_op_ = opcode::text;
  bool in_fragmented_ = false;
  uint16_t error_code_ = 0;
  std::string error_reason_;
};

// The Sec-WebSocket-Accept value for a Sec-WebSocket-Key.
std::string accept_key(std::string_view client_key);

}  // namespace sb::ws
