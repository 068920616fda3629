// Channel names (PROTOCOL section 1): 1-255 bytes of [A-Za-z0-9_.@:-]; the
// namespace is the part before the first ':' (or the whole name).
#pragma once

#include <string_view>

namespace sb {

inline bool is_channel_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '@' ||
         c == ':' || c == '-';
}

inline bool valid_channel_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name)
    if (!is_channel_char(c)) return false;
  return true;
}

inline std::string_view channel_namespace(std::string_view name) {
  return name.substr(0, name.find(':'));
}

}  // namespace sb
