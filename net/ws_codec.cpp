#include "net/ws_codec.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <utility>

namespace sb::ws {

namespace {

constexpr std::size_t max_control_payload = 125;

bool is_control(uint8_t op) { return (op & 0x8) != 0; }

bool known_opcode(uint8_t op) {
  switch (static_cast<opcode>(op)) {
    case opcode::continuation:
    case opcode::text:
    case opcode::binary:
    case opcode::close:
    case opcode::ping:
    case opcode::pong:
      return true;
  }
  return false;
}

// 1004-1006 and 1015 are reserved for reporting local conditions and must
// never appear on the wire (RFC 6455 section 7.4.1).
bool valid_close_code(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
         (code >= 3000 && code <= 4999);
}

void put_big_endian(std::string& out, uint64_t value, int bytes) {
  for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((value >> shift) & 0xFF));
}

uint64_t read_big_endian(const unsigned char* p, std::size_t bytes) {
  uint64_t value = 0;
  for (std::size_t i = 0; i < bytes; ++i) value = (value << 8) | p[i];
  return value;
}

void unmask(char* data, std::size_t size, const unsigned char* key) {
  for (std::size_t i = 0; i < size; ++i)
    data[i] = static_cast<char>(static_cast<unsigned char>(data[i]) ^ key[i & 3]);
}

// Length of the well-formed UTF-8 sequence at the start of p[0..n), or 0.
// The allowed range of the second byte is what rules out overlongs,
// surrogates and code points above U+10FFFF.
std::size_t sequence_length(const unsigned char* p, std::size_t n) {
  unsigned char b = p[0];
  if (b < 0x80) return 1;
  std::size_t len;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) {
    len = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    len = 3;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (n < len || p[1] < lo || p[1] > hi) return 0;
  for (std::size_t i = 2; i < len; ++i)
    if ((p[i] & 0xC0) != 0x80) return 0;
  return len;
}

// Drops the consumed front of `buf`. Moving the unread tail only once the
// consumed part is at least as large keeps the copying linear in the bytes
// received.
void compact(std::string& buf, std::size_t& pos) {
  if (pos == buf.size()) {
    buf.clear();
    pos = 0;
  } else if (pos >= buf.size() - pos) {
    buf.erase(0, pos);
    pos = 0;
  }
}

struct close_problem {
  uint16_t code;
  const char* reason;
};

// What is wrong with a received close payload; code 0 when nothing is.
close_problem check_close_payload(std::string_view payload) {
  if (payload.empty()) return {0, nullptr};
  if (payload.size() == 1) return {close_protocol_error, "close payload of one byte"};
  auto code = static_cast<uint16_t>(
      read_big_endian(reinterpret_cast<const unsigned char*>(payload.data()), 2));
  if (!valid_close_code(code)) return {close_protocol_error, "invalid close code"};
  if (!valid_utf8(payload.substr(2)))
    return {close_invalid_payload, "close reason is not UTF-8"};
  return {0, nullptr};
}

}  // namespace

std::size_t header_size(std::size_t payload_size) {
  if (payload_size < 126) return 2;
  if (payload_size <= 0xFFFF) return 4;
  return 10;
}

std::string encode_frame(opcode op, std::string_view payload) {
  std::string out;
  out.reserve(header_size(payload.size()) + payload.size());
  out.push_back(static_cast<char>(0x80 | static_cast<uint8_t>(op)));
  if (payload.size() < 126) {
    out.push_back(static_cast<char>(payload.size()));
  } else if (payload.size() <= 0xFFFF) {
    out.push_back(static_cast<char>(126));
    put_big_endian(out, payload.size(), 2);
  } else {
    out.push_back(static_cast<char>(127));
    put_big_endian(out, payload.size(), 8);
  }
  out.append(payload);
  return out;
}

std::string encode_close(uint16_t code, std::string_view reason) {
  std::size_t cut = std::min(reason.size(), max_control_payload - 2);
  // Back up to a lead byte so the peer never sees half a character, which it
  // would have to answer with 1007.
  if (cut < reason.size())
    while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xC0) == 0x80) --cut;
  std::string payload;
  put_big_endian(payload, code, 2);
  payload.append(reason.substr(0, cut));
  return encode_frame(opcode::close, payload);
}

bool valid_utf8(std::string_view s) {
  auto p = reinterpret_cast<const unsigned char*>(s.data());
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t len = sequence_length(p + i, s.size() - i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::size_t utf8_length(std::string_view s) {
  std::size_t count = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++count;
  return count;
}

frame_reader::frame_reader(std::size_t max_message_size)
    : max_message_size_(max_message_size) {}

void frame_reader::feed(const char* data, std::size_t size) {
  if (error_code_ != 0) return;
  compact(buf_, pos_);
  buf_.append(data, size);
}

frame_reader::result frame_reader::fail(uint16_t code, std::string reason) {
  error_code_ = code;
  error_reason_ = std::move(reason);
  // Nothing more will be parsed, so the buffers are only memory now.
  std::string().swap(buf_);
  std::string().swap(partial_);
  pos_ = 0;
  return result::error;
}

frame_reader::result frame_reader::next() {
  if (error_code_ != 0) return result::error;
  for (;;) {
    std::size_t avail = buf_.size() - pos_;
    if (avail < 2) return result::none;
    auto p = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
    bool fin = (p[0] & 0x80) != 0;
    uint8_t op = p[0] & 0x0F;
    bool masked = (p[1] & 0x80) != 0;
    uint64_t length = p[1] & 0x7F;

    // Everything that the first two bytes can tell is checked before waiting
    // for the rest, so a bad peer is cut off at once.
    if (p[0] & 0x70) return fail(close_protocol_error, "reserved bits set");
    if (!known_opcode(op)) return fail(close_protocol_error, "unknown opcode");
    if (!masked) return fail(close_protocol_error, "client frame not masked");
    if (is_control(op) && !fin) return fail(close_protocol_error, "fragmented control frame");
    if (is_control(op) && length > max_control_payload)
      return fail(close_protocol_error, "control frame too long");
    if (op == 0 && !in_fragmented_)
      return fail(close_protocol_error, "continuation without a message");
    if (op != 0 && !is_control(op) && in_fragmented_)
      return fail(close_protocol_error, "new message inside a fragmented one");

    std::size_t extra = length == 126 ? 2 : length == 127 ? 8 : 0;
    if (avail < 2 + extra) return result::none;
    if (extra != 0) length = read_big_endian(p + 2, extra);
    if (length >> 63) return fail(close_protocol_error, "frame length out of range");

    // The declared length is enough to refuse, before any payload is buffered.
    std::size_t so_far = in_fragmented_ ? partial_.size() : 0;
    if (!is_control(op) && (length > max_message_size_ || so_far > max_message_size_ - length))
      return fail(close_too_big, "message too big");

    std::size_t header = 2 + extra + 4;
    if (avail < header || avail - header < length) return result::none;
    const unsigned char* key = p + 2 + extra;
    const char* data = buf_.data() + pos_ + header;
    auto size = static_cast<std::size_t>(length);
    pos_ += header + size;

    if (is_control(op)) {
      payload_.assign(data, size);
      unmask(payload_.data(), size, key);
      op_ = static_cast<opcode>(op);
      if (op_ == opcode::close) {
        auto problem = check_close_payload(payload_);
        if (problem.code != 0) return fail(problem.code, problem.reason);
      }
      return result::message;
    }

    if (op != 0) partial_op_ = static_cast<opcode>(op);
    if (op != 0 && fin) {
      payload_.assign(data, size);
      unmask(payload_.data(), size, key);
    } else {
      std::size_t start = partial_.size();
      partial_.append(data, size);
      unmask(partial_.data() + start, size, key);
      in_fragmented_ = !fin;
      if (in_fragmented_) continue;
      payload_ = std::move(partial_);
      partial_.clear();
    }
    op_ = partial_op_;
    if (op_ == opcode::text && !valid_utf8(payload_))
      return fail(close_invalid_payload, "text message is not UTF-8");
    return result::message;
  }
}

std::string accept_key(std::string_view client_key) {
  static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string input;
  input.reserve(client_key.size() + guid.size());
  input.append(client_key).append(guid);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  unsigned char encoded[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  int n = EVP_EncodeBlock(encoded, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<const char*>(encoded), static_cast<std::size_t>(n));
}

}  // namespace sb::ws
