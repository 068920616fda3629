// The event log behind every channel: a narrow interface so the actors never
// see RocksDB. Reads are synchronous point or range reads; appends are queued
// to one writer thread that commits many channels' events in one batch and
// one WAL sync (group commit), then reports back through a callback.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sb {

struct log_record {
  uint64_t event_id = 0;
  int64_t timestamp_ms = 0;
  std::string payload;  // the event's JSON, as delivered live
};

// A leadership term: every time a node becomes a channel's primary it takes
// a term newer than any it has seen. `node` makes two nodes that pick the
// same number at once (views disagree) still differ. Ordered by (n, node).
struct term_id {
  uint64_t n = 0;
  std::string node;

  friend bool operator<(const term_id& a, const term_id& b) {
    return a.n != b.n ? a.n < b.n : a.node < b.node;
  }
  friend bool operator==(const term_id& a, const term_id& b) { return a.n == b.n && a.node == b.node; }
  friend bool operator!=(const term_id& a, const term_id& b) { return !(a == b); }
};

// The events from `first_id` on (until the next entry) were sequenced in `term`.
struct term_start {
  term_id term;
  uint64_t first_id = 0;

  friend bool operator==(const term_start& a, const term_start& b) {
    return a.term == b.term && a.first_id == b.first_id;
  }
};

// A channel's position in the log. `last_event_id` survives retention: a
// channel whose events were all trimmed still continues from it.
struct channel_meta {
  std::string epoch;
  uint64_t last_event_id = 0;
  uint64_t first_event_id = 0;  // oldest retained; 0 when none is
  std::vector<term_start> terms;  // oldest first; empty for logs written before terms
};

// A client frame id and the event it produced (idempotent resends).
struct dedup_record {
  std::string key;
  uint64_t event_id = 0;
  int64_t at_ms = 0;
};

struct append_request {
  std::string channel;
  std::string epoch;
  std::vector<log_record> records;  // contiguous ids, after the channel's last
  std::vector<dedup_record> dedup;
  std::vector<log_record> rewrites;  // replace retained events (tombstones)
  // Replace the channel (a replica or a new owner adopting another node's
  // history): its events and frame ids go first, and it continues from
  // `last_event_id` in `epoch` when `records` is empty.
  bool reset = false;
  uint64_t last_event_id = 0;
  // Drop the channel's events after this id first (a node's tail that the
  // others never acknowledged, replaced by theirs).
  std::optional<uint64_t> truncate_after;
  // The channel's term history after this append (kept in its meta).
  std::vector<term_start> terms;
  // Called on the writer thread once durable (ok) or failed (error text).
  std::function<void(const std::string& error)> done;
};

struct retention {
  std::size_t max_events = 10000;
  int64_t max_age_ms = 7LL * 24 * 3600 * 1000;
};

struct storage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct log_options {
  std::string dir;
  bool sync = true;  // fsync the WAL on every group commit
  std::size_t max_queued_appends = 65536;
  int64_t dedup_window_ms = 10 * 60 * 1000;
  std::function<retention(const std::string& channel)> retention_of;
  int64_t trim_interval_ms = 1000;
};

class event_log {
 public:
  virtual ~event_log() = default;

  // The channel's meta. A channel never written here gets the epoch it will
  // keep once its first event is stored, the same on every call (restarts
  // included); nothing is written until then.
  virtual channel_meta open(const std::string& channel) = 0;

  // The channel's meta if it was ever written here; creates nothing.
  virtual std::optional<channel_meta> peek(const std::string& channel) = 0;

  // Retained events with id > after_id, oldest first, at most `limit`.
  virtual std::vector<log_record> read_after(const std::string& channel, uint64_t after_id,
                                             std::size_t limit) = 0;

  // The newest `limit` retained events with id < before_id, oldest first.
  virtual std::vector<log_record> read_before(const std::string& channel, uint64_t before_id,
                                              std::size_t limit) = 0;

  virtual std::optional<log_record> get(const std::string& channel, uint64_t event_id) = 0;

  // Frame ids remembered for the channel within the dedup window.
  virtual std::vector<dedup_record> recent_dedup(const std::string& channel, int64_t now_ms) = 0;

  // Queues an append; false when the writer's queue is full (back-pressure).
  virtual bool append(append_request req) = 0;

  // Group-commit statistics, for metrics.
  struct stats {
    uint64_t commits = 0;
    uint64_t events = 0;
    uint64_t trimmed = 0;
  };
  virtual stats statistics() const = 0;
};

// Opens (creating if need be) the RocksDB log in options.dir and starts its
// writer and trimming threads. Throws storage_error with a clear reason.
std::unique_ptr<event_log> open_rocksdb_log(log_options options);

}  // namespace sb
