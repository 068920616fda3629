// Event log benchmark: append throughput under group commit and replay read
// speed, straight against storage/ (no network, no actors).
//
//   build/tests/log_bench [--sync 0|1] [--channels N] [--seconds S] [--dir D]
//
// Each channel keeps one append in flight, as a channel actor does, so the
// writer thread batches one event per waiting channel into each commit.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "storage/event_log.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

struct args {
  bool sync = true;
  int channels = 64;
  double seconds = 3;
  std::string dir = "/tmp/sb-log-bench";
};

args parse(int argc, char** argv) {
  args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    std::string v = argv[i + 1];
    if (k == "--sync") a.sync = v != "0";
    else if (k == "--channels") a.channels = std::atoi(v.c_str());
    else if (k == "--seconds") a.seconds = std::atof(v.c_str());
    else if (k == "--dir") a.dir = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      std::exit(2);
    }
  }
  if (a.channels < 1 || a.seconds <= 0) {
    std::fprintf(stderr, "--channels and --seconds must be positive\n");
    std::exit(2);
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  auto a = parse(argc, argv);
  std::filesystem::remove_all(a.dir);
  sb::log_options o;
  o.dir = a.dir;
  o.sync = a.sync;
  o.trim_interval_ms = 3600 * 1000;
  auto log = sb::open_rocksdb_log(o);
  const std::string payload(200, 'x');

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> appended{0};
  std::vector<std::thread> writers;
  auto start = clock_type::now();
  for (int c = 0; c < a.channels; ++c) {
    writers.emplace_back([&, c] {
      auto ch = "bench:" + std::to_string(c);
      auto epoch = log->open(ch).epoch;
      std::mutex mu;
      std::condition_variable cv;
      for (uint64_t id = 1; !stop; ++id) {
        bool done = false;
        sb::append_request r;
        r.channel = ch;
        r.epoch = epoch;
        r.records.push_back({id, 0, payload});
        r.done = [&](const std::string&) {
          std::lock_guard lk(mu);
          done = true;
          cv.notify_one();
        };
        log->append(std::move(r));
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return done; });
        appended++;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(a.seconds));
  stop = true;
  for (auto& t : writers) t.join();
  double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  auto st = log->statistics();
  std::printf("append: %llu events in %.2f s = %.0f events/s, %llu commits (%.1f events/commit), "
              "sync=%d, channels=%d, 200-byte payloads\n",
              static_cast<unsigned long long>(appended.load()), secs, appended / secs,
              static_cast<unsigned long long>(st.commits),
              st.commits ? double(st.events) / double(st.commits) : 0.0, a.sync ? 1 : 0,
              a.channels);

  auto replay_start = clock_type::now();
  uint64_t read = 0;
  for (int c = 0; c < a.channels; ++c) {
    auto ch = "bench:" + std::to_string(c);
    uint64_t after = 0;
    while (true) {
      auto chunk = log->read_after(ch, after, 1000);
      if (chunk.empty()) break;
      read += chunk.size();
      after = chunk.back().event_id;
    }
  }
  double rsecs = std::chrono::duration<double>(clock_type::now() - replay_start).count();
  std::printf("replay: %llu events read in %.3f s = %.0f events/s (chunks of 1000)\n",
              static_cast<unsigned long long>(read), rsecs, read / rsecs);
  log.reset();
  std::filesystem::remove_all(a.dir);
  return 0;
}
