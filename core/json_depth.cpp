#include "core/json_depth.hpp"

namespace sb {

namespace {

// The index of the quote closing the string opened at `open`, or the end.
std::size_t string_end(std::string_view text, std::size_t open) {
  for (std::size_t i = open + 1; i < text.size(); ++i) {
    if (text[i] == '\\') ++i;
    else if (text[i] == '"') return i;
  }
  return text.size();
}

// The index of the last character of the comment starting at `slash`, or
// `slash` itself when no comment starts there.
std::size_t comment_end(std::string_view text, std::size_t slash) {
  if (slash + 1 >= text.size()) return slash;
  if (text[slash + 1] == '/') {
    auto newline = text.find('\n', slash + 2);
    return newline == std::string_view::npos ? text.size() : newline;
  }
  if (text[slash + 1] == '*') {
    auto close = text.find("*/", slash + 2);
    return close == std::string_view::npos ? text.size() : close + 1;
  }
  return slash;
}

}  // namespace

bool nests_deeper_than(std::string_view text, std::size_t limit, bool comments) {
  std::size_t depth = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    switch (text[i]) {
      case '"': i = string_end(text, i); break;
      case '[':
      case '{':
        if (++depth > limit) return true;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      case '/':
        if (comments) i = comment_end(text, i);
        break;
      default: break;
    }
  }
  return false;
}

parsed_json parse_untrusted_json(std::string_view text, bool comments) {
  using json = nlohmann::json;
  if (nests_deeper_than(text, max_json_depth, comments))
    return {json(json::value_t::discarded), json_status::too_deep};
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false, comments);
  auto status = value.is_discarded() ? json_status::malformed : json_status::ok;
  return {std::move(value), status};
}

}  // namespace sb
