#include "net/router.hpp"

#include "core/channel_name.hpp"

namespace sb {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex_value(s[i + 1]);
      int lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (start < path.size()) {
    auto slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

bool is_param(std::string_view seg) {
  return seg.size() > 2 && seg.front() == '{' && seg.back() == '}';
}

}  // namespace

std::optional<uint64_t> parse_uint(std::string_view s) {
  if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  return std::stoull(std::string{s});
}

std::optional<request_target> parse_target(std::string_view target) {
  request_target t;
  auto q = target.find('?');
  auto path = percent_decode(target.substr(0, q), false);
  if (!path) return std::nullopt;
  t.path = std::move(*path);
  if (q == std::string_view::npos) return t;
  auto query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (!key || !value) return std::nullopt;
    if (!key->empty()) t.query.emplace(std::move(*key), std::move(*value));
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  return t;
}

std::optional<route_match> match_route(const std::vector<route_config>& routes,
                                       std::string_view path) {
  if (path.empty() || path.front() != '/') return std::nullopt;
  if (path.find("//") != std::string_view::npos) return std::nullopt;
  auto segments = split_path(path);
  for (const auto& r : routes) {
    auto pattern = split_path(r.path);
    if (pattern.size() != segments.size()) continue;
    route_match m{&r, {}};
    bool ok = true;
    for (std::size_t i = 0; ok && i < pattern.size(); ++i) {
      if (is_param(pattern[i]))
        m.params.emplace(std::string{pattern[i].substr(1, pattern[i].size() - 2)},
                         std::string{segments[i]});
      else
        ok = pattern[i] == segments[i];
    }
    if (ok) return m;
  }
  return std::nullopt;
}

std::optional<std::vector<std::string>> route_channels(const route_match& m, const claims& c) {
  std::vector<std::string> names;
  for (const auto& tmpl : m.route->channels) {
    std::string name;
    bool skip = false;
    for (std::size_t i = 0; i < tmpl.size(); ++i) {
      auto close = tmpl[i] == '{' ? tmpl.find('}', i) : std::string::npos;
      if (close == std::string::npos) {
        name += tmpl[i];
        continue;
      }
      auto key = tmpl.substr(i + 1, close - i - 1);
      if (key == "user_id") name += c.user_id;
      else if (key == "role") {
        skip = skip || c.role.empty();
        name += c.role;
      } else if (auto p = m.params.find(key); p != m.params.end()) name += p->second;
      else return std::nullopt;
      i = close;
    }
    if (skip) continue;
    if (!valid_channel_name(name)) return std::nullopt;
    names.push_back(std::move(name));
  }
  return names;
}

}  // namespace sb
