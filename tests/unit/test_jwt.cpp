#include <doctest/doctest.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <random>
#include <string>

#include "net/jwt.hpp"

using namespace sb::jwt;

namespace {

constexpr int64_t now = 1700000000;
const std::string secret = "test-secret";

// A token with any header, signed the way an issuer would, independent of sign().
std::string token_with_header(const std::string& header_json, const std::string& payload_json,
                              const std::string& key = secret) {
  std::string input = base64url_encode(header_json) + "." + base64url_encode(payload_json);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &size);
  return input + "." + base64url_encode(std::string(reinterpret_cast<char*>(mac), size));
}

std::string exp_in(int64_t seconds) { return std::to_string(now + seconds); }

refusal refusal_of(const verdict& v) {
  REQUIRE_FALSE(v.ok());
  return std::get<refusal>(v.result);
}

void expect_invalid(const std::string& token, const std::string& key = secret) {
  verdict v = verify(token, key, now);
  CHECK(refusal_of(v) == refusal::invalid);
  CHECK_FALSE(v.reason.empty());
}

void expect_invalid_payload(const std::string& payload_json) {
  CAPTURE(payload_json);
  expect_invalid(sign(payload_json, secret));
}

sb::claims accepted(const std::string& payload_json) {
  CAPTURE(payload_json);
  verdict v = verify(sign(payload_json, secret), secret, now);
  CAPTURE(v.reason);
  REQUIRE(v.ok());
  return std::get<sb::claims>(v.result);
}

}  // namespace

TEST_SUITE("jwt") {

TEST_CASE("base64url_encode matches RFC 4648 vectors in the URL alphabet, unpadded") {
  CHECK(base64url_encode("") == "");
  CHECK(base64url_encode("f") == "Zg");
  CHECK(base64url_encode("fo") == "Zm8");
  CHECK(base64url_encode("foo") == "Zm9v");
  CHECK(base64url_encode("foob") == "Zm9vYg");
  CHECK(base64url_encode("fooba") == "Zm9vYmE");
  CHECK(base64url_encode("foobar") == "Zm9vYmFy");
  CHECK(base64url_encode("\xfb\xff") == "-_8");
}

TEST_CASE("base64url_decode takes canonical unpadded input") {
  std::string out;
  CHECK(base64url_decode("Zm9vYg", out));
  CHECK(out == "foob");
  CHECK(base64url_decode("Zm9vYmE", out));
  CHECK(out == "fooba");
  CHECK(base64url_decode("-_8", out));
  CHECK(out == "\xfb\xff");
  CHECK(base64url_decode("", out));
  CHECK(out.empty());
}

TEST_CASE("base64url_decode rejects padding") {
  std::string out;
  CHECK_FALSE(base64url_decode("Zm9vYg==", out));
  CHECK_FALSE(base64url_decode("Zm9vYmE=", out));
  CHECK_FALSE(base64url_decode("Zg==", out));
}

TEST_CASE("base64url_decode rejects non-zero unused bits in the last character") {
  std::string out;
  // "Zg" is "f": the last character's 4 unused bits are 0; "Zh" to "Zv" set them.
  CHECK(base64url_decode("Zg", out));
  for (char c : std::string{"hijklmnopqrstuv"})
    CHECK_FALSE(base64url_decode(std::string{"Z"} + c, out));
  // "Zm8" is "fo": 2 unused bits; "Zm9", "Zm-" and "Zm_" set them.
  CHECK(base64url_decode("Zm8", out));
  CHECK_FALSE(base64url_decode("Zm9", out));
  CHECK_FALSE(base64url_decode("Zm-", out));
  CHECK_FALSE(base64url_decode("Zm_", out));
}

TEST_CASE("base64url_decode rejects impossible lengths, bad padding and foreign characters") {
  std::string out;
  CHECK_FALSE(base64url_decode("Z", out));
  CHECK_FALSE(base64url_decode("Zm9vY", out));
  CHECK_FALSE(base64url_decode("Zm9v!", out));
  CHECK_FALSE(base64url_decode("+/8=", out));
  CHECK_FALSE(base64url_decode("Zm 9v", out));
  CHECK_FALSE(base64url_decode("Zg=", out));
  CHECK_FALSE(base64url_decode("Z===", out));
  CHECK_FALSE(base64url_decode("====", out));
  CHECK_FALSE(base64url_decode("=", out));
  CHECK_FALSE(base64url_decode("Zg==Zg==", out));
  CHECK_FALSE(base64url_decode(std::string("Zm\0v", 4), out));
}

TEST_CASE("base64url round-trips every byte value") {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (std::size_t n = 0; n <= all.size(); n += 37) {
    std::string out;
    REQUIRE(base64url_decode(base64url_encode(all.substr(0, n)), out));
    CHECK(out == all.substr(0, n));
  }
}

TEST_CASE("sign matches the well-known jwt.io example byte for byte") {
  std::string token = sign(R"({"sub":"1234567890","name":"John Doe","iat":1516239022})",
                           "your-256-bit-secret");
  CHECK(token ==
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c");
  // Its signature is good; what it lacks is an exp.
  verdict v = verify(token, "your-256-bit-secret", now);
  CHECK(refusal_of(v) == refusal::invalid);
  CHECK(v.reason == "token has no exp");
}

TEST_CASE("a SimpleJWT-style access token made elsewhere is accepted") {
  const std::string token =
      "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9."
      "eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsImp0aSI6"
      "ImFiYyIsInVzZXJfaWQiOjQyfQ."
      "VhARLA6Ug8Tn-_c4Xdw9c1vX9vW8iJ1hrEnzAk6ppEg";
  verdict v = verify(token, "django-insecure-secret", now);
  REQUIRE(v.ok());
  const auto& c = std::get<sb::claims>(v.result);
  CHECK(c.user_id == "42");
  CHECK(c.user_id_numeric);
  CHECK(c.exp == 2000000000);
  CHECK(refusal_of(verify(token, "another-secret", now)) == refusal::invalid);
}

TEST_CASE("sign then verify returns every claim") {
  sb::claims c = accepted(R"({"user_id":42,"exp":)" + exp_in(60) +
                          R"(,"name":"Ann","role":"admin","channels":["chat:1","session:*"]})");
  CHECK(c.user_id == "42");
  CHECK(c.user_id_numeric);
  CHECK(c.name == "Ann");
  CHECK(c.role == "admin");
  REQUIRE(c.channels.size() == 2);
  CHECK(c.channels[0] == "chat:1");
  CHECK(c.channels[1] == "session:*");
  CHECK(c.exp == now + 60);
}

TEST_CASE("optional claims may be absent") {
  sb::claims c = accepted(R"({"user_id":"u1","exp":)" + exp_in(1) + "}");
  CHECK(c.name.empty());
  CHECK(c.role.empty());
  CHECK(c.channels.empty());
  c = accepted(R"({"user_id":"u1","name":null,"role":null,"channels":null,"exp":)" + exp_in(1) +
               "}");
  CHECK(c.name.empty());
  CHECK(c.channels.empty());
}

TEST_CASE("user id: string or integer, user_id before sub") {
  sb::claims c = accepted(R"({"user_id":"abc-1","exp":)" + exp_in(60) + "}");
  CHECK(c.user_id == "abc-1");
  CHECK_FALSE(c.user_id_numeric);

  c = accepted(R"({"sub":"s-7","exp":)" + exp_in(60) + "}");
  CHECK(c.user_id == "s-7");
  CHECK_FALSE(c.user_id_numeric);

  c = accepted(R"({"sub":7,"exp":)" + exp_in(60) + "}");
  CHECK(c.user_id == "7");
  CHECK(c.user_id_numeric);

  c = accepted(R"({"user_id":"mine","sub":"theirs","exp":)" + exp_in(60) + "}");
  CHECK(c.user_id == "mine");

  c = accepted(R"({"user_id":null,"sub":"fallback","exp":)" + exp_in(60) + "}");
  CHECK(c.user_id == "fallback");

  c = accepted(R"({"user_id":-5,"exp":)" + exp_in(60) + "}");
  CHECK(c.user_id == "-5");

  c = accepted(R"({"user_id":18446744073709551615,"exp":)" + exp_in(60) + "}");
  CHECK(c.user_id == "18446744073709551615");
  CHECK(c.user_id_numeric);
}

TEST_CASE("a valid token without a usable user id is refusal 4002") {
  for (std::string id : {"", R"("user_id":null,)", R"("user_id":"",)", R"("sub":"",)",
                         R"("user_id":true,)", R"("user_id":4.5,)", R"("user_id":[1],)",
                         R"("user_id":{"id":1},)", R"("sub":false,)"}) {
    std::string payload = "{" + id + R"("exp":)" + exp_in(60) + "}";
    CAPTURE(payload);
    verdict v = verify(sign(payload, secret), secret, now);
    CHECK(refusal_of(v) == refusal::no_user_id);
    CHECK(static_cast<int>(refusal_of(v)) == 4002);
  }
}

TEST_CASE("the empty token is refusal 4001") {
  verdict v = verify("", secret, now);
  CHECK(refusal_of(v) == refusal::missing);
  CHECK(static_cast<int>(refusal_of(v)) == 4001);
  CHECK(v.reason == "no token");
}

TEST_CASE("bad signatures are refusal 4003") {
  std::string payload = R"({"user_id":1,"exp":)" + exp_in(60) + "}";
  std::string token = sign(payload, secret);
  CHECK(static_cast<int>(refusal_of(verify(token, "other-secret", now))) == 4003);
  expect_invalid(sign(payload, "other-secret"));

  std::string cut = token.substr(0, token.size() - 2);
  expect_invalid(cut);
  std::string flipped = token;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  expect_invalid(flipped);
  expect_invalid(token.substr(0, token.rfind('.') + 1));
  expect_invalid(token + token.substr(token.rfind('.') + 1));
}

TEST_CASE("a token with padding or non-canonical base64url in any part is refusal 4003") {
  // Both encode to a length that is not a multiple of 4, so padding would apply.
  const std::string header_json = R"({"alg":"HS256","kid":"k1"})";
  const std::string payload_json = R"({"user_id":12,"exp":)" + exp_in(60) + "}";
  std::string header = base64url_encode(header_json);
  std::string payload = base64url_encode(payload_json);
  REQUIRE(header.size() % 4 != 0);
  REQUIRE(payload.size() % 4 != 0);
  auto signed_as = [](const std::string& h, const std::string& p) {
    std::string input = h + "." + p;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &size);
    return input + "." + base64url_encode(std::string(reinterpret_cast<char*>(mac), size));
  };
  auto padded = [](std::string s) {
    while (s.size() % 4) s += '=';
    return s;
  };
  std::string good = signed_as(header, payload);
  REQUIRE(verify(good, secret, now).ok());
  expect_invalid(signed_as(padded(header), payload));
  expect_invalid(signed_as(header, padded(payload)));
  expect_invalid(good + "=");  // a 32-byte signature is 43 characters, padded 44
  // The signature's last character carries 2 unused bits; +1 sets the lowest
  // (canonical last characters are multiples of 4 and never end a range).
  std::string flipped = good;
  flipped.back() = static_cast<char>(flipped.back() + 1);
  expect_invalid(flipped);
}

TEST_CASE("a tampered payload is refused even though it is well-formed") {
  std::string token = sign(R"({"user_id":1,"role":"student","exp":)" + exp_in(60) + "}", secret);
  std::string forged_payload =
      base64url_encode(R"({"user_id":1,"role":"admin","exp":)" + exp_in(60) + "}");
  auto first = token.find('.');
  auto second = token.find('.', first + 1);
  std::string forged = token.substr(0, first + 1) + forged_payload + token.substr(second);
  verdict v = verify(forged, secret, now);
  CHECK(refusal_of(v) == refusal::invalid);
  CHECK(v.reason == "bad signature");
}

TEST_CASE("only HS256 is accepted") {
  std::string payload = R"({"user_id":1,"exp":)" + exp_in(60) + "}";
  std::string unsigned_token =
      base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." + base64url_encode(payload) + ".";
  expect_invalid(unsigned_token);
  expect_invalid(token_with_header(R"({"alg":"none"})", payload));
  expect_invalid(token_with_header(R"({"alg":"HS512"})", payload));
  expect_invalid(token_with_header(R"({"alg":"hs256"})", payload));
  expect_invalid(token_with_header(R"({"alg":256})", payload));
  expect_invalid(token_with_header(R"({"typ":"JWT"})", payload));
  expect_invalid(token_with_header(R"({"alg":"HS256","crit":["b64"]})", payload));
  CHECK(verify(token_with_header(R"({"alg":"HS256"})", payload), secret, now).ok());
}

TEST_CASE("header and payload must be JSON objects") {
  std::string payload = R"({"user_id":1,"exp":)" + exp_in(60) + "}";
  expect_invalid(token_with_header(R"(["alg","HS256"])", payload));
  expect_invalid(token_with_header("not json", payload));
  expect_invalid(token_with_header("", payload));
  expect_invalid_payload("[1,2]");
  expect_invalid_payload("\"user_id\"");
  expect_invalid_payload("{\"user_id\":1,");
  expect_invalid_payload("");
  expect_invalid_payload("{\"user_id\":\"\xff\",\"exp\":" + exp_in(60) + "}");
}

TEST_CASE("exp is required, numeric and in the future") {
  verdict v = verify(sign(R"({"user_id":1})", secret), secret, now);
  CHECK(refusal_of(v) == refusal::invalid);
  CHECK(v.reason == "token has no exp");

  v = verify(sign(R"({"user_id":1,"exp":)" + exp_in(-1) + "}", secret), secret, now);
  CHECK(refusal_of(v) == refusal::invalid);
  CHECK(v.reason == "token expired");

  expect_invalid_payload(R"({"user_id":1,"exp":)" + exp_in(0) + "}");
  expect_invalid_payload(R"({"user_id":1,"exp":null})");
  expect_invalid_payload(R"({"user_id":1,"exp":")" + exp_in(60) + "\"}");
  expect_invalid_payload(R"({"user_id":1,"exp":true})");
  expect_invalid_payload(R"({"user_id":1,"exp":)" + exp_in(0) + ".0}");
  expect_invalid_payload(R"({"user_id":1,"exp":)" + exp_in(-1) + ".5}");

  CHECK(accepted(R"({"user_id":1,"exp":)" + exp_in(1) + "}").exp == now + 1);
  CHECK(accepted(R"({"user_id":1,"exp":)" + exp_in(0) + ".5}").exp == now);
  CHECK(accepted(R"({"user_id":1,"exp":1e300})").exp == INT64_MAX);
  CHECK(accepted(R"({"user_id":1,"exp":18446744073709551615})").exp == INT64_MAX);
}

TEST_CASE("nbf, when present, must be numeric and not in the future") {
  accepted(R"({"user_id":1,"nbf":)" + exp_in(0) + R"(,"exp":)" + exp_in(60) + "}");
  accepted(R"({"user_id":1,"nbf":)" + exp_in(-100) + R"(,"exp":)" + exp_in(60) + "}");
  verdict v = verify(
      sign(R"({"user_id":1,"nbf":)" + exp_in(30) + R"(,"exp":)" + exp_in(60) + "}", secret),
      secret, now);
  CHECK(refusal_of(v) == refusal::invalid);
  CHECK(v.reason == "token not yet valid");
  expect_invalid_payload(R"({"user_id":1,"nbf":)" + exp_in(0) + R"(.5,"exp":)" + exp_in(60) +
                         "}");
  expect_invalid_payload(R"({"user_id":1,"nbf":"0","exp":)" + exp_in(60) + "}");
}

TEST_CASE("token_type, when present, must be access") {
  accepted(R"({"user_id":1,"token_type":"access","exp":)" + exp_in(60) + "}");
  verdict v = verify(
      sign(R"({"user_id":1,"token_type":"refresh","exp":)" + exp_in(60) + "}", secret), secret,
      now);
  CHECK(refusal_of(v) == refusal::invalid);
  CHECK(v.reason == "token_type is not access");
  expect_invalid_payload(R"({"user_id":1,"token_type":"Access","exp":)" + exp_in(60) + "}");
  expect_invalid_payload(R"({"user_id":1,"token_type":1,"exp":)" + exp_in(60) + "}");
}

TEST_CASE("validity is checked before the user id") {
  verdict v = verify(sign(R"({"exp":)" + exp_in(-1) + "}", secret), secret, now);
  CHECK(refusal_of(v) == refusal::invalid);
  v = verify(sign(R"({"token_type":"refresh","exp":)" + exp_in(60) + "}", secret), secret, now);
  CHECK(refusal_of(v) == refusal::invalid);
}

TEST_CASE("malformed optional claims are refused") {
  std::string tail = R"("user_id":1,"exp":)" + exp_in(60) + "}";
  expect_invalid_payload(R"({"name":7,)" + tail);
  expect_invalid_payload(R"({"role":["admin"],)" + tail);
  expect_invalid_payload(R"({"role":true,)" + tail);
  expect_invalid_payload(R"({"channels":"chat:1",)" + tail);
  expect_invalid_payload(R"({"channels":{"chat:1":true},)" + tail);
  expect_invalid_payload(R"({"channels":["chat:1",2],)" + tail);
  expect_invalid_payload(R"({"channels":[null],)" + tail);
}

TEST_CASE("structural garbage is refused without crashing") {
  std::string good = sign(R"({"user_id":1,"exp":)" + exp_in(60) + "}", secret);
  for (std::string token : {".", "..", "...", "a.b.c", "a.b", "abc", "a..c", "..c",
                            "eyJhbGciOiJIUzI1NiJ9..", "\xff\xfe.\x00.x", "=.=.=", "====.==.=="}) {
    CAPTURE(token);
    expect_invalid(token);
  }
  expect_invalid(good + ".");
  expect_invalid("." + good);
  expect_invalid(good.substr(1));
  expect_invalid(" " + good);
}

TEST_CASE("an empty secret refuses every token") {
  std::string token = sign(R"({"user_id":1,"exp":)" + exp_in(60) + "}", "");
  expect_invalid(token, "");
}

TEST_CASE("the refusal reason never repeats the token") {
  std::string token = sign(R"({"user_id":1,"exp":)" + exp_in(-10) + "}", secret);
  verdict v = verify(token, secret, now);
  REQUIRE_FALSE(v.ok());
  CHECK(v.reason.find(token.substr(token.rfind('.') + 1)) == std::string::npos);
}

TEST_CASE("huge inputs are refused without crashing") {
  expect_invalid(std::string(1 << 20, 'a'));
  expect_invalid(std::string(1 << 20, '.'));
  expect_invalid(std::string(1 << 19, 'a') + "." + std::string(1 << 19, 'b') + ".c");

  // Deep nesting behind a good signature is refused before it is parsed.
  std::string nested(100000, '[');
  expect_invalid_payload(nested);
  expect_invalid_payload(nested + std::string(100000, ']'));
  auto with_claim_depth = [](std::size_t depth) {
    return R"({"user_id":1,"exp":)" + exp_in(60) + R"(,"x":)" + std::string(depth, '[') +
           std::string(depth, ']') + "}";
  };
  expect_invalid_payload(with_claim_depth(50000));
  expect_invalid_payload(with_claim_depth(64));  // 65 levels with the payload object
  CHECK(accepted(with_claim_depth(63)).user_id == "1");
}

TEST_CASE("random bytes never crash verify") {
  std::mt19937 rng(7519);
  const std::string charset = "abcXYZ019-_=.+/ \x80\xff";
  for (int round = 0; round < 5000; ++round) {
    std::string token(1 + rng() % 200, '\0');
    bool raw = rng() % 2;
    for (char& c : token)
      c = raw ? static_cast<char>(rng()) : charset[rng() % charset.size()];
    verdict v = verify(token, secret, now);
    CHECK_FALSE(v.ok());
    CHECK_FALSE(v.reason.empty());
  }
}

TEST_CASE("random payloads behind a good signature never crash verify") {
  std::mt19937 rng(2);
  const std::string pieces[] = {"{", "}", "[", "]", ",", ":", "\"user_id\"", "\"sub\"",
                                "\"exp\"", "\"nbf\"", "\"channels\"", "\"role\"", "1",
                                "2000000000", "-1", "1e999", "null", "true", "\"x\"", "0.5"};
  for (int round = 0; round < 3000; ++round) {
    std::string payload;
    for (unsigned n = rng() % 30; n > 0; --n) payload += pieces[rng() % std::size(pieces)];
    verdict v = verify(sign(payload, secret), secret, now);
    CHECK((v.ok() || !v.reason.empty()));
  }
}

}  // TEST_SUITE

TEST_CASE("bearer credentials are read from the Authorization header") {
  CHECK(sb::jwt::bearer("Bearer abc") == "abc");
  CHECK(sb::jwt::bearer("bearer abc") == "abc");
  CHECK(sb::jwt::bearer("Basic abc").empty());
  CHECK(sb::jwt::bearer("Bearer ").empty());
  CHECK(sb::jwt::bearer("").empty());
}
