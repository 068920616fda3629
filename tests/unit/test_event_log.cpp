#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include <unistd.h>

#include "storage/event_log.hpp"

namespace fs = std::filesystem;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    path = fs::temp_directory_path() / ("sb-log-test-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(counter()++));
    fs::remove_all(path);
  }
  ~temp_dir() { fs::remove_all(path); }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

sb::log_options options(const temp_dir& d) {
  sb::log_options o;
  o.dir = d.path.string();
  o.sync = false;
  o.trim_interval_ms = 3600 * 1000;  // tests trim through a reopened log with a short interval
  return o;
}

// Appends and waits until durable; returns the error text (empty when ok).
std::string append(sb::event_log& log, const std::string& ch, const std::string& epoch,
                   uint64_t first, uint64_t count, std::vector<sb::dedup_record> dedup = {},
                   int64_t ts = 1000) {
  sb::append_request r;
  r.channel = ch;
  r.epoch = epoch;
  for (uint64_t i = 0; i < count; ++i)
    r.records.push_back({first + i, ts, "{\"n\":" + std::to_string(first + i) + "}"});
  r.dedup = std::move(dedup);
  std::promise<std::string> p;
  r.done = [&](const std::string& e) { p.set_value(e); };
  REQUIRE(log.append(std::move(r)));
  return p.get_future().get();
}

}  // namespace

TEST_CASE("event log: epochs and ids persist across a reopen") {
  temp_dir d;
  std::string epoch;
  {
    auto log = sb::open_rocksdb_log(options(d));
    auto m = log->open("chat:1");
    CHECK(m.epoch.size() == 16);
    CHECK(m.last_event_id == 0);
    CHECK(m.first_event_id == 0);
    epoch = m.epoch;
    CHECK(append(*log, "chat:1", epoch, 1, 3).empty());
    CHECK(log->open("chat:1").last_event_id == 3);
    CHECK(log->open("chat:10").epoch != epoch);
  }
  auto log = sb::open_rocksdb_log(options(d));
  auto m = log->open("chat:1");
  CHECK(m.epoch == epoch);
  CHECK(m.last_event_id == 3);
  CHECK(m.first_event_id == 1);
  CHECK(log->open("chat:10").last_event_id == 0);
  auto all = log->read_after("chat:1", 0, 100);
  REQUIRE(all.size() == 3);
  CHECK(all[0].event_id == 1);
  CHECK(all[2].payload == "{\"n\":3}");
  CHECK(all[2].timestamp_ms == 1000);
}

TEST_CASE("event log: range reads stay inside their channel") {
  temp_dir d;
  auto log = sb::open_rocksdb_log(options(d));
  auto e1 = log->open("room1").epoch;
  auto e10 = log->open("room10").epoch;
  append(*log, "room1", e1, 1, 5);
  append(*log, "room10", e10, 1, 7);
  CHECK(log->read_after("room1", 0, 100).size() == 5);
  CHECK(log->read_after("room1", 3, 100).size() == 2);
  CHECK(log->read_after("room1", 5, 100).empty());
  CHECK(log->read_after("room10", 0, 3).size() == 3);
  auto before = log->read_before("room10", 6, 2);
  REQUIRE(before.size() == 2);
  CHECK(before[0].event_id == 4);
  CHECK(before[1].event_id == 5);
  CHECK(log->read_before("room10", 1, 10).empty());
  CHECK(log->read_before("room1", 100, 10).size() == 5);
  CHECK(log->read_before("room10", 3, 10).size() == 2);  // stops at its own first event
  CHECK(log->get("room1", 5));
  CHECK_FALSE(log->get("room1", 6));
}

TEST_CASE("event log: rewrites replace an event; dedup records come back within the window") {
  temp_dir d;
  auto log = sb::open_rocksdb_log(options(d));
  auto epoch = log->open("c").epoch;
  append(*log, "c", epoch, 1, 2, {{"u:id1", 1, 5000}, {"u:old", 2, 1}});
  sb::append_request r;
  r.channel = "c";
  r.epoch = epoch;
  r.records.push_back({3, 2000, "{\"delete\":1}"});
  r.rewrites.push_back({1, 1000, "{\"deleted\":true}"});
  std::promise<std::string> p;
  r.done = [&](const std::string& e) { p.set_value(e); };
  REQUIRE(log->append(std::move(r)));
  CHECK(p.get_future().get().empty());
  CHECK(log->get("c", 1)->payload == "{\"deleted\":true}");
  CHECK(log->open("c").last_event_id == 3);
  auto dedup = log->recent_dedup("c", 10 * 60 * 1000 + 2);
  REQUIRE(dedup.size() == 1);
  CHECK(dedup[0].key == "u:id1");
  CHECK(dedup[0].event_id == 1);
}

TEST_CASE("event log: retention trims by count and age but keeps the last id") {
  temp_dir d;
  auto o = options(d);
  o.trim_interval_ms = 20;
  o.retention_of = [](const std::string& ch) {
    return ch == "old" ? sb::retention{1000, 1000} : sb::retention{3, 1LL << 50};
  };
  auto log = sb::open_rocksdb_log(o);
  append(*log, "few", log->open("few").epoch, 1, 10, {}, 1LL << 40);
  append(*log, "old", log->open("old").epoch, 1, 4, {}, 1);  // timestamps long past
  for (int i = 0; i < 200 && (log->read_after("few", 0, 100).size() > 3 ||
                              !log->read_after("old", 0, 100).empty());
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto few = log->read_after("few", 0, 100);
  REQUIRE(few.size() == 3);
  CHECK(few.front().event_id == 8);
  CHECK(log->open("few").first_event_id == 8);
  CHECK(log->read_after("old", 0, 100).empty());
  auto old = log->open("old");
  CHECK(old.last_event_id == 4);
  CHECK(old.first_event_id == 0);
  CHECK(log->statistics().trimmed == 11);
}

TEST_CASE("event log: a locked or unusable folder is a clear error") {
  temp_dir d;
  auto log = sb::open_rocksdb_log(options(d));
  CHECK_THROWS_AS(sb::open_rocksdb_log(options(d)), sb::storage_error);
  temp_dir f;
  fs::create_directories(f.path.parent_path());
  std::ofstream(f.path.string()) << "not a folder";
  CHECK_THROWS_AS(sb::open_rocksdb_log(options(f)), sb::storage_error);
  fs::remove(f.path);
}
