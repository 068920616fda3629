// The event log in RocksDB. Key layout (one column family):
//   'i'                             -> this log's incarnation: 16 random hex digits
//   'm' channel                     -> epoch length, epoch, big-endian last_event_id,
//                                      then per term: be64(n), node length, node, be64(first_id)
//   'e' channel '\0' be64(event_id) -> be64(timestamp_ms), payload
//   'd' channel '\0' dedup key      -> be64(event_id), be64(at_ms)
// The '\0' keeps "room1" from matching "room10" in prefix scans; big-endian
// ids sort numerically.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string_view>
#include <algorithm>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/time.hpp"
#include "storage/event_log.hpp"
#include "storage/private_dir.hpp"

namespace sb {

namespace {

void put_be64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

uint64_t get_be64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string meta_key(const std::string& channel) { return "m" + channel; }

std::optional<int64_t> earliest(std::optional<int64_t> a, std::optional<int64_t> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

std::string event_prefix(const std::string& channel) { return "e" + channel + '\0'; }

std::string event_key(const std::string& channel, uint64_t id) {
  auto k = event_prefix(channel);
  put_be64(k, id);
  return k;
}

std::string dedup_prefix(const std::string& channel) { return "d" + channel + '\0'; }

std::string meta_value(const std::string& epoch, uint64_t last_id,
                       const std::vector<term_start>& terms) {
  std::string v(1, static_cast<char>(epoch.size()));
  v += epoch;
  put_be64(v, last_id);
  for (const auto& t : terms) {
    put_be64(v, t.term.n);
    v += static_cast<char>(t.term.node.size());
    v += t.term.node;
    put_be64(v, t.first_id);
  }
  return v;
}

bool parse_meta(const std::string& v, channel_meta& m) {
  if (v.empty()) return false;
  std::size_t n = static_cast<unsigned char>(v[0]);
  if (v.size() < 1 + n + 8) return false;
  m.epoch = v.substr(1, n);
  m.last_event_id = get_be64(v.data() + 1 + n);
  m.terms.clear();
  for (std::size_t at = 1 + n + 8; at < v.size();) {
    if (v.size() - at < 9) return false;
    term_start t;
    t.term.n = get_be64(v.data() + at);
    std::size_t len = static_cast<unsigned char>(v[at + 8]);
    at += 9;
    if (v.size() - at < len + 8) return false;
    t.term.node = v.substr(at, len);
    t.first_id = get_be64(v.data() + at + len);
    at += len + 8;
    m.terms.push_back(std::move(t));
  }
  return true;
}

std::string event_value(const log_record& r) {
  std::string v;
  v.reserve(8 + r.payload.size());
  put_be64(v, static_cast<uint64_t>(r.timestamp_ms));
  v += r.payload;
  return v;
}

// The event id an event key ends with.
uint64_t id_of(const rocksdb::Slice& event_key) {
  return get_be64(event_key.data() + event_key.size() - 8);
}

std::optional<log_record> parse_event(const rocksdb::Slice& key, const rocksdb::Slice& value) {
  if (key.size() < 9 || value.size() < 8) return std::nullopt;
  log_record r;
  r.event_id = id_of(key);
  r.timestamp_ms = static_cast<int64_t>(get_be64(value.data()));
  r.payload.assign(value.data() + 8, value.size() - 8);
  return r;
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// FNV-1a: stable across builds and platforms, unlike std::hash.
uint64_t fnv1a(std::string_view a, std::string_view b) {
  uint64_t h = 14695981039346656037ull;
  for (auto part : {a, std::string_view{"\0", 1}, b})
    for (unsigned char c : part) h = (h ^ c) * 1099511628211ull;
  return h;
}

const std::string incarnation_key = "i";

// The first key after every key that starts with `prefix`.
std::string prefix_end(std::string prefix) {
  prefix.back() = static_cast<char>(prefix.back() + 1);
  return prefix;
}

// Iterates keys with a prefix, both ways; the bound strings outlive the iterator.
class prefix_scan {
 public:
  prefix_scan(rocksdb::DB* db, std::string prefix)
      : lower_(std::move(prefix)), upper_(prefix_end(lower_)) {
    lower_slice_ = lower_;
    upper_slice_ = upper_;
    opts_.iterate_lower_bound = &lower_slice_;
    opts_.iterate_upper_bound = &upper_slice_;
    it_.reset(db->NewIterator(opts_));
  }

  rocksdb::Iterator& it() { return *it_; }
  const std::string& lower() const { return lower_; }

 private:
  std::string lower_;
  std::string upper_;
  rocksdb::Slice lower_slice_;
  rocksdb::Slice upper_slice_;
  rocksdb::ReadOptions opts_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

class rocksdb_log final : public event_log {
 public:
  explicit rocksdb_log(log_options options) : opts_(std::move(options)) {
    make_private_dir(opts_.dir);
    rocksdb::Options o;
    o.create_if_missing = true;
    o.compression = rocksdb::kLZ4Compression;
    o.bottommost_compression = rocksdb::kZSTD;
    o.IncreaseParallelism(2);
    rocksdb::DB* db = nullptr;
    auto s = rocksdb::DB::Open(o, opts_.dir + "/events", &db);
    if (!s.ok()) throw storage_error("cannot open the event log in '" + opts_.dir + "/events': " + s.ToString());
    db_.reset(db);
    incarnation_ = load_incarnation();
    writer_ = std::thread([this] { write_loop(); });
    trimmer_ = std::thread([this] { trim_loop(); });
  }

  ~rocksdb_log() override {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    writer_.join();
    trimmer_.join();
    db_->Close();
  }

  // Writes nothing: a channel's meta record is written with its first
  // event. Until then its epoch is derived from the log's incarnation, so
  // an empty channel shows the same epoch before and after a restart (and
  // keeps it once its first event is stored), while a log that was lost and
  // created anew gives every channel another one. Subscribing to 50,000
  // empty channels wrote 50,000 records that were never removed.
  channel_meta open(const std::string& channel) override {
    if (auto m = peek(channel)) return *m;
    channel_meta m;
    m.epoch = hex64(fnv1a(incarnation_, channel));
    return m;
  }

  std::optional<channel_meta> peek(const std::string& channel) override {
    channel_meta m;
    std::string v;
    auto s = db_->Get(rocksdb::ReadOptions{}, meta_key(channel), &v);
    if (s.IsNotFound()) return std::nullopt;
    check(s, channel);
    if (!parse_meta(v, m)) throw storage_error("reading " + channel + ": corrupt meta record");
    m.first_event_id = first_id(channel);
    return m;
  }

  std::vector<log_record> read_after(const std::string& channel, uint64_t after_id,
                                     std::size_t limit) override {
    std::vector<log_record> out;
    prefix_scan scan(db_.get(), event_prefix(channel));
    auto& it = scan.it();
    for (it.Seek(event_key(channel, after_id + 1)); it.Valid() && out.size() < limit; it.Next())
      if (auto r = parse_event(it.key(), it.value())) out.push_back(std::move(*r));
    check(it.status(), channel);
    return out;
  }

  std::vector<log_record> read_before(const std::string& channel, uint64_t before_id,
                                      std::size_t limit) override {
    std::vector<log_record> out;
    if (before_id <= 1 || limit == 0) return out;
    prefix_scan scan(db_.get(), event_prefix(channel));
    auto& it = scan.it();
    for (it.SeekForPrev(event_key(channel, before_id - 1)); it.Valid() && out.size() < limit;
         it.Prev())
      if (auto r = parse_event(it.key(), it.value())) out.push_back(std::move(*r));
    check(it.status(), channel);
    std::reverse(out.begin(), out.end());
    return out;
  }

  std::optional<log_record> get(const std::string& channel, uint64_t event_id) override {
    auto key = event_key(channel, event_id);
    std::string v;
    auto s = db_->Get(rocksdb::ReadOptions{}, key, &v);
    if (s.IsNotFound()) return std::nullopt;
    check(s, channel);
    return parse_event(key, v);
  }

  std::vector<dedup_record> recent_dedup(const std::string& channel, int64_t now_ms) override {
    std::vector<dedup_record> out;
    prefix_scan scan(db_.get(), dedup_prefix(channel));
    auto& it = scan.it();
    for (it.Seek(scan.lower()); it.Valid(); it.Next()) {
      if (it.value().size() != 16) continue;
      dedup_record d;
      d.key = it.key().ToString().substr(scan.lower().size());
      d.event_id = get_be64(it.value().data());
      d.at_ms = static_cast<int64_t>(get_be64(it.value().data() + 8));
      if (d.at_ms > now_ms - opts_.dedup_window_ms) out.push_back(std::move(d));
    }
    check(it.status(), channel);
    return out;
  }

  bool append(append_request req) override {
    {
      std::lock_guard lk(mu_);
      if (queue_.size() >= opts_.max_queued_appends) return false;
      queue_.push_back(std::move(req));
    }
    cv_.notify_all();
    return true;
  }

  stats statistics() const override {
    return {commits_.load(), events_.load(), trimmed_.load()};
  }

 private:
  static void check(const rocksdb::Status& s, const std::string& channel) {
    if (!s.ok()) throw storage_error("reading " + channel + ": " + s.ToString());
  }

  // The incarnation, created with the log (and synced: epochs depend on it).
  std::string load_incarnation() {
    std::string v;
    auto s = db_->Get(rocksdb::ReadOptions{}, incarnation_key, &v);
    if (s.ok()) return v;
    if (!s.IsNotFound()) throw storage_error("reading the log's incarnation: " + s.ToString());
    v = hex64(std::mt19937_64{std::random_device{}()}());
    rocksdb::WriteOptions wo;
    wo.sync = true;
    s = db_->Put(wo, incarnation_key, v);
    if (!s.ok()) throw storage_error("writing the log's incarnation: " + s.ToString());
    return v;
  }

  uint64_t first_id(const std::string& channel) {
    prefix_scan scan(db_.get(), event_prefix(channel));
    scan.it().Seek(scan.lower());
    if (!scan.it().Valid()) return 0;
    return id_of(scan.it().key());
  }

  // Takes everything queued, commits it as one batch with one sync, then
  // tells each requester.
  void write_loop() {
    std::deque<append_request> batch;
    while (true) {
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        batch.swap(queue_);
      }
      rocksdb::WriteBatch wb;
      uint64_t events = 0;
      for (const auto& r : batch) {
        if (r.reset) {
          for (const auto& prefix : {event_prefix(r.channel), dedup_prefix(r.channel)})
            wb.DeleteRange(prefix, prefix_end(prefix));
        }
        if (r.truncate_after) {
          wb.DeleteRange(event_key(r.channel, *r.truncate_after + 1),
                         prefix_end(event_prefix(r.channel)));
          // A resend must not be answered with an id that is gone (or reused).
          drop_dedup(wb, r.channel, [&](const rocksdb::Slice& v) {
            return v.size() != 16 || get_be64(v.data()) > *r.truncate_after;
          });
        }
        for (const auto& rec : r.records) wb.Put(event_key(r.channel, rec.event_id), event_value(rec));
        for (const auto& rec : r.rewrites) {
          wb.Put(event_key(r.channel, rec.event_id), event_value(rec));
          std::lock_guard lk(mu_);
          rewritten_.push_back(event_key(r.channel, rec.event_id));
        }
        for (const auto& d : r.dedup) {
          std::string v;
          put_be64(v, d.event_id);
          put_be64(v, static_cast<uint64_t>(d.at_ms));
          wb.Put(dedup_prefix(r.channel) + d.key, v);
        }
        if (!r.records.empty() || r.reset || r.truncate_after || !r.terms.empty())
          wb.Put(meta_key(r.channel),
                 meta_value(r.epoch, r.records.empty() ? r.last_event_id : r.records.back().event_id,
                            r.terms));
        events += r.records.size();
      }
      rocksdb::WriteOptions wo;
      wo.sync = opts_.sync;
      auto started = std::chrono::steady_clock::now();
      auto s = db_->Write(wo, &wb);
      metrics::node().append_latency.observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
      std::string error = s.ok() ? std::string{} : s.ToString();
      if (!s.ok()) log::error("storage_write_failed", {{"why", error}, {"events", events}});
      commits_ += 1;
      events_ += s.ok() ? events : 0;
      if (s.ok()) {
        std::lock_guard lk(mu_);
        for (const auto& r : batch) dirty_.insert(r.channel);
      }
      for (auto& r : batch)
        if (r.done) r.done(error);
      batch.clear();
    }
  }

  void trim_loop() {
    std::unique_lock lk(mu_);
    while (!cv_.wait_for(lk, std::chrono::milliseconds(opts_.trim_interval_ms),
                         [&] { return stopping_; })) {
      auto rewritten = std::move(rewritten_);
      rewritten_.clear();
      auto dirty = std::move(dirty_);
      dirty_.clear();
      lk.unlock();
      if (!swept_) {
        trim_all();
        swept_ = true;
      } else {
        trim_due(std::move(dirty));
      }
      erase_old_versions(rewritten);
      lk.lock();
    }
  }

  // A tombstone overwrites a message, but the LSM tree keeps the old version
  // (in the memtable's WAL and older SST files) until compaction: compact
  // just those keys so the deleted content leaves the disk.
  void erase_old_versions(const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    db_->Flush(rocksdb::FlushOptions{});
    for (const auto& k : keys) {
      rocksdb::Slice key{k};
      rocksdb::CompactRangeOptions o;
      o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
      auto s = db_->CompactRange(o, &key, &key);
      if (!s.ok()) log::warn("tombstone_compaction_failed", {{"why", s.ToString()}});
    }
  }

  // Retention visits only the channels that can have something to drop:
  // those written since the last pass (count), and those whose oldest event
  // or frame id has aged out since (age). Visiting every channel each pass
  // cost 4.6 us a channel: a tenth of a core for 20,000 idle notification
  // channels, and bursts that delayed the node's other threads.
  void trim_all() {
    std::vector<std::string> channels;
    {
      prefix_scan scan(db_.get(), "m");
      for (scan.it().Seek("m"); scan.it().Valid(); scan.it().Next())
        channels.push_back(scan.it().key().ToString().substr(1));
    }
    auto now = now_ms();
    for (const auto& ch : channels) trim(ch, now);
  }

  void trim_due(std::unordered_set<std::string> channels) {
    auto now = now_ms();
    for (auto it = expiries_.begin(); it != expiries_.end() && it->first <= now;) {
      scheduled_.erase(it->second);
      channels.insert(std::move(it->second));
      it = expiries_.erase(it);
    }
    for (const auto& ch : channels) trim(ch, now);
  }

  // Applies the channel's retention (count, then age), expires old frame
  // ids, and notes when it next has something to age out. Deletes need no
  // sync: a crash merely trims again.
  void trim(const std::string& ch, int64_t now) {
    auto keep = opts_.retention_of ? opts_.retention_of(ch) : retention{};
    schedule(ch, earliest(trim_channel(ch, keep, now), trim_dedup(ch, now)));
  }

  void schedule(const std::string& ch, std::optional<int64_t> at) {
    auto it = scheduled_.find(ch);
    if (it != scheduled_.end()) {
      if (at == it->second->first) return;
      expiries_.erase(it->second);
      scheduled_.erase(it);
    }
    if (at) scheduled_.emplace(ch, expiries_.emplace(*at, ch));
  }

  // Returns when the channel next has an event to age out, if any is left.
  std::optional<int64_t> trim_channel(const std::string& ch, const retention& keep, int64_t now) {
    std::string v;
    channel_meta m;
    if (!db_->Get(rocksdb::ReadOptions{}, meta_key(ch), &v).ok() || !parse_meta(v, m)) return {};
    uint64_t first = first_id(ch);
    if (first == 0) return {};
    uint64_t cut = first;  // events below `cut` go
    if (m.last_event_id >= keep.max_events && m.last_event_id - keep.max_events + 1 > cut)
      cut = m.last_event_id - keep.max_events + 1;
    std::optional<int64_t> oldest_left;
    {
      prefix_scan scan(db_.get(), event_prefix(ch));
      auto& it = scan.it();
      for (it.Seek(event_key(ch, cut)); it.Valid(); it.Next()) {
        if (it.value().size() < 8) break;
        auto at = static_cast<int64_t>(get_be64(it.value().data()));
        if (at > now - keep.max_age_ms) {
          oldest_left = at;
          break;
        }
        cut = id_of(it.key()) + 1;
      }
    }
    auto next = oldest_left ? std::optional<int64_t>{*oldest_left + keep.max_age_ms} : std::nullopt;
    if (cut <= first) return next;
    auto s = db_->DeleteRange(rocksdb::WriteOptions{}, db_->DefaultColumnFamily(),
                              event_key(ch, first), event_key(ch, cut));
    if (!s.ok()) {
      log::warn("trim_failed", {{"channel", ch}, {"why", s.ToString()}});
      return now + opts_.trim_interval_ms;  // try again
    }
    trimmed_ += cut - first;
    log::debug("trimmed", {{"channel", ch}, {"below", cut}});
    return next;
  }

  // Returns when the channel next has a frame id to expire, if any is left.
  std::optional<int64_t> trim_dedup(const std::string& ch, int64_t now) {
    rocksdb::WriteBatch wb;
    std::optional<int64_t> oldest_left;
    drop_dedup(wb, ch, [&](const rocksdb::Slice& v) {
      if (v.size() != 16) return true;
      auto at = static_cast<int64_t>(get_be64(v.data() + 8));
      if (at <= now - opts_.dedup_window_ms) return true;
      oldest_left = earliest(oldest_left, at);
      return false;
    });
    if (wb.Count() > 0) db_->Write(rocksdb::WriteOptions{}, &wb);
    if (!oldest_left) return std::nullopt;
    return *oldest_left + opts_.dedup_window_ms;
  }

  // Adds to `wb` the deletion of the channel's frame-id records whose value
  // (event id, time) `gone` says.
  template <class Pred>
  void drop_dedup(rocksdb::WriteBatch& wb, const std::string& ch, Pred gone) {
    prefix_scan scan(db_.get(), dedup_prefix(ch));
    auto& it = scan.it();
    for (it.Seek(scan.lower()); it.Valid(); it.Next())
      if (gone(it.value())) wb.Delete(it.key());
  }

  log_options opts_;
  std::unique_ptr<rocksdb::DB> db_;
  std::string incarnation_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<append_request> queue_;
  std::vector<std::string> rewritten_;  // keys whose old versions must leave the disk
  std::unordered_set<std::string> dirty_;  // channels written since the last trim pass
  bool stopping_ = false;
  std::thread writer_;
  std::thread trimmer_;
  // The trimmer's own: whether it has visited every channel once (at start),
  // and when each channel next has an event or frame id to age out.
  bool swept_ = false;
  std::multimap<int64_t, std::string> expiries_;
  std::unordered_map<std::string, std::multimap<int64_t, std::string>::iterator> scheduled_;

  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> events_{0};
  std::atomic<uint64_t> trimmed_{0};
};

}  // namespace

std::unique_ptr<event_log> open_rocksdb_log(log_options options) {
  return std::make_unique<rocksdb_log>(std::move(options));
}

}  // namespace sb
