// Structured logs: one line per event, an event name plus key=value fields
// carrying the ids needed to follow a connection, user, channel or node.
// Plain text for people, JSON lines for machines (log.format).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace sb::log {

enum class level { debug, info, warn, error };

// A field borrows its text for the one call it is written in, so building
// it costs nothing when its level is off: a string lvalue is not copied, and
// a number's digits fit the small-string buffer. Temporaries are kept.
class field {
 public:
  field(std::string_view k, const std::string& v) : key(k), value(v) {}
  field(std::string_view k, std::string&& v) : key(k), owned_(std::move(v)), value(owned_) {}
  field(std::string_view k, const char* v) : key(k), value(v) {}
  field(std::string_view k, std::string_view v) : key(k), value(v) {}
  template <class Number, class = std::enable_if_t<std::is_arithmetic_v<Number>>>
  field(std::string_view k, Number n) : key(k), owned_(std::to_string(n)), value(owned_) {}

  field(const field&) = delete;  // `value` may point into `owned_`
  field& operator=(const field&) = delete;

  std::string_view key;

 private:
  std::string owned_;

 public:
  std::string_view value;  // declared after owned_, which it may point into
};

// Called once at start-up, before any other thread logs.
void configure(level min_level, bool json_lines, std::string node_id);
level parse_level(std::string_view name);
bool enabled(level l);

void write(level l, std::string_view event, std::initializer_list<field> fields = {});

inline void debug(std::string_view e, std::initializer_list<field> f = {}) {
  if (enabled(level::debug)) write(level::debug, e, f);
}
inline void info(std::string_view e, std::initializer_list<field> f = {}) { write(level::info, e, f); }
inline void warn(std::string_view e, std::initializer_list<field> f = {}) { write(level::warn, e, f); }
inline void error(std::string_view e, std::initializer_list<field> f = {}) { write(level::error, e, f); }

}  // namespace sb::log
