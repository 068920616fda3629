// The JWT verifier (net/jwt) twice per input: on the input as a token (as it
// comes in `?token=` or a Bearer header), and on the input as the claims of a
// token signed with the node's secret, which is how the fuzzer gets past the
// signature to the claims. Checks beyond "no crash": base64url decodes what it
// encodes; a token signed with the secret is never refused for its signature
// or header; an accepted token has a user id and an exp after `now`.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "net/jwt.hpp"

namespace {

constexpr std::string_view secret = "fuzz-secret-fuzz-secret-fuzz-secret";
constexpr int64_t now = 1700000000;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_accepted(const sb::jwt::verdict& v) {
  if (!v.ok()) return;
  const auto& c = std::get<sb::claims>(v.result);
  check(!c.user_id.empty() && c.exp > now);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);

  check_accepted(sb::jwt::verify(input, secret, now));
  (void)sb::jwt::bearer(input);

  std::string decoded;
  check(sb::jwt::base64url_decode(sb::jwt::base64url_encode(input), decoded) && decoded == input);

  auto signed_token = sb::jwt::sign(input, secret);
  auto v = sb::jwt::verify(signed_token, secret, now);
  check(v.reason != "bad signature" && v.reason != "malformed token header");
  check_accepted(v);
  return 0;
}
