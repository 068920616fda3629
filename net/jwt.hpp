// JWT (HS256) verification and signing with OpenSSL (PROTOCOL section 2).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "core/claims.hpp"

namespace sb::jwt {

// Why a token was refused, mapped to the close codes of PROTOCOL section 2.
enum class refusal : uint16_t {
  missing = 4001,     // no token at all
  no_user_id = 4002,  // valid token without `user_id` or `sub`
  invalid = 4003,     // malformed, badly signed, expired, not yet valid, wrong type
};

struct verdict {
  std::variant<claims, refusal> result;
  std::string reason;  // why it was refused, for the log (never the token)

  bool ok() const { return std::holds_alternative<claims>(result); }
};

// Verifies `token` against `secret` at time `now` (seconds since the epoch).
// An empty token is refusal::missing.
verdict verify(std::string_view token, std::string_view secret, int64_t now);

// Signs a JSON object (given as its text) with HS256: header.payload.signature.
std::string sign(std::string_view payload_json, std::string_view secret);

// The credential of an `Authorization: Bearer X` header (scheme matched
// case-insensitively), or empty.
std::string_view bearer(std::string_view authorization);

// base64url without padding, as JWT uses.
std::string base64url_encode(std::string_view in);
// Returns false on characters outside the alphabet (padding included), an
// impossible length or non-zero unused bits in the last character.
bool base64url_decode(std::string_view in, std::string& out);

}  // namespace sb::jwt
