// JSON from outside the node (client frames, API and admin bodies, JWTs, the
// config) is refused when it nests deeper than a fixed limit, before it is
// built: nlohmann's parser is iterative, but dump() recurses once per level,
// so a deep enough document would overflow the stack when re-serialised.
#pragma once

#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

namespace sb {

inline constexpr std::size_t max_json_depth = 64;

// True when `text` opens more than `limit` arrays or objects inside each
// other, counting brackets outside strings (and outside // and /* */
// comments when `comments`). One pass over the bytes, stopping at the first
// bracket over the limit.
bool nests_deeper_than(std::string_view text, std::size_t limit, bool comments = false);

enum class json_status { ok, malformed, too_deep };

struct parsed_json {
  nlohmann::json value;  // discarded unless status is ok
  json_status status = json_status::ok;
};

// Parses untrusted JSON, refusing nesting deeper than max_json_depth.
parsed_json parse_untrusted_json(std::string_view text, bool comments = false);

}  // namespace sb
