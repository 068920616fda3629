#include <cctype>
#include "net/jwt.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cmath>
#include <limits>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/json_depth.hpp"

namespace sb::jwt {

namespace {

using json = nlohmann::json;

constexpr char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::size_t sha256_size = 32;

int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

verdict refuse(refusal why, std::string reason) {
  return verdict{why, std::move(reason)};
}

struct parts {
  std::string_view header;
  std::string_view payload;
  std::string_view signature;
  std::string_view signing_input;  // header.payload, what the signature covers
};

std::optional<parts> split(std::string_view token) {
  auto first = token.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  auto second = token.find('.', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  if (token.find('.', second + 1) != std::string_view::npos) return std::nullopt;
  return parts{token.substr(0, first), token.substr(first + 1, second - first - 1),
               token.substr(second + 1), token.substr(0, second)};
}

std::optional<json> decode_object(std::string_view part) {
  std::string text;
  if (!base64url_decode(part, text)) return std::nullopt;
  auto parsed = parse_untrusted_json(text);
  if (parsed.status != json_status::ok || !parsed.value.is_object()) return std::nullopt;
  return std::move(parsed.value);
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &size))
    return {};
  return std::string(reinterpret_cast<const char*>(mac), size);
}

bool signature_matches(const parts& p, std::string_view secret) {
  std::string given;
  if (!base64url_decode(p.signature, given) || given.size() != sha256_size) return false;
  std::string expected = hmac_sha256(secret, p.signing_input);
  return expected.size() == sha256_size &&
         CRYPTO_memcmp(given.data(), expected.data(), sha256_size) == 0;
}

// A claim, or null when it is absent or JSON null (both mean "not given").
const json* claim(const json& body, const char* name) {
  auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

// Why the header is unacceptable, or null. The algorithm is pinned rather
// than read from the token, so "none" or an RSA/HMAC confusion cannot work.
const char* header_problem(const json& header) {
  const json* alg = claim(header, "alg");
  if (!alg || !alg->is_string() || alg->get_ref<const std::string&>() != "HS256")
    return "token algorithm is not HS256";
  if (claim(header, "crit")) return "token has critical extensions";
  return nullptr;
}

// exp in whole seconds. It is already known to be above `now`, so only the
// upper end can overflow.
int64_t whole_seconds(const json& exp) {
  constexpr int64_t max = std::numeric_limits<int64_t>::max();
  if (exp.is_number_unsigned())
    return exp.get<uint64_t>() > static_cast<uint64_t>(max) ? max : exp.get<int64_t>();
  if (exp.is_number_integer()) return exp.get<int64_t>();
  double seconds = std::floor(exp.get<double>());
  return seconds >= 9223372036854775807.0 ? max : static_cast<int64_t>(seconds);
}

// Why the token is not valid at `now`, or null; sets `exp` when it is.
// Comparing as double is exact here: `now` is far below 2^53.
const char* validity_problem(const json& body, int64_t now, int64_t& exp) {
  const json* e = claim(body, "exp");
  if (!e) return "token has no exp";
  if (!e->is_number()) return "exp is not a number";
  if (!(e->get<double>() > static_cast<double>(now))) return "token expired";
  exp = whole_seconds(*e);
  if (const json* nbf = claim(body, "nbf")) {
    if (!nbf->is_number()) return "nbf is not a number";
    if (nbf->get<double>() > static_cast<double>(now)) return "token not yet valid";
  }
  const json* type = claim(body, "token_type");
  if (type && !(type->is_string() && type->get_ref<const std::string&>() == "access"))
    return "token_type is not access";
  return nullptr;
}

bool read_string(const json& body, const char* name, std::string& out) {
  const json* value = claim(body, name);
  if (!value) return true;
  if (!value->is_string()) return false;
  out = value->get<std::string>();
  return true;
}

// Why the optional claims are malformed, or null; fills them into `c`.
const char* profile_problem(const json& body, claims& c) {
  if (!read_string(body, "name", c.name)) return "name is not a string";
  if (!read_string(body, "role", c.role)) return "role is not a string";
  const json* channels = claim(body, "channels");
  if (!channels) return nullptr;
  if (!channels->is_array()) return "channels is not a list";
  for (const json& channel : *channels) {
    if (!channel.is_string()) return "channels holds a non-string";
    c.channels.push_back(channel.get<std::string>());
  }
  return nullptr;
}

// Django SimpleJWT puts the id in `user_id`; other issuers use `sub`.
bool read_user_id(const json& body, claims& c) {
  const json* id = claim(body, "user_id");
  if (!id) id = claim(body, "sub");
  if (!id) return false;
  if (id->is_number_unsigned()) {
    c.user_id = std::to_string(id->get<uint64_t>());
  } else if (id->is_number_integer()) {
    c.user_id = std::to_string(id->get<int64_t>());
  } else if (id->is_string() && !id->get_ref<const std::string&>().empty()) {
    c.user_id = id->get<std::string>();
    return true;
  } else {
    return false;
  }
  c.user_id_numeric = true;
  return true;
}

}  // namespace

verdict verify(std::string_view token, std::string_view secret, int64_t now) {
  if (token.empty()) return refuse(refusal::missing, "no token");
  // Anyone could sign for an empty secret; a misconfigured node refuses all.
  if (secret.empty()) return refuse(refusal::invalid, "no secret configured");
  auto p = split(token);
  if (!p) return refuse(refusal::invalid, "token does not have three parts");
  auto header = decode_object(p->header);
  if (!header) return refuse(refusal::invalid, "malformed token header");
  if (const char* why = header_problem(*header)) return refuse(refusal::invalid, why);
  if (!signature_matches(*p, secret)) return refuse(refusal::invalid, "bad signature");

  auto body = decode_object(p->payload);
  if (!body) return refuse(refusal::invalid, "malformed token payload");
  claims c;
  if (const char* why = validity_problem(*body, now, c.exp))
    return refuse(refusal::invalid, why);
  if (const char* why = profile_problem(*body, c)) return refuse(refusal::invalid, why);
  if (!read_user_id(*body, c)) return refuse(refusal::no_user_id, "token has no user id");
  return verdict{std::move(c), {}};
}

std::string sign(std::string_view payload_json, std::string_view secret) {
  std::string token = base64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  token += '.';
  token += base64url_encode(payload_json);
  std::string mac = hmac_sha256(secret, token);
  token += '.';
  token += base64url_encode(mac);
  return token;
}

std::string base64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  uint32_t bits = 0;
  int count = 0;
  for (char c : in) {
    bits = (bits << 8) | static_cast<unsigned char>(c);
    count += 8;
    while (count >= 6) {
      count -= 6;
      out.push_back(alphabet[(bits >> count) & 63]);
    }
    bits &= (1u << count) - 1;
  }
  if (count > 0) out.push_back(alphabet[(bits << (6 - count)) & 63]);
  return out;
}

// Only the canonical form is accepted (RFC 7515 section 2): no padding, and
// the unused low bits of the last character zero, so that each value has one
// spelling and a token cannot be altered without breaking its signature.
bool base64url_decode(std::string_view in, std::string& out) {
  out.clear();
  if (in.size() % 4 == 1) return false;
  out.reserve(in.size() * 3 / 4);
  uint32_t bits = 0;
  int count = 0;
  for (char c : in) {
    int value = sextet(c);
    if (value < 0) return false;
    bits = (bits << 6) | static_cast<uint32_t>(value);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xFF));
      bits &= (1u << count) - 1;
    }
  }
  return bits == 0;
}

std::string_view bearer(std::string_view authorization) {
  constexpr std::string_view scheme = "bearer ";
  if (authorization.size() <= scheme.size()) return {};
  for (std::size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i]) return {};
  return authorization.substr(scheme.size());
}

}  // namespace sb::jwt
