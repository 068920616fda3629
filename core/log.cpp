#include "core/log.hpp"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "core/time.hpp"

namespace sb::log {

namespace {

level min_level_ = level::info;
bool json_lines_ = false;
std::string node_id_;

const char* name_of(level l) {
  switch (l) {
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warn";
    case level::error: return "error";
  }
  return "info";
}

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v)
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
  return false;
}

void append_plain_value(std::string& out, std::string_view v) {
  if (!needs_quotes(v)) {
    out += v;
    return;
  }
  out += nlohmann::json(std::string{v}).dump(-1, ' ', false,
                                             nlohmann::json::error_handler_t::replace);
}

}  // namespace

void configure(level min_level, bool json_lines, std::string node_id) {
  min_level_ = min_level;
  json_lines_ = json_lines;
  node_id_ = std::move(node_id);
}

level parse_level(std::string_view name) {
  if (name == "debug") return level::debug;
  if (name == "warn") return level::warn;
  if (name == "error") return level::error;
  return level::info;
}

bool enabled(level l) { return l >= min_level_; }

void write(level l, std::string_view event, std::initializer_list<field> fields) {
  if (!enabled(l)) return;
  std::string line;
  if (json_lines_) {
    nlohmann::json j;
    j["ts"] = iso8601_ms(now_ms());
    j["level"] = name_of(l);
    j["event"] = event;
    if (!node_id_.empty()) j["node"] = node_id_;
    for (const auto& f : fields) j[std::string{f.key}] = std::string{f.value};
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = iso8601_ms(now_ms());
    line += ' ';
    line += name_of(l);
    line += ' ';
    line += event;
    for (const auto& f : fields) {
      line += ' ';
      line += f.key;
      line += '=';
      append_plain_value(line, f.value);
    }
  }
  line += '\n';
  // One fwrite per line: stdio locks the stream, so lines never interleave.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace sb::log
