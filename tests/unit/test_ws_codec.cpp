#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "net/ws_codec.hpp"

using namespace sb::ws;

namespace {

constexpr uint8_t fin = 0x80;
constexpr unsigned char test_mask[4] = {0x37, 0xfa, 0x21, 0x3d};

uint8_t bits(opcode op) { return static_cast<uint8_t>(op); }

// The header of a client frame announcing `length` payload bytes, mask included.
std::string client_header(uint8_t first, uint64_t length, bool masked = true) {
  std::string h(1, static_cast<char>(first));
  uint8_t mask_bit = masked ? 0x80 : 0x00;
  if (length < 126) {
    h.push_back(static_cast<char>(mask_bit | length));
  } else if (length <= 0xFFFF) {
    h.push_back(static_cast<char>(mask_bit | 126));
    for (int shift = 8; shift >= 0; shift -= 8) h.push_back(static_cast<char>(length >> shift));
  } else {
    h.push_back(static_cast<char>(mask_bit | 127));
    for (int shift = 56; shift >= 0; shift -= 8) h.push_back(static_cast<char>(length >> shift));
  }
  if (masked) h.append(reinterpret_cast<const char*>(test_mask), 4);
  return h;
}

std::string client_frame(uint8_t first, const std::string& payload, bool masked = true) {
  std::string f = client_header(first, payload.size(), masked);
  for (std::size_t i = 0; i < payload.size(); ++i)
    f.push_back(masked ? static_cast<char>(payload[i] ^ test_mask[i % 4]) : payload[i]);
  return f;
}

std::string close_payload(uint16_t code, const std::string& reason = "") {
  std::string p{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
  return p + reason;
}

void feed(frame_reader& r, const std::string& bytes) { r.feed(bytes.data(), bytes.size()); }

// Feeds `bytes` whole and expects exactly one message.
void expect_message(const std::string& bytes, opcode op, const std::string& payload,
                    std::size_t max = 1 << 20) {
  frame_reader r(max);
  feed(r, bytes);
  REQUIRE(r.next() == frame_reader::result::message);
  CHECK(r.op() == op);
  CHECK(r.payload() == payload);
  CHECK(r.next() == frame_reader::result::none);
  CHECK(r.buffered() == 0);
}

void expect_error(const std::string& bytes, uint16_t code, std::size_t max = 1 << 20) {
  frame_reader r(max);
  feed(r, bytes);
  frame_reader::result res = r.next();
  while (res == frame_reader::result::message) res = r.next();
  REQUIRE(res == frame_reader::result::error);
  CHECK(r.error_code() == code);
  CHECK_FALSE(r.error_reason().empty());
}

}  // namespace

TEST_SUITE("ws_codec") {

TEST_CASE("header_size switches length forms at 126 and 65536") {
  CHECK(header_size(0) == 2);
  CHECK(header_size(125) == 2);
  CHECK(header_size(126) == 4);
  CHECK(header_size(65535) == 4);
  CHECK(header_size(65536) == 10);
}

TEST_CASE("encode_frame writes an unmasked final frame") {
  CHECK(encode_frame(opcode::text, "hello") == std::string("\x81\x05hello", 7));
  CHECK(encode_frame(opcode::ping, "") == std::string("\x89\x00", 2));

  std::string medium(300, 'm');
  std::string f = encode_frame(opcode::binary, medium);
  CHECK(f.size() == 4 + 300);
  CHECK(f.substr(0, 4) == std::string("\x82\x7e\x01\x2c", 4));
  CHECK(f.substr(4) == medium);

  std::string large(65536, 'L');
  f = encode_frame(opcode::text, large);
  CHECK(f.size() == 10 + 65536);
  CHECK(f.substr(0, 10) == std::string("\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10));
  CHECK(f.size() == header_size(large.size()) + large.size());
}

TEST_CASE("encode_close puts the code first and keeps the frame a control frame") {
  std::string f = encode_close(1000, "bye");
  CHECK(f == std::string("\x88\x05\x03\xe8" "bye", 7));

  std::string long_reason(500, 'r');
  f = encode_close(close_going_away, long_reason);
  REQUIRE(f.size() == 2 + 125);
  CHECK(static_cast<uint8_t>(f[1]) == 125);
  CHECK(f.substr(4) == std::string(123, 'r'));
}

TEST_CASE("encode_close never cuts a UTF-8 character in half") {
  // 122 ASCII bytes leave one byte of room: the 2-byte 'é' must go whole.
  std::string f = encode_close(1000, std::string(122, 'a') + "\xc3\xa9" "tail");
  CHECK(f.size() == 2 + 2 + 122);
  CHECK(valid_utf8(f.substr(4)));

  std::string emoji;
  for (int i = 0; i < 40; ++i) emoji += "\xf0\x9f\x98\x80";  // 160 bytes
  f = encode_close(1000, emoji);
  CHECK(f.size() == 2 + 2 + 120);
  CHECK(valid_utf8(f.substr(4)));

  std::string exact(123, 'x');
  CHECK(encode_close(1000, exact).substr(4) == exact);
}

TEST_CASE("valid_utf8 accepts well-formed text") {
  CHECK(valid_utf8(""));
  CHECK(valid_utf8("plain ascii"));
  CHECK(valid_utf8("h\xc3\xa9llo"));
  CHECK(valid_utf8("\xe2\x82\xac"));          // U+20AC
  CHECK(valid_utf8("\xf0\x9d\x84\x9e"));      // U+1D11E
  CHECK(valid_utf8("\xed\x9f\xbf"));          // U+D7FF, just below the surrogates
  CHECK(valid_utf8("\xee\x80\x80"));          // U+E000, just above them
  CHECK(valid_utf8("\xf4\x8f\xbf\xbf"));      // U+10FFFF
  CHECK(valid_utf8(std::string("a\0b", 3)));  // NUL is a character
}

TEST_CASE("valid_utf8 rejects overlongs, surrogates, out-of-range and truncation") {
  CHECK_FALSE(valid_utf8("\xc0\x80"));
  CHECK_FALSE(valid_utf8("\xc1\xbf"));
  CHECK_FALSE(valid_utf8("\xe0\x80\x80"));
  CHECK_FALSE(valid_utf8("\xe0\x9f\xbf"));
  CHECK_FALSE(valid_utf8("\xf0\x80\x80\x80"));
  CHECK_FALSE(valid_utf8("\xf0\x8f\xbf\xbf"));
  CHECK_FALSE(valid_utf8("\xed\xa0\x80"));      // U+D800
  CHECK_FALSE(valid_utf8("\xed\xbf\xbf"));      // U+DFFF
  CHECK_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // U+110000
  CHECK_FALSE(valid_utf8("\xf5\x80\x80\x80"));
  CHECK_FALSE(valid_utf8("\xff"));
  CHECK_FALSE(valid_utf8("\xfe"));
  CHECK_FALSE(valid_utf8("\x80"));
  CHECK_FALSE(valid_utf8("a\xbf"));
  CHECK_FALSE(valid_utf8("\xe2\x82"));
  CHECK_FALSE(valid_utf8("\xf0\x9d\x84"));
  CHECK_FALSE(valid_utf8("\xc3"));
  CHECK_FALSE(valid_utf8("\xe2\x28\xa1"));
  CHECK_FALSE(valid_utf8("\xc3\xa9\xe2\x82"));
}

TEST_CASE("utf8_length counts code points") {
  CHECK(utf8_length("") == 0);
  CHECK(utf8_length("abc") == 3);
  CHECK(utf8_length("h\xc3\xa9llo") == 5);
  CHECK(utf8_length("\xf0\x9d\x84\x9e" "a\xe2\x82\xac") == 3);
}

TEST_CASE("accept_key matches the RFC 6455 example") {
  CHECK(accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST_CASE("a masked text frame is unmasked") {
  std::string frame = client_frame(fin | bits(opcode::text), "Hello");
  CHECK(frame.substr(6) != "Hello");
  expect_message(frame, opcode::text, "Hello");
  expect_message(client_frame(fin | bits(opcode::binary), std::string("\x00\xff\x80", 3)),
                 opcode::binary, std::string("\x00\xff\x80", 3));
  expect_message(client_frame(fin | bits(opcode::text), ""), opcode::text, "");
}

TEST_CASE("an unmasked client frame is a protocol error") {
  expect_error(client_frame(fin | bits(opcode::text), "Hello", false), close_protocol_error);
}

TEST_CASE("control frames come back as themselves") {
  expect_message(client_frame(fin | bits(opcode::ping), "are you there"), opcode::ping,
                 "are you there");
  expect_message(client_frame(fin | bits(opcode::pong), "yes"), opcode::pong, "yes");
  expect_message(client_frame(fin | bits(opcode::ping), std::string(125, 'p')), opcode::ping,
                 std::string(125, 'p'));
}

TEST_CASE("bytes fed one at a time give the same message") {
  std::string frame = client_frame(fin | bits(opcode::text), "split me up");
  frame_reader r(1024);
  for (std::size_t i = 0; i + 1 < frame.size(); ++i) {
    r.feed(&frame[i], 1);
    REQUIRE(r.next() == frame_reader::result::none);
  }
  r.feed(&frame.back(), 1);
  REQUIRE(r.next() == frame_reader::result::message);
  CHECK(r.payload() == "split me up");
  CHECK(r.buffered() == 0);
}

TEST_CASE("several frames in one feed come out one per next()") {
  frame_reader r(1024);
  feed(r, client_frame(fin | bits(opcode::text), "one") +
              client_frame(fin | bits(opcode::ping), "") +
              client_frame(fin | bits(opcode::binary), "three"));
  REQUIRE(r.next() == frame_reader::result::message);
  CHECK(r.payload() == "one");
  REQUIRE(r.next() == frame_reader::result::message);
  CHECK(r.op() == opcode::ping);
  REQUIRE(r.next() == frame_reader::result::message);
  CHECK(r.op() == opcode::binary);
  CHECK(r.payload() == "three");
  CHECK(r.next() == frame_reader::result::none);
}

TEST_CASE("16-bit and 64-bit lengths") {
  std::string medium(300, 'x');
  for (std::size_t i = 0; i < medium.size(); ++i) medium[i] = static_cast<char>('a' + i % 26);
  expect_message(client_frame(fin | bits(opcode::text), medium), opcode::text, medium);

  std::string large(70000, 'y');
  large[69999] = 'z';
  std::string frame = client_frame(fin | bits(opcode::binary), large);
  CHECK(static_cast<uint8_t>(frame[1]) == (0x80 | 127));
  expect_message(frame, opcode::binary, large);
}

TEST_CASE("a fragmented message with a ping in the middle") {
  std::string bytes = client_frame(bits(opcode::text), "Hel") +
                      client_frame(fin | bits(opcode::ping), "p") +
                      client_frame(bits(opcode::continuation), "lo") +
                      client_frame(fin | bits(opcode::continuation), " world");

  SUBCASE("fed whole") {
    frame_reader r(1024);
    feed(r, bytes);
    REQUIRE(r.next() == frame_reader::result::message);
    CHECK(r.op() == opcode::ping);
    CHECK(r.payload() == "p");
    REQUIRE(r.next() == frame_reader::result::message);
    CHECK(r.op() == opcode::text);
    CHECK(r.payload() == "Hello world");
    CHECK(r.next() == frame_reader::result::none);
  }
  SUBCASE("fed one byte at a time") {
    frame_reader r(1024);
    std::vector<std::pair<opcode, std::string>> got;
    for (char c : bytes) {
      r.feed(&c, 1);
      for (auto res = r.next(); res != frame_reader::result::none; res = r.next()) {
        REQUIRE(res == frame_reader::result::message);
        got.emplace_back(r.op(), r.payload());
      }
    }
    REQUIRE(got.size() == 2);
    CHECK(got[0].first == opcode::ping);
    CHECK(got[1].first == opcode::text);
    CHECK(got[1].second == "Hello world");
  }
}

TEST_CASE("fragmented binary keeps its opcode and a UTF-8 character may span fragments") {
  expect_message(client_frame(bits(opcode::binary), "ab") +
                     client_frame(fin | bits(opcode::continuation), "cd"),
                 opcode::binary, "abcd");
  expect_message(client_frame(bits(opcode::text), "\xe2") +
                     client_frame(bits(opcode::continuation), "\x82") +
                     client_frame(fin | bits(opcode::continuation), "\xac"),
                 opcode::text, "\xe2\x82\xac");
}

TEST_CASE("fragmentation errors") {
  expect_error(client_frame(fin | bits(opcode::continuation), "x"), close_protocol_error);
  expect_error(client_frame(bits(opcode::text), "a") + client_frame(fin | bits(opcode::text), "b"),
               close_protocol_error);
  expect_error(client_frame(bits(opcode::text), "a") + client_frame(bits(opcode::binary), "b"),
               close_protocol_error);
  expect_error(client_frame(bits(opcode::ping), "a"), close_protocol_error);
  expect_error(client_frame(bits(opcode::close), ""), close_protocol_error);
}

TEST_CASE("a control frame over 125 bytes is a protocol error") {
  expect_error(client_frame(fin | bits(opcode::ping), std::string(126, 'p')),
               close_protocol_error);
  expect_error(client_header(fin | bits(opcode::pong), 126), close_protocol_error);
}

TEST_CASE("reserved bits are a protocol error") {
  for (uint8_t rsv : {0x40, 0x20, 0x10}) {
    CAPTURE(rsv);
    expect_error(client_frame(fin | rsv | bits(opcode::text), "x"), close_protocol_error);
  }
}

TEST_CASE("unknown opcodes are a protocol error") {
  for (uint8_t op : {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    CAPTURE(op);
    expect_error(client_frame(fin | op, "x"), close_protocol_error);
  }
}

TEST_CASE("a message over the limit is refused from its header alone") {
  SUBCASE("exactly the limit is fine") {
    expect_message(client_frame(fin | bits(opcode::binary), std::string(1000, 'b')),
                   opcode::binary, std::string(1000, 'b'), 1000);
  }
  SUBCASE("7-bit length") {
    expect_error(client_header(fin | bits(opcode::text), 11), close_too_big, 10);
  }
  SUBCASE("16-bit length, before the mask key arrives") {
    std::string h = client_header(fin | bits(opcode::text), 1001).substr(0, 4);
    expect_error(h, close_too_big, 1000);
  }
  SUBCASE("64-bit length of a terabyte") {
    std::string h = client_header(fin | bits(opcode::binary), uint64_t{1} << 40).substr(0, 10);
    expect_error(h, close_too_big, 1000);
  }
  SUBCASE("the sum of fragments counts") {
    frame_reader r(1000);
    feed(r, client_frame(bits(opcode::binary), std::string(600, 'a')));
    CHECK(r.next() == frame_reader::result::none);
    feed(r, client_header(bits(opcode::continuation), 401).substr(0, 4));
    REQUIRE(r.next() == frame_reader::result::error);
    CHECK(r.error_code() == close_too_big);
  }
  SUBCASE("the sum of fragments may reach the limit exactly") {
    expect_message(client_frame(bits(opcode::binary), std::string(600, 'a')) +
                       client_frame(fin | bits(opcode::continuation), std::string(400, 'b')),
                   opcode::binary, std::string(600, 'a') + std::string(400, 'b'), 1000);
  }
}

TEST_CASE("a 64-bit length with the top bit set is a protocol error") {
  std::string h = client_header(fin | bits(opcode::binary), uint64_t{1} << 63);
  expect_error(h, close_protocol_error, SIZE_MAX);
}

TEST_CASE("text that is not UTF-8 is error 1007, binary is not checked") {
  expect_error(client_frame(fin | bits(opcode::text), "bad \xc0\x80"), close_invalid_payload);
  expect_error(client_frame(bits(opcode::text), "ok") +
                   client_frame(fin | bits(opcode::continuation), "\xed\xa0\x80"),
               close_invalid_payload);
  expect_error(client_frame(bits(opcode::text), "\xe2\x82") +
                   client_frame(fin | bits(opcode::continuation), ""),
               close_invalid_payload);
  expect_message(client_frame(fin | bits(opcode::binary), "\xc0\x80"), opcode::binary,
                 "\xc0\x80");
}

TEST_CASE("close frames") {
  SUBCASE("empty payload") {
    expect_message(client_frame(fin | bits(opcode::close), ""), opcode::close, "");
  }
  SUBCASE("code and reason come back raw") {
    std::string p = close_payload(1000, "bye");
    expect_message(client_frame(fin | bits(opcode::close), p), opcode::close, p);
  }
  SUBCASE("a one-byte payload is a protocol error") {
    expect_error(client_frame(fin | bits(opcode::close), "\x03"), close_protocol_error);
  }
  SUBCASE("codes a peer may send") {
    for (uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999,
                          4000, 4999}) {
      CAPTURE(code);
      expect_message(client_frame(fin | bits(opcode::close), close_payload(code)),
                     opcode::close, close_payload(code));
    }
  }
  SUBCASE("codes a peer may not send") {
    for (uint16_t code : {0, 999, 1004, 1005, 1006, 1012, 1015, 1016, 2000, 2999, 5000, 65535}) {
      CAPTURE(code);
      expect_error(client_frame(fin | bits(opcode::close), close_payload(code)),
                   close_protocol_error);
    }
  }
  SUBCASE("a reason that is not UTF-8 is 1007") {
    expect_error(client_frame(fin | bits(opcode::close), close_payload(1000, "\xff")),
                 close_invalid_payload);
  }
  SUBCASE("a close in the middle of a fragmented message") {
    frame_reader r(1024);
    feed(r, client_frame(bits(opcode::text), "half") +
                client_frame(fin | bits(opcode::close), close_payload(1001)));
    REQUIRE(r.next() == frame_reader::result::message);
    CHECK(r.op() == opcode::close);
  }
}

TEST_CASE("an error is final") {
  frame_reader r(1024);
  feed(r, client_frame(fin | bits(opcode::text), "x", false));
  REQUIRE(r.next() == frame_reader::result::error);
  CHECK(r.error_code() == close_protocol_error);
  feed(r, client_frame(fin | bits(opcode::text), "fine"));
  CHECK(r.next() == frame_reader::result::error);
  CHECK(r.next() == frame_reader::result::error);
  CHECK(r.error_code() == close_protocol_error);
}

TEST_CASE("a long stream in odd chunks parses every message as soon as it is whole") {
  std::string stream;
  const int count = 5000;
  for (int i = 0; i < count; ++i)
    stream += client_frame(fin | bits(opcode::text), "message " + std::to_string(i));

  frame_reader r(1024);
  int seen = 0;
  std::size_t most_buffered = 0;
  for (std::size_t at = 0; at < stream.size(); at += 7) {
    std::string chunk = stream.substr(at, 7);
    feed(r, chunk);
    most_buffered = std::max(most_buffered, r.buffered());
    for (auto res = r.next(); res != frame_reader::result::none; res = r.next()) {
      REQUIRE(res == frame_reader::result::message);
      REQUIRE(r.payload() == "message " + std::to_string(seen));
      ++seen;
    }
  }
  CHECK(seen == count);
  CHECK(r.buffered() == 0);
  CHECK(most_buffered < 32);
}

TEST_CASE("random bytes never crash or hang the reader") {
  std::mt19937 rng(6455);
  for (int round = 0; round < 3000; ++round) {
    frame_reader r(4096);
    std::string junk(rng() % 64, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    // Bias towards masked frames so parsing gets past the first checks.
    if (!junk.empty() && rng() % 2) junk[0] = static_cast<char>(junk[0] & 0x8F);
    if (junk.size() > 1) junk[1] = static_cast<char>(junk[1] | 0x80);
    feed(r, junk);
    int steps = 0;
    auto res = r.next();
    while (res == frame_reader::result::message && ++steps < 100) res = r.next();
    CHECK(steps < 100);
    if (res == frame_reader::result::error) {
      bool known = r.error_code() == close_protocol_error ||
                   r.error_code() == close_invalid_payload || r.error_code() == close_too_big;
      CHECK(known);
    }
  }
}

}  // TEST_SUITE
