// Node-wide counters for GET /metrics (Prometheus text format). Plain
// relaxed atomics: bumped once per batch or per connection event, never per
// delivered frame.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sb::metrics {

using counter = std::atomic<uint64_t>;
using gauge = std::atomic<int64_t>;

// A fixed-bucket histogram of seconds.
class histogram {
 public:
  static constexpr std::array<double, 12> bounds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                 0.01,   0.025,   0.05,   0.1,   0.25,   1.0};
  void observe(double seconds);
  std::string render(const std::string& name, const std::string& help) const;

 private:
  std::array<counter, bounds.size() + 1> buckets_{};
  std::atomic<uint64_t> sum_micros_{0};
  counter count_{0};
};

struct registry {
  gauge connections{0};
  gauge channels{0};
  counter connections_total{0};
  counter events_stored{0};
  counter frames_delivered{0};
  counter replays{0};
  counter replay_gaps{0};
  counter rate_limited{0};
  counter slow_consumer_closes{0};
  counter connections_refused{0};  // over limits.max_connections
  counter api_requests{0};
  histogram append_latency;
};

registry& node();

// The same figures for the channels of one namespace (chat, user, ...).
struct space {
  gauge channels{0};
  counter events_stored{0};
  counter frames_delivered{0};
  counter replays{0};
};

// The configured namespaces, set once at start-up before any actor runs:
// afterwards lookups read a fixed map and take no lock.
void declare_spaces(const std::vector<std::string>& names);

// A namespace's figures; namespaces not configured share "other".
space& space_of(std::string_view ns);

std::string render();

}  // namespace sb::metrics
