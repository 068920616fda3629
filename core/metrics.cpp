#include "core/metrics.hpp"

#include <map>
#include <memory>

namespace sb::metrics {

namespace {

constexpr auto relaxed = std::memory_order_relaxed;

void line(std::string& out, const char* name, const char* type, const char* help, double value) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
  out += name;
  out += ' ';
  out += std::to_string(static_cast<long long>(value));
  out += '\n';
}

}  // namespace

void histogram::observe(double seconds) {
  std::size_t i = 0;
  while (i < bounds.size() && seconds > bounds[i]) ++i;
  buckets_[i].fetch_add(1, relaxed);
  sum_micros_.fetch_add(static_cast<uint64_t>(seconds * 1e6), relaxed);
  count_.fetch_add(1, relaxed);
}

std::string histogram::render(const std::string& name, const std::string& help) const {
  std::string out = "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    cumulative += buckets_[i].load(relaxed);
    std::string le = i < bounds.size() ? std::to_string(bounds[i]) : "+Inf";
    out += name + "_bucket{le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_sum " + std::to_string(sum_micros_.load(relaxed) / 1e6) + "\n";
  out += name + "_count " + std::to_string(count_.load(relaxed)) + "\n";
  return out;
}

registry& node() {
  static registry r;
  return r;
}

namespace {

std::map<std::string, std::unique_ptr<space>, std::less<>>& spaces() {
  static std::map<std::string, std::unique_ptr<space>, std::less<>> m;
  return m;
}

// One metric family, one line per namespace.
void family(std::string& out, const char* name, const char* type, const char* help,
            counter space::*field) {
  out += std::string("# HELP ") + name + ' ' + help + "\n# TYPE " + name + ' ' + type + '\n';
  for (auto& [ns, s] : spaces())
    out += std::string(name) + "{namespace=\"" + ns + "\"} " +
           std::to_string(((*s).*field).load(relaxed)) + '\n';
}

void gauge_family(std::string& out, const char* name, const char* help) {
  out += std::string("# HELP ") + name + ' ' + help + "\n# TYPE " + name + " gauge\n";
  for (auto& [ns, s] : spaces())
    out += std::string(name) + "{namespace=\"" + ns + "\"} " +
           std::to_string(s->channels.load(relaxed)) + '\n';
}

}  // namespace

void declare_spaces(const std::vector<std::string>& names) {
  auto& m = spaces();
  m.clear();
  for (const auto& n : names) m.emplace(n, std::make_unique<space>());
  m.emplace("other", std::make_unique<space>());
}

space& space_of(std::string_view ns) {
  auto& m = spaces();
  auto it = m.find(ns);
  if (it == m.end()) it = m.find(std::string_view{"other"});
  static space undeclared;  // declare_spaces was not called (unit tests)
  return it == m.end() ? undeclared : *it->second;
}

std::string render() {
  auto& r = node();
  std::string out;
  line(out, "switchboard_connections", "gauge", "Open WebSocket connections.",
       r.connections.load(relaxed));
  line(out, "switchboard_connections_total", "counter", "WebSocket connections accepted.",
       r.connections_total.load(relaxed));
  line(out, "switchboard_channels", "gauge", "Active channel actors.", r.channels.load(relaxed));
  line(out, "switchboard_events_stored_total", "counter", "Events made durable (events in).",
       r.events_stored.load(relaxed));
  line(out, "switchboard_frames_delivered_total", "counter",
       "Event frames queued to subscribers (events out).", r.frames_delivered.load(relaxed));
  line(out, "switchboard_replays_total", "counter", "Replays served.", r.replays.load(relaxed));
  line(out, "switchboard_replay_gaps_total", "counter", "Replays that could not be complete.",
       r.replay_gaps.load(relaxed));
  line(out, "switchboard_rate_limited_total", "counter", "Client frames refused by the rate limit.",
       r.rate_limited.load(relaxed));
  line(out, "switchboard_slow_consumer_closes_total", "counter",
       "Connections closed with 4009 because their queue overflowed.",
       r.slow_consumer_closes.load(relaxed));
  line(out, "switchboard_connections_refused_total", "counter",
       "WebSocket and SSE handshakes refused with 503 over limits.max_connections.",
       r.connections_refused.load(relaxed));
  line(out, "switchboard_api_requests_total", "counter", "Server API requests.",
       r.api_requests.load(relaxed));
  gauge_family(out, "switchboard_namespace_channels", "Active channel actors, by namespace.");
  family(out, "switchboard_namespace_events_stored_total", "counter",
         "Events made durable on this node as their owner, by namespace.", &space::events_stored);
  family(out, "switchboard_namespace_frames_delivered_total", "counter",
         "Event frames queued to subscribers on this node, by namespace.",
         &space::frames_delivered);
  family(out, "switchboard_namespace_replays_total", "counter", "Replays served, by namespace.",
         &space::replays);
  out += r.append_latency.render("switchboard_storage_append_seconds",
                                 "Time to make one group commit of events durable.");
  return out;
}

}  // namespace sb::metrics
