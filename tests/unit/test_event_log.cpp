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

// Submits a prepared request and waits until durable; returns the error text.
std::string submit(sb::event_log& log, sb::append_request r) {
  std::promise<std::string> p;
  r.done = [&](const std::string& e) { p.set_value(e); };
  REQUIRE(log.append(std::move(r)));
  return p.get_future().get();
}

// A request that replaces `ch` (reset) or drops its events after `after`
// (truncate), then continues from `last` in `epoch` with `records`.
sb::append_request reset_request(const std::string& ch, const std::string& epoch, uint64_t last,
                                 std::vector<sb::log_record> records = {}) {
  sb::append_request r;
  r.channel = ch;
  r.epoch = epoch;
  r.reset = true;
  r.last_event_id = last;
  r.records = std::move(records);
  return r;
}

sb::append_request truncate_request(const std::string& ch, const std::string& epoch,
                                    uint64_t after, uint64_t last,
                                    std::vector<sb::log_record> records = {}) {
  sb::append_request r;
  r.channel = ch;
  r.epoch = epoch;
  r.truncate_after = after;
  r.last_event_id = last;
  r.records = std::move(records);
  return r;
}

std::vector<uint64_t> ids_of(const std::vector<sb::log_record>& records) {
  std::vector<uint64_t> out;
  for (const auto& r : records) out.push_back(r.event_id);
  return out;
}

std::vector<uint64_t> range(uint64_t first, uint64_t last) {
  std::vector<uint64_t> out;
  for (auto i = first; i <= last; ++i) out.push_back(i);
  return out;
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

TEST_CASE("event log: events age out of a channel that is not written again") {
  temp_dir d;
  auto o = options(d);
  o.trim_interval_ms = 20;
  o.retention_of = [](const std::string&) { return sb::retention{1000, 300}; };
  auto log = sb::open_rocksdb_log(o);
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  append(*log, "quiet", log->open("quiet").epoch, 1, 2, {}, now);
  append(*log, "quiet", log->open("quiet").epoch, 3, 1, {}, now + 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(log->read_after("quiet", 0, 10).size() == 3);  // none old enough yet
  for (int i = 0; i < 300 && log->read_after("quiet", 0, 10).size() > 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto left = log->read_after("quiet", 0, 10);
  REQUIRE(left.size() == 1);  // the first two at now + 300, the third later
  CHECK(left.front().event_id == 3);
  for (int i = 0; i < 300 && !log->read_after("quiet", 0, 10).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(log->read_after("quiet", 0, 10).empty());
  CHECK(log->open("quiet").last_event_id == 3);
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

TEST_CASE("event log: peek reports a channel only once it was written; open creates nothing") {
  temp_dir d;
  std::string epoch;
  {
    auto log = sb::open_rocksdb_log(options(d));
    CHECK_FALSE(log->peek("never"));
    CHECK_FALSE(log->peek("never"));  // the first peek did not create it
    CHECK(log->read_after("never", 0, 10).empty());
    auto m = log->open("opened");
    epoch = m.epoch;
    CHECK(m.last_event_id == 0);
    CHECK(m.first_event_id == 0);
    CHECK_FALSE(log->peek("opened"));  // open wrote nothing
    CHECK(log->open("opened").epoch == epoch);
    CHECK(append(*log, "opened", m.epoch, 1, 4).empty());
    auto p = log->peek("opened");
    REQUIRE(p);
    CHECK(p->epoch == epoch);
    CHECK(p->last_event_id == 4);
    CHECK(p->first_event_id == 1);
    CHECK_FALSE(log->peek("opene"));  // no prefix match on the meta key
    CHECK_FALSE(log->peek("opened2"));
    CHECK(log->open("opened").epoch == epoch);
    CHECK_FALSE(log->peek("never"));
  }
  // Nor did it persist anything: a reopened log still has no such channel.
  auto log = sb::open_rocksdb_log(options(d));
  CHECK_FALSE(log->peek("never"));
  auto p = log->peek("opened");
  REQUIRE(p);
  CHECK(p->epoch == epoch);
  CHECK(p->last_event_id == 4);
  log->open("never");
  CHECK_FALSE(log->peek("never"));
}

TEST_CASE("event log: an empty channel's epoch survives a reopen and its first event; a new log gives another") {
  temp_dir d;
  std::string empty, written;
  {
    auto log = sb::open_rocksdb_log(options(d));
    empty = log->open("empty").epoch;
    written = log->open("written").epoch;
    CHECK(empty.size() == 16);
    CHECK(empty != written);
    CHECK(append(*log, "written", written, 1, 1).empty());
  }
  {
    auto log = sb::open_rocksdb_log(options(d));
    CHECK(log->open("empty").epoch == empty);
    CHECK(log->open("written").epoch == written);
    CHECK(log->open("written").last_event_id == 1);
    CHECK(append(*log, "empty", log->open("empty").epoch, 1, 2).empty());
    CHECK(log->peek("empty")->epoch == empty);
  }
  // The same folder lost and created anew: another incarnation, other epochs.
  fs::remove_all(d.path);
  auto log = sb::open_rocksdb_log(options(d));
  CHECK(log->open("empty").epoch != empty);
  CHECK(log->open("written").epoch != written);
}

TEST_CASE("event log: reset replaces a channel's events and frame ids, not its neighbour's") {
  temp_dir d;
  auto o = options(d);
  auto log = sb::open_rocksdb_log(o);
  auto e1 = log->open("room1").epoch;
  auto e10 = log->open("room10").epoch;
  auto now = int64_t{5000};
  REQUIRE(append(*log, "room1", e1, 1, 5, {{"u:a", 1, now}, {"u:b", 5, now}}).empty());
  REQUIRE(append(*log, "room10", e10, 1, 3, {{"u:c", 2, now}}).empty());
  REQUIRE(log->recent_dedup("room1", now).size() == 2);

  SUBCASE("with no records it continues from last_event_id in the new epoch") {
    REQUIRE(submit(*log, reset_request("room1", "0123456789abcdef", 42)).empty());
    CHECK(log->read_after("room1", 0, 100).empty());
    CHECK_FALSE(log->get("room1", 1));
    CHECK(log->recent_dedup("room1", now).empty());
    auto m = log->peek("room1");
    REQUIRE(m);
    CHECK(m->epoch == "0123456789abcdef");
    CHECK(m->last_event_id == 42);
    CHECK(m->first_event_id == 0);
    CHECK(log->open("room1").epoch == "0123456789abcdef");
    REQUIRE(append(*log, "room1", "0123456789abcdef", 43, 2).empty());
    CHECK(ids_of(log->read_after("room1", 0, 100)) == std::vector<uint64_t>{43, 44});
    CHECK(log->peek("room1")->last_event_id == 44);
    CHECK(log->peek("room1")->first_event_id == 43);
  }

  SUBCASE("with records the channel becomes exactly those") {
    auto r = reset_request("room1", "fedcba9876543210", 3,
                           {{2, 7000, "{\"n\":\"b\"}"}, {3, 7001, "{\"n\":\"c\"}"}});
    r.dedup = {{"u:z", 3, now}};
    REQUIRE(submit(*log, std::move(r)).empty());
    auto all = log->read_after("room1", 0, 100);
    CHECK(ids_of(all) == std::vector<uint64_t>{2, 3});
    REQUIRE(all.size() == 2);
    CHECK(all[0].payload == "{\"n\":\"b\"}");
    CHECK(all[1].timestamp_ms == 7001);
    CHECK_FALSE(log->get("room1", 1));
    CHECK_FALSE(log->get("room1", 4));
    CHECK_FALSE(log->get("room1", 5));
    auto dedup = log->recent_dedup("room1", now);
    REQUIRE(dedup.size() == 1);
    CHECK(dedup[0].key == "u:z");
    CHECK(dedup[0].event_id == 3);
    auto m = log->peek("room1");
    REQUIRE(m);
    CHECK(m->epoch == "fedcba9876543210");
    CHECK(m->last_event_id == 3);
    CHECK(m->first_event_id == 2);
  }

  SUBCASE("of a channel never opened here it creates it") {
    REQUIRE(submit(*log, reset_request("room", "00000000000000aa", 9)).empty());
    auto m = log->peek("room");
    REQUIRE(m);
    CHECK(m->epoch == "00000000000000aa");
    CHECK(m->last_event_id == 9);
    CHECK(ids_of(log->read_after("room1", 0, 100)) == range(1, 5));
    CHECK(log->recent_dedup("room1", now).size() == 2);
  }

  // The neighbour whose name starts with this one's is untouched.
  CHECK(ids_of(log->read_after("room10", 0, 100)) == range(1, 3));
  auto m10 = log->peek("room10");
  REQUIRE(m10);
  CHECK(m10->epoch == e10);
  CHECK(m10->last_event_id == 3);
  CHECK(m10->first_event_id == 1);
  auto dedup10 = log->recent_dedup("room10", now);
  REQUIRE(dedup10.size() == 1);
  CHECK(dedup10[0].key == "u:c");

  // And all of it survives a reopen.
  auto before = ids_of(log->read_after("room1", 0, 100));
  auto meta = *log->peek("room1");
  log.reset();
  log = sb::open_rocksdb_log(o);
  CHECK(ids_of(log->read_after("room1", 0, 100)) == before);
  auto again = log->peek("room1");
  REQUIRE(again);
  CHECK(again->epoch == meta.epoch);
  CHECK(again->last_event_id == meta.last_event_id);
  CHECK(ids_of(log->read_after("room10", 0, 100)) == range(1, 3));
}

TEST_CASE("event log: truncate_after drops the tail only, in this channel only") {
  temp_dir d;
  auto o = options(d);
  auto log = sb::open_rocksdb_log(o);
  auto e1 = log->open("room1").epoch;
  auto e10 = log->open("room10").epoch;
  REQUIRE(append(*log, "room1", e1, 1, 10).empty());
  REQUIRE(append(*log, "room10", e10, 1, 10).empty());

  SUBCASE("with no records last_event_id becomes the meta's") {
    REQUIRE(submit(*log, truncate_request("room1", e1, 6, 6)).empty());
    CHECK(ids_of(log->read_after("room1", 0, 100)) == range(1, 6));
    CHECK(log->get("room1", 6));
    CHECK_FALSE(log->get("room1", 7));
    CHECK_FALSE(log->get("room1", 10));
    CHECK(log->read_after("room1", 6, 100).empty());
    CHECK(ids_of(log->read_before("room1", 100, 100)) == range(1, 6));
    auto m = log->peek("room1");
    REQUIRE(m);
    CHECK(m->epoch == e1);
    CHECK(m->last_event_id == 6);
    CHECK(m->first_event_id == 1);
    // The channel continues after the cut.
    REQUIRE(append(*log, "room1", e1, 7, 1).empty());
    CHECK(ids_of(log->read_after("room1", 0, 100)) == range(1, 7));
    CHECK(log->peek("room1")->last_event_id == 7);
  }

  SUBCASE("with records they replace the dropped tail") {
    REQUIRE(submit(*log, truncate_request("room1", e1, 4, 6,
                                          {{5, 9000, "{\"theirs\":5}"}, {6, 9001, "{\"theirs\":6}"}}))
                .empty());
    auto all = log->read_after("room1", 0, 100);
    CHECK(ids_of(all) == range(1, 6));
    REQUIRE(all.size() == 6);
    CHECK(all[3].payload == "{\"n\":4}");  // kept
    CHECK(all[4].payload == "{\"theirs\":5}");
    CHECK(all[5].timestamp_ms == 9001);
    CHECK_FALSE(log->get("room1", 7));
    CHECK(log->peek("room1")->last_event_id == 6);
  }

  SUBCASE("after 0 drops every event") {
    REQUIRE(submit(*log, truncate_request("room1", e1, 0, 0)).empty());
    CHECK(log->read_after("room1", 0, 100).empty());
    auto m = log->peek("room1");
    REQUIRE(m);
    CHECK(m->epoch == e1);
    CHECK(m->last_event_id == 0);
    CHECK(m->first_event_id == 0);
  }

  SUBCASE("after the last id drops nothing") {
    REQUIRE(submit(*log, truncate_request("room1", e1, 10, 10)).empty());
    CHECK(ids_of(log->read_after("room1", 0, 100)) == range(1, 10));
    CHECK(log->peek("room1")->last_event_id == 10);
  }

  CHECK(ids_of(log->read_after("room10", 0, 100)) == range(1, 10));
  auto m10 = log->peek("room10");
  REQUIRE(m10);
  CHECK(m10->epoch == e10);
  CHECK(m10->last_event_id == 10);

  // The cut is durable.
  auto before = ids_of(log->read_after("room1", 0, 100));
  auto last = log->peek("room1")->last_event_id;
  log.reset();
  log = sb::open_rocksdb_log(o);
  CHECK(ids_of(log->read_after("room1", 0, 100)) == before);
  CHECK(log->peek("room1")->last_event_id == last);
  CHECK(ids_of(log->read_after("room10", 0, 100)) == range(1, 10));
}

TEST_CASE("event log: the term history is kept in the meta, across a reopen") {
  temp_dir d;
  std::vector<sb::term_start> terms{{{3, "node-a"}, 1}, {{7, "node-b"}, 4}};
  {
    auto log = sb::open_rocksdb_log(options(d));
    auto e = log->open("room").epoch;
    CHECK_FALSE(log->peek("room"));  // nothing is stored before the first event
    auto r = truncate_request("room", e, 0, 0, {{1, 1, "{}"}, {2, 1, "{}"}, {3, 1, "{}"}, {4, 1, "{}"}});
    r.terms = terms;
    REQUIRE(submit(*log, std::move(r)).empty());
    CHECK(log->peek("room")->terms == terms);
  }
  auto log = sb::open_rocksdb_log(options(d));
  auto m = log->peek("room");
  REQUIRE(m);
  CHECK(m->terms == terms);
  CHECK(m->last_event_id == 4);
  // An append that replaces the history (a replica taking a primary's).
  auto r = truncate_request("room", m->epoch, 2, 2, {});
  r.terms = {{{9, "node-c"}, 1}};
  REQUIRE(submit(*log, std::move(r)).empty());
  CHECK(log->peek("room")->terms == std::vector<sb::term_start>{{{9, "node-c"}, 1}});
  CHECK(log->peek("room")->last_event_id == 2);
}
