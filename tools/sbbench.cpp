// sbbench: Switchboard's load generator. Scenarios: fan-out (rooms of
// subscribers, a publisher on a WebSocket or the server API, every message
// carrying its send time), idle connections, a reconnect storm with replay,
// durable API publishes, and the kernel's own floor for fan-out on this
// machine. Each reports JSON and a summary; fan-out checks that nothing is
// lost, duplicated or out of order.
//
// One thread, one Asio event loop, raw sockets with minimal WebSocket
// framing: a received frame costs a header parse and a substring search, so
// the tool does not cap what it measures (its own CPU use is reported).
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <nlohmann/json.hpp>

#include "core/time.hpp"
#include "net/jwt.hpp"

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

constexpr const char* usage = R"(usage: sbbench SCENARIO [options]

Scenarios:
  fanout   N subscribers spread over --channels R rooms (default 1), one
           publisher (on /ws/, subscribed to every room) sending M messages
           to each room
  idle     N authenticated idle connections (each on its own /ws/notifications/):
           the server's memory per connection (needs --server-pid)
  replay   M messages stored in one room, then N clients reconnecting at once
           with ?last_event_id so that each replays --replay K of them
  publish  durable publishes through the server API: N keep-alive connections
           (--subscribers), each posting to its own channels, for --seconds S
  floor    no server: N loopback TCP connections inside sbbench; a thread on
           CPU 0 writes one 120-byte frame to each, M times at --rate R, and a
           thread on CPU 1 reads them. The latency any one-core server that
           writes each socket by itself cannot beat on this machine

  --host H            server address (default 127.0.0.1)
  --port P            server port (default 8000)
  --via ws|api        fanout: publish on a WebSocket (default) or through
                      POST /api/publish on --window keep-alive connections
                      (at least one per room), each answered once durable
  --publish-port P    fanout: connect the publisher to this port (another node
                      of a cluster: cross-node fan-out)
  --secret S          JWT secret (default $SWITCHBOARD_JWT_SECRET or dev-secret-change-me)
  --subscribers N     subscribers, connections or reconnecting clients (default 1000)
  --messages M        messages to publish (to each room) (default 2000)
  --channels R        fanout: rooms to spread subscribers over (default 1)
  --rate R            messages a second, 0 = as fast as the server takes them (default 0)
  --window W          at most W messages in flight at max rate (default 64)
  --sources A,B,...   loopback source addresses to spread connections over
  --server-pid PID    report the server's CPU time and peak RSS
  --timeout S         give up S seconds after the last send (default 20)
  --replay K          replay: events each client replays (default 100)
  --path P            idle: the route to connect to (default /ws/notifications/;
                      e.g. /ws/chat/lobby/ puts every connection in one room)
  --api-key K         publish: the API key (default $SWITCHBOARD_API_KEYS' first, or dev-api-key)
  --seconds S         publish: how long to run (default 5)
  --json              print only the JSON report

The server must allow the publisher's rate: start it with a high
limits.rate_limit (e.g. --limits.rate_limit=1000000 --limits.rate_limit_burst=1000000).
Exit codes: 0 ok, 1 messages lost, duplicated or out of order, 2 bad arguments,
3 could not connect.
)";

struct options {
  std::string host = "127.0.0.1";
  uint16_t port = 8000;
  uint16_t publish_port = 0;  // fanout: the publisher's node, when not --port
  std::string secret;
  int subscribers = 1000;
  int messages = 2000;
  double rate = 0;
  int window = 64;
  std::vector<std::string> sources;
  int server_pid = 0;
  double timeout = 20;
  int replay = 100;
  int channels = 1;
  std::string api_key;
  double seconds = 5;
  std::string idle_path = "/ws/notifications/";
  bool via_api = false;  // fanout: publish through POST /api/publish
  bool json_only = false;
  std::string scenario;
};

[[noreturn]] void bad_args(const std::string& why) {
  std::fprintf(stderr, "sbbench: %s (try --help)\n", why.c_str());
  std::exit(2);
}

long number(const std::string& opt, const std::string& v, long min, long max) {
  char* end = nullptr;
  long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || n < min || n > max)
    bad_args(opt + " must be a whole number from " + std::to_string(min) + " to " +
             std::to_string(max));
  return n;
}

options parse(int argc, char** argv) {
  options o;
  if (const char* s = std::getenv("SWITCHBOARD_JWT_SECRET")) o.secret = s;
  if (o.secret.empty()) o.secret = "dev-secret-change-me";
  if (const char* k = std::getenv("SWITCHBOARD_API_KEYS")) o.api_key = std::string{k}.substr(0, std::string{k}.find(','));
  if (o.api_key.empty()) o.api_key = "dev-api-key";
  if (argc < 2 || std::string{argv[1]} == "--help") {
    std::fputs(usage, argc < 2 ? stderr : stdout);
    std::exit(argc < 2 ? 2 : 0);
  }
  o.scenario = argv[1];
  if (o.scenario != "fanout" && o.scenario != "idle" && o.scenario != "replay" &&
      o.scenario != "publish" && o.scenario != "floor")
    bad_args("unknown scenario '" + o.scenario + "'");
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (k == "--json") {
      o.json_only = true;
      continue;
    }
    if (i + 1 >= argc) bad_args(k + " needs a value");
    std::string v = argv[++i];
    if (k == "--host") o.host = v;
    else if (k == "--port") o.port = static_cast<uint16_t>(number(k, v, 1, 65535));
    else if (k == "--publish-port") o.publish_port = static_cast<uint16_t>(number(k, v, 1, 65535));
    else if (k == "--secret") o.secret = v;
    else if (k == "--subscribers") o.subscribers = static_cast<int>(number(k, v, 1, 1000000));
    else if (k == "--messages") o.messages = static_cast<int>(number(k, v, 1, 100000000));
    else if (k == "--rate") o.rate = static_cast<double>(number(k, v, 0, 100000000));
    else if (k == "--window") o.window = static_cast<int>(number(k, v, 1, 1000000));
    else if (k == "--server-pid") o.server_pid = static_cast<int>(number(k, v, 1, 1 << 30));
    else if (k == "--path") o.idle_path = v;
    else if (k == "--via") {
      if (v != "ws" && v != "api") bad_args("--via must be ws or api");
      o.via_api = v == "api";
    }
    else if (k == "--api-key") o.api_key = v;
    else if (k == "--seconds") o.seconds = static_cast<double>(number(k, v, 1, 3600));
    else if (k == "--channels") o.channels = static_cast<int>(number(k, v, 1, 100000));
    else if (k == "--replay") o.replay = static_cast<int>(number(k, v, 1, 100000000));
    else if (k == "--timeout") o.timeout = static_cast<double>(number(k, v, 1, 3600));
    else if (k == "--sources") {
      std::stringstream in(v);
      for (std::string s; std::getline(in, s, ',');)
        if (!s.empty()) o.sources.push_back(s);
    } else bad_args("unknown option " + k);
  }
  return o;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch())
      .count();
}

std::string token_for(const options& o, const std::string& user) {  // chat:* access
  auto t = sb::now_s();
  nlohmann::json claims = {{"user_id", user}, {"exp", t + 3600}, {"channels", {"chat:*"}}};
  return sb::jwt::sign(claims.dump(), o.secret);
}

// A masked client text frame (mask key 0: legal, and keeps the payload readable).
std::string client_frame(const std::string& payload) {
  std::string f;
  f.push_back(static_cast<char>(0x81));
  auto n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<char>(0x80 | n));
  } else if (n < 65536) {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xff));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int s = 56; s >= 0; s -= 8) f.push_back(static_cast<char>((n >> s) & 0xff));
  }
  f.append(4, '\0');
  f += payload;
  return f;
}

struct stats {
  uint64_t received = 0;
  uint64_t lost = 0;
  uint64_t duplicated = 0;
  uint64_t out_of_order = 0;
  std::vector<uint32_t> latency_us;
  int finished = 0;
  int failed = 0;
};

class client : public std::enable_shared_from_this<client> {
 public:
  client(asio::io_context& ioc, const options& o, stats& st, int index)
      : socket_(ioc), opts_(o), st_(st), index_(index), buf_(16 * 1024) {}

  std::function<void()> on_ready;
  std::function<void(std::string_view)> on_text;  // replaces the fan-out bookkeeping
  bool ready = false;

  void start(const std::string& path) {
    tcp::endpoint ep{asio::ip::make_address(opts_.host), opts_.port};
    socket_.open(tcp::v4());
    if (!opts_.sources.empty()) {
      auto& src = opts_.sources[static_cast<std::size_t>(index_) % opts_.sources.size()];
      socket_.bind({asio::ip::make_address(src), 0});
    }
    socket_.set_option(tcp::no_delay(true));
    auto request = std::make_shared<std::string>(
        "GET " + path + " HTTP/1.1\r\nHost: " + opts_.host + "\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: c2JiZW5jaGtleTEyMzQ1Ng==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n");
    socket_.async_connect(ep, [self = shared_from_this(), request](boost::system::error_code ec) {
      if (ec) return self->fail("connect: " + ec.message());
      asio::async_write(self->socket_, asio::buffer(*request),
                        [self, request](boost::system::error_code ec, std::size_t) {
                          if (ec) return self->fail("handshake: " + ec.message());
                          self->read();
                        });
    });
  }

  void send(std::string frame) {
    bool idle = out_.empty();
    out_.push_back(std::move(frame));
    if (idle) write();
  }

  uint64_t received_count = 0;

 private:
  void write() {
    asio::async_write(socket_, asio::buffer(out_.front()),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        if (ec) return self->fail("write: " + ec.message());
                        self->out_.erase(self->out_.begin());
                        if (!self->out_.empty()) self->write();
                      });
  }

  void read() {
    if (used_ == buf_.size()) buf_.resize(buf_.size() * 2);
    socket_.async_read_some(
        asio::buffer(buf_.data() + used_, buf_.size() - used_),
        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
          if (ec) return self->fail("read: " + ec.message());
          self->used_ += n;
          self->consume();
          self->read();
        });
  }

  void consume() {
    std::size_t pos = 0;
    if (!handshaken_) {
      auto* end = static_cast<const char*>(memmem(buf_.data(), used_, "\r\n\r\n", 4));
      if (!end) return;
      if (std::strncmp(buf_.data(), "HTTP/1.1 101", 12) != 0)
        return fail("handshake refused: " + std::string(buf_.data(), std::min<std::size_t>(used_, 80)));
      handshaken_ = true;
      pos = static_cast<std::size_t>(end - buf_.data()) + 4;
    }
    while (used_ - pos >= 2) {
      auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + pos);
      std::size_t len = p[1] & 0x7f;
      std::size_t head = 2;
      if (len == 126) {
        if (used_ - pos < 4) break;
        len = (std::size_t{p[2]} << 8) | p[3];
        head = 4;
      } else if (len == 127) {
        if (used_ - pos < 10) break;
        len = 0;
        for (int i = 2; i < 10; ++i) len = (len << 8) | p[i];
        head = 10;
      }
      if (used_ - pos < head + len) break;
      on_frame(p[0] & 0x0f, std::string_view(buf_.data() + pos + head, len));
      pos += head + len;
    }
    std::memmove(buf_.data(), buf_.data() + pos, used_ - pos);
    used_ -= pos;
  }

  void on_frame(int op, std::string_view payload) {
    if (op == 0x9) {  // ping: answer, or the server closes us
      send(std::string("\x8a\x80\0\0\0\0", 6));
      return;
    }
    if (op == 0x8) return fail("closed by the server");
    if (op != 0x1) return;
    if (!ready && payload.find("\"connection_established\"") != std::string_view::npos) {
      ready = true;
      if (on_ready) on_ready();
      return;
    }
    if (on_text) return on_text(payload);
    if (!ready) return;
    auto at = payload.find("\"b:");
    if (at == std::string_view::npos) return;
    const char* s = payload.data() + at + 3;
    char* end = nullptr;
    std::strtoll(s, &end, 10);  // the publisher's sequence number
    long long sent = std::strtoll(end + 1, nullptr, 10);
    // The room's order is the server's: ids 1, 2, 3... (several API
    // connections may publish to one room concurrently).
    auto id_at = payload.find("\"event_id\":");
    long long seq = id_at == std::string_view::npos ? -1 : std::atoll(payload.data() + id_at + 11) - 1;
    st_.latency_us.push_back(static_cast<uint32_t>(std::max<long long>(0, (now_ns() - sent) / 1000)));
    ++st_.received;
    ++received_count;
    if (seq == next_) {
      ++next_;
    } else if (seq < next_) {
      ++st_.duplicated;
    } else {
      ++st_.out_of_order;
      st_.lost += static_cast<uint64_t>(seq - next_);
      next_ = seq + 1;
    }
    if (next_ == opts_.messages) ++st_.finished;
  }

  void fail(const std::string& why) {
    if (failed_) return;
    failed_ = true;
    ++st_.failed;
    if (st_.failed <= 3) std::fprintf(stderr, "sbbench: client %d: %s\n", index_, why.c_str());
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  tcp::socket socket_;
  const options& opts_;
  stats& st_;
  int index_;
  std::vector<char> buf_;
  std::size_t used_ = 0;
  bool handshaken_ = false;
  bool failed_ = false;
  long long next_ = 0;
  std::vector<std::string> out_;
};

struct proc_sample {
  double cpu_s = 0;
  long rss_kb = 0;
  long peak_rss_kb = 0;
};

proc_sample sample_process(int pid) {
  proc_sample p;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), {});
  auto close = text.rfind(')');
  if (close != std::string::npos) {
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    unsigned long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stoul(field);
      if (i == 15) stime = std::stoul(field);
    }
    p.cpu_s = double(utime + stime) / double(sysconf(_SC_CLK_TCK));
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) p.peak_rss_kb = std::stol(line.substr(6));
    if (line.rfind("VmRSS:", 0) == 0) p.rss_kb = std::stol(line.substr(6));
  }
  return p;
}

// Runs `check` every `period` until it returns true, then stops the loop.
void stop_when(asio::io_context& ioc, asio::steady_timer& timer, std::chrono::milliseconds period,
               std::function<bool()> check) {
  if (check()) {
    ioc.stop();
    return;
  }
  timer.expires_after(period);
  timer.async_wait([&ioc, &timer, period, check](boost::system::error_code ec) {
    if (!ec) stop_when(ioc, timer, period, check);
  });
}

// The p-quantile (0..1) of sorted samples; 0 when there are none.
uint32_t percentile(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, static_cast<std::size_t>(p * sorted.size()))];
}

void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

// The percentiles every latency-measuring scenario reports, of sorted samples.
nlohmann::json latency_report(const std::vector<uint32_t>& sorted) {
  return {{"p50", percentile(sorted, 0.5)},   {"p90", percentile(sorted, 0.9)},
          {"p99", percentile(sorted, 0.99)},  {"p99_9", percentile(sorted, 0.999)},
          {"max", percentile(sorted, 1.0)}};
}

double own_cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// One keep-alive HTTP connection to the server API, one request at a time, as
// an app backend's client posts: a body waits until the answer to the one
// before has come (so one connection keeps its events in order).
class api_client : public std::enable_shared_from_this<api_client> {
 public:
  api_client(asio::io_context& ioc, const options& o) : socket_(ioc), o_(o) {}

  std::function<void()> on_connected;
  // `ok`: HTTP 200. `response`: the whole answer, head and body.
  std::function<void(bool ok, std::string_view response, uint32_t latency_us)> on_answer;
  std::function<void(const std::string& why)> on_failed;

  void start() {
    tcp::endpoint ep{asio::ip::make_address(o_.host), o_.port};
    socket_.async_connect(ep, [self = shared_from_this()](boost::system::error_code ec) {
      if (ec) return self->fail("connect: " + ec.message());
      self->socket_.set_option(tcp::no_delay(true));
      if (self->on_connected) self->on_connected();
    });
  }

  void post(const std::string& path, const std::string& body) {
    queue_.push_back("POST " + path + " HTTP/1.1\r\nHost: " + o_.host + "\r\nAuthorization: Bearer " +
                     o_.api_key + "\r\nContent-Type: application/json\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body);
    if (!busy_) next();
  }

 private:
  void next() {
    if (queue_.empty() || failed_) return;
    busy_ = true;
    request_ = std::move(queue_.front());
    queue_.pop_front();
    sent_at_ = now_ns();
    asio::async_write(socket_, asio::buffer(request_),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        if (ec) return self->fail("write: " + ec.message());
                        self->read();
                      });
  }

  void read() {
    if (used_ == sizeof buf_) return fail("response too large");
    socket_.async_read_some(asio::buffer(buf_ + used_, sizeof buf_ - used_),
                            [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                              if (ec) return self->fail("read: " + ec.message());
                              self->used_ += n;
                              self->parse();
                            });
  }

  // A whole response is its head plus Content-Length bytes.
  void parse() {
    std::string_view got(buf_, used_);
    auto end = got.find("\r\n\r\n");
    if (end == std::string_view::npos) return read();
    auto cl = got.find("Content-Length: ");
    std::size_t length = cl == std::string_view::npos ? 0 : std::strtoul(buf_ + cl + 16, nullptr, 10);
    if (used_ < end + 4 + length) return read();
    auto latency = static_cast<uint32_t>((now_ns() - sent_at_) / 1000);
    used_ = 0;
    busy_ = false;
    if (on_answer) on_answer(got.compare(0, 12, "HTTP/1.1 200") == 0, got.substr(0, end + 4 + length), latency);
    if (!busy_) next();
  }

  void fail(const std::string& why) {
    if (failed_) return;
    failed_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
    if (on_failed) on_failed(why);
  }

  tcp::socket socket_;
  const options& o_;
  std::deque<std::string> queue_;
  std::string request_;
  bool busy_ = false;
  bool failed_ = false;
  int64_t sent_at_ = 0;
  char buf_[4096];
  std::size_t used_ = 0;
};

int fanout(const options& o) {
  asio::io_context ioc(1);
  stats st;
  st.latency_us.reserve(static_cast<std::size_t>(o.subscribers) * o.messages);
  auto prefix = "bench-" + std::to_string(getpid()) + "-" + std::to_string(now_ns() % 100000);
  auto room = [&](int r) { return prefix + "-" + std::to_string(r); };
  auto path = [&](int i) {
    return "/ws/chat/" + room(i % o.channels) + "/?token=" + token_for(o, "bench-" + std::to_string(i));
  };
  const int total = o.messages * o.channels;  // the publisher's sends, round robin over rooms

  std::vector<std::shared_ptr<client>> subs;
  int ready = 0;
  options pub_opts = o;
  if (o.publish_port) pub_opts.port = o.publish_port;
  auto publisher = std::make_shared<client>(ioc, pub_opts, st, o.subscribers);
  int sent = 0;
  long long own_seen = 0;
  uint64_t publish_errors = 0;
  std::string first_error;
  clock_type::time_point send_start, last_send;
  asio::steady_timer pacer(ioc);
  asio::steady_timer deadline(ioc);

  // --via api: `window` keep-alive connections (at least one per room), one
  // request in flight on each.
  std::vector<std::shared_ptr<api_client>> posters;
  const int per_room = std::max(1, o.window / o.channels);
  auto send_one = [&] {
    auto channel = "chat:" + room(sent % o.channels);
    auto mark = "b:" + std::to_string(sent / o.channels) + ":" + std::to_string(now_ns());
    if (o.via_api)
      posters[static_cast<std::size_t>(sent % o.channels + o.channels * (sent / o.channels % per_room))]->post(
          "/api/publish",
          "{\"channel\":\"" + channel + "\",\"type\":\"bench\",\"data\":{\"m\":\"" + mark + "\"}}");
    else
      publisher->send(client_frame("{\"type\":\"message\",\"channel\":\"" + channel +
                                   "\",\"message\":\"" + mark + "\"}"));
    ++sent;
    last_send = clock_type::now();
  };
  std::function<void()> pump;  // max rate: keep `window` messages in flight
  pump = [&] {
    while (sent < total && sent - own_seen < o.window) send_one();
  };
  std::function<void()> tick;  // fixed rate
  tick = [&] {
    double elapsed = std::chrono::duration<double>(clock_type::now() - send_start).count();
    int due = std::min(total, static_cast<int>(elapsed * o.rate * o.channels) + 1);
    while (sent < due) send_one();
    if (sent < total) {
      pacer.expires_after(std::chrono::microseconds(500));
      pacer.async_wait([&](boost::system::error_code ec) {
        if (!ec) tick();
      });
    }
  };
  auto all_done = [&] { return st.finished + st.failed >= o.subscribers; };
  auto finished = [&] {
    bool timed_out = sent == total &&
                     clock_type::now() - last_send > std::chrono::duration<double>(o.timeout);
    return all_done() || timed_out;
  };

  double cpu_before = 0;
  proc_sample server_before;
  auto begin = [&] {
    send_start = clock_type::now();
    cpu_before = own_cpu_s();  // the run itself, not the connecting
    if (o.server_pid) server_before = sample_process(o.server_pid);
    if (o.rate == 0) pump();
    else tick();
  };
  // The publisher's flow control: its own messages coming back (WebSocket)
  // or the API's answers. A refused publish is lost for every subscriber:
  // say why.
  auto acknowledged = [&] {
    ++own_seen;
    if (o.rate == 0) pump();
  };
  auto refused = [&](std::string_view why) {
    if (publish_errors++ == 0) first_error = std::string(why.substr(0, 300));
  };
  int subscribed = 0;
  publisher->on_text = [&](std::string_view payload) {
    if (payload.find("\"b:") != std::string_view::npos) return acknowledged();
    if (payload.find("\"type\":\"error\"") != std::string_view::npos) return refused(payload);
    if (payload.find("\"subscribed\"") != std::string_view::npos && ++subscribed == o.channels)
      begin();
  };
  publisher->on_ready = [&] {
    for (int r = 0; r < o.channels; ++r)
      publisher->send(client_frame("{\"type\":\"subscribe\",\"channel\":\"chat:" + room(r) + "\"}"));
  };
  int connected = 0;
  auto start_publisher = [&] {
    if (!o.via_api) return publisher->start("/ws/?token=" + token_for(o, "bench-publisher"));
    for (int i = 0; i < o.channels * per_room; ++i) {
      auto p = std::make_shared<api_client>(ioc, pub_opts);
      p->on_connected = [&] {
        if (++connected == o.channels * per_room) begin();
      };
      p->on_answer = [&](bool good, std::string_view response, uint32_t) {
        good ? acknowledged() : refused(response);
      };
      p->on_failed = [&](const std::string& why) { refused(why); };
      posters.push_back(p);
      p->start();
    }
  };
  for (int i = 0; i < o.subscribers; ++i) {
    auto c = std::make_shared<client>(ioc, o, st, i);
    c->on_ready = [&] {
      if (++ready == o.subscribers) start_publisher();
    };
    c->start(path(i));
    subs.push_back(c);
  }
  stop_when(ioc, deadline, std::chrono::milliseconds(10), finished);
  ioc.run();
  double secs = std::chrono::duration<double>(clock_type::now() - send_start).count();
  double cpu = own_cpu_s() - cpu_before;
  auto server_after = o.server_pid ? sample_process(o.server_pid) : proc_sample{};

  if (ready < o.subscribers) {
    std::fprintf(stderr, "sbbench: only %d of %d subscribers connected\n", ready, o.subscribers);
    return 3;
  }
  auto& lat = st.latency_us;
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) { return percentile(lat, p); };
  uint64_t expected = static_cast<uint64_t>(o.subscribers) * static_cast<uint64_t>(o.messages);
  uint64_t missing = expected > st.received ? expected - st.received : 0;
  nlohmann::json report = {
      {"scenario", "fanout"},
      {"subscribers", o.subscribers},
      {"channels", o.channels},
      {"messages", o.messages},
      {"rate", o.rate},
      {"publisher", o.via_api ? "api" : "ws"},
      {"deliveries", st.received},
      {"seconds", secs},
      {"deliveries_per_second", st.received / secs},
      {"latency_us", latency_report(lat)},
      {"lost", st.lost + missing},
      {"duplicated", st.duplicated},
      {"out_of_order", st.out_of_order},
      {"clients_failed", st.failed},
      {"publish_errors", publish_errors},
      {"bench_cpu_percent", 100 * cpu / secs},
  };
  if (!first_error.empty()) report["first_publish_error"] = first_error;
  if (o.server_pid) {
    report["server_cpu_percent"] = 100 * (server_after.cpu_s - server_before.cpu_s) / secs;
    report["server_peak_rss_kb"] = server_after.peak_rss_kb;
  }
  if (o.json_only) {
    std::printf("%s\n", report.dump().c_str());
  } else {
    std::printf("%s\n", report.dump(2).c_str());
    std::printf("fanout: %d subscribers in %d room(s) x %d messages: %.0f deliveries/s over %.2f s; latency "
                "p50 %u us, p99 %u us, max %u us; lost %llu, duplicated %llu, out of order %llu; "
                "sbbench CPU %.0f%%%s\n",
                o.subscribers, o.channels, o.messages, st.received / secs, secs, pct(0.5), pct(0.99),
                pct(1.0),
                static_cast<unsigned long long>(st.lost + missing),
                static_cast<unsigned long long>(st.duplicated),
                static_cast<unsigned long long>(st.out_of_order), 100 * cpu / secs,
                cpu / secs > 0.9 ? " (sbbench was the bottleneck)" : "");
  }
  bool clean = st.lost + missing == 0 && st.duplicated == 0 && st.out_of_order == 0;
  return clean ? 0 : 1;
}

// Opens N connections, each its own user (by default on /ws/notifications/: a
// connection, a user and a channel actor each), and reports the server's
// memory per connection.
int idle(const options& o) {
  if (!o.server_pid) bad_args("idle needs --server-pid");
  asio::io_context ioc(1);
  stats st;
  auto before = sample_process(o.server_pid);
  int ready = 0;
  std::vector<std::shared_ptr<client>> conns;
  auto start = clock_type::now();
  asio::steady_timer check(ioc);
  for (int i = 0; i < o.subscribers; ++i) {
    auto c = std::make_shared<client>(ioc, o, st, i);
    c->on_ready = [&] { ++ready; };
    c->start(o.idle_path + "?token=" +
             token_for(o, "idle-" + std::to_string(getpid()) + "-" + std::to_string(i)));
    conns.push_back(c);
  }
  stop_when(ioc, check, std::chrono::milliseconds(20), [&] {
    return ready + st.failed >= o.subscribers ||
           clock_type::now() - start > std::chrono::duration<double>(o.timeout);
  });
  ioc.run();
  double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  std::this_thread::sleep_for(std::chrono::seconds(1));  // let the server settle
  auto after = sample_process(o.server_pid);
  long rss_before = before.rss_kb, rss_after = after.rss_kb;
  double per_conn_kib = ready ? double(rss_after - rss_before) / ready : 0;
  nlohmann::json report = {{"scenario", "idle"},
                           {"connections", ready},
                           {"failed", st.failed},
                           {"connect_seconds", secs},
                           {"server_rss_before_kib", rss_before},
                           {"server_rss_after_kib", rss_after},
                           {"server_kib_per_connection", per_conn_kib},
                           {"server_cpu_seconds", after.cpu_s - before.cpu_s}};
  std::printf("%s\n", o.json_only ? report.dump().c_str() : report.dump(2).c_str());
  if (!o.json_only)
    std::printf("idle: %d connections, server RSS %ld -> %ld KiB: %.2f KiB per connection\n",
                ready, rss_before, rss_after, per_conn_kib);
  return ready == o.subscribers ? 0 : 3;
}

// Stores M messages in a room, then reconnects N clients at once with
// last_event_id = M - K: each must replay exactly the last K, in order, then
// get replay_complete.
int replay(const options& o) {
  if (o.replay > o.messages) bad_args("--replay must not exceed --messages");
  asio::io_context ioc(1);
  stats st;
  auto room = "replay-" + std::to_string(getpid()) + "-" + std::to_string(now_ns() % 100000);
  auto path = [&](int i, const std::string& query) {
    return "/ws/chat/" + room + "/?token=" + token_for(o, "replay-" + std::to_string(i)) + query;
  };
  auto publisher = std::make_shared<client>(ioc, o, st, o.subscribers);
  int sent = 0;
  long long own_seen = 0;
  int complete = 0, bad = 0;
  uint64_t replayed = 0;
  clock_type::time_point storm_start;
  std::vector<std::shared_ptr<client>> clients;
  asio::steady_timer check(ioc);
  long long since = o.messages - o.replay;
  // Clients that reconnect already hold their tokens: minting them is not
  // part of the storm.
  std::vector<std::string> paths;
  for (int i = 0; i < o.subscribers; ++i)
    paths.push_back(path(i, "&last_event_id=" + std::to_string(since)));
  double cpu_before = 0;
  proc_sample server_before;
  auto start_storm = [&] {
    storm_start = clock_type::now();
    cpu_before = own_cpu_s();
    if (o.server_pid) server_before = sample_process(o.server_pid);
    for (int i = 0; i < o.subscribers; ++i) {
      auto c = std::make_shared<client>(ioc, o, st, i);
      auto expected = std::make_shared<long long>(since + 1);
      c->on_text = [&, expected](std::string_view payload) {
        if (payload.find("\"replay_complete\"") != std::string_view::npos) {
          if (*expected != o.messages + 1) ++bad;
          ++complete;
          return;
        }
        if (payload.find("\"replayed\":true") == std::string_view::npos) return;
        auto at = payload.find("\"event_id\":");
        long long id = at == std::string_view::npos ? -1 : std::atoll(payload.data() + at + 11);
        if (id != *expected) ++bad;
        *expected = id + 1;
        ++replayed;
      };
      c->start(paths[i]);
      clients.push_back(c);
    }
  };
  auto send_window = [&] {
    while (sent < o.messages && sent - own_seen < o.window)
      publisher->send(client_frame("{\"type\":\"message\",\"message\":\"b:" +
                                   std::to_string(sent++) + ":0\"}"));
  };
  publisher->on_text = [&](std::string_view payload) {
    if (payload.find("\"content\":\"b:") == std::string_view::npos) return;
    if (++own_seen == o.messages) start_storm();
    send_window();
  };
  publisher->on_ready = send_window;
  publisher->start(path(o.subscribers, ""));
  auto start = clock_type::now();
  stop_when(ioc, check, std::chrono::milliseconds(5), [&] {
    return complete + st.failed >= o.subscribers ||
           clock_type::now() - start > std::chrono::duration<double>(o.timeout);
  });
  ioc.run();
  double secs = std::chrono::duration<double>(clock_type::now() - storm_start).count();
  double cpu = own_cpu_s() - cpu_before;
  nlohmann::json report = {{"scenario", "replay"},
                           {"clients", o.subscribers},
                           {"replay_each", o.replay},
                           {"completed", complete},
                           {"replayed_events", replayed},
                           {"seconds", secs},
                           {"replayed_per_second", replayed / secs},
                           {"out_of_order_or_missing", bad},
                           {"clients_failed", st.failed},
                           {"bench_cpu_percent", 100 * cpu / secs}};
  if (o.server_pid) {
    auto server_after = sample_process(o.server_pid);
    report["server_cpu_percent"] = 100 * (server_after.cpu_s - server_before.cpu_s) / secs;
    report["server_peak_rss_kb"] = server_after.peak_rss_kb;
  }
  std::printf("%s\n", o.json_only ? report.dump().c_str() : report.dump(2).c_str());
  if (!o.json_only)
    std::printf("replay: %d clients each replaying %d events: all done in %.3f s (%.0f events/s), "
                "%d bad; sbbench CPU %.0f%%%s\n",
                complete, o.replay, secs, replayed / secs, bad, 100 * cpu / secs,
                cpu / secs > 0.9 ? " (sbbench was the bottleneck)" : "");
  bool clean = complete == o.subscribers && bad == 0 &&
               replayed == static_cast<uint64_t>(o.subscribers) * o.replay;
  return clean ? 0 : 1;
}

int publish(const options& o) {
  asio::io_context ioc(1);
  std::vector<uint32_t> latency;
  uint64_t ok = 0, failed = 0;
  bool stop = false;
  auto server_before = o.server_pid ? sample_process(o.server_pid) : proc_sample{};
  auto cpu_before = own_cpu_s();
  std::vector<std::shared_ptr<api_client>> clients;
  for (int i = 0; i < o.subscribers; ++i) {
    auto c = std::make_shared<api_client>(ioc, o);
    auto post_next = [c = c.get(), i, n = std::make_shared<uint64_t>(0), &stop] {
      if (stop) return;
      auto k = (*n)++;
      c->post("/api/publish", "{\"channel\":\"bench:p" + std::to_string(i) + "-" +
                                  std::to_string(k % 8) + "\",\"type\":\"tick\",\"data\":{\"n\":" +
                                  std::to_string(k) + "}}");
    };
    c->on_connected = post_next;
    c->on_answer = [&, post_next](bool good, std::string_view, uint32_t us) {
      latency.push_back(us);
      ++(good ? ok : failed);
      post_next();
    };
    c->on_failed = [&](const std::string&) { ++failed; };
    c->start();
    clients.push_back(c);
  }
  asio::steady_timer timer(ioc);
  timer.expires_after(std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(o.seconds)));
  timer.async_wait([&](boost::system::error_code) {
    stop = true;
    ioc.stop();
  });
  auto start = clock_type::now();
  ioc.run();
  double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  std::sort(latency.begin(), latency.end());
  auto pct = [&](double p) { return percentile(latency, p); };
  nlohmann::json report = {{"scenario", "publish"},
                           {"connections", o.subscribers},
                           {"acknowledged", ok},
                           {"failed", failed},
                           {"seconds", secs},
                           {"acknowledged_per_second", ok / secs},
                           {"latency_us", {{"p50", pct(0.5)}, {"p99", pct(0.99)}, {"max", pct(1.0)}}},
                           {"bench_cpu_percent", 100 * (own_cpu_s() - cpu_before) / secs}};
  if (o.server_pid)
    report["server_cpu_percent"] =
        100 * (sample_process(o.server_pid).cpu_s - server_before.cpu_s) / secs;
  std::printf("%s\n", o.json_only ? report.dump().c_str() : report.dump(2).c_str());
  if (!o.json_only)
    std::printf("publish: %d connections: %.0f durable publishes/s, p50 %u us, p99 %u us, %llu failed\n",
                o.subscribers, ok / secs, pct(0.5), pct(0.99), static_cast<unsigned long long>(failed));
  return failed == 0 && ok > 0 ? 0 : 1;
}

// The kernel's floor for fan-out here: what one core spends, and what
// receivers wait, when every frame is a socket write of its own (the case
// at a steady rate, when no frames queue up to be written together).
int kernel_floor(const options& o) {
  if (o.rate <= 0) bad_args("floor needs --rate");
  asio::io_context ioc(1);
  tcp::acceptor acceptor(ioc, {asio::ip::make_address(o.host), 0});
  std::vector<int> senders, readers;
  for (int i = 0; i < o.subscribers; ++i) {
    int r = ::socket(AF_INET, SOCK_STREAM, 0);
    auto ep = acceptor.local_endpoint();
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(ep.port());
    a.sin_addr.s_addr = htonl(ep.address().to_v4().to_uint());
    if (r < 0 || ::connect(r, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      std::fprintf(stderr, "sbbench: floor: connection %d: %s\n", i, std::strerror(errno));
      return 3;
    }
    int s = ::accept(acceptor.native_handle(), nullptr, nullptr);
    if (s < 0) {
      std::fprintf(stderr, "sbbench: floor: accepting connection %d: %s\n", i, std::strerror(errno));
      return 3;
    }
    int one = 1;
    ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    senders.push_back(s);
    readers.push_back(r);
  }
  std::atomic<int64_t> round_start{0};
  std::atomic<bool> stop{false};
  std::vector<uint32_t> latency;
  latency.reserve(static_cast<std::size_t>(o.subscribers) * o.messages);
  std::thread reader([&] {
    pin_to_cpu(1);
    int ep = epoll_create1(0);
    for (int fd : readers) {
      epoll_event e{};
      e.events = EPOLLIN;
      e.data.fd = fd;
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    }
    std::vector<epoll_event> events(1024);
    char buf[4096];
    while (!stop) {
      int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
      for (int i = 0; i < n; ++i) {
        auto got = ::read(events[i].data.fd, buf, sizeof buf);
        auto us = static_cast<uint32_t>((now_ns() - round_start.load()) / 1000);
        for (long f = 0; f < got / 120; ++f) latency.push_back(us);
      }
    }
    ::close(ep);
  });
  pin_to_cpu(0);
  char frame[120] = {};
  timespec cpu0{}, cpu1{};
  double send_cpu_s = 0;
  auto period = std::chrono::duration<double>(1.0 / o.rate);
  for (int m = 0; m < o.messages; ++m) {
    std::this_thread::sleep_for(period);
    round_start = now_ns();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
    for (int fd : senders) ::send(fd, frame, sizeof frame, 0);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
    send_cpu_s += double(cpu1.tv_sec - cpu0.tv_sec) + double(cpu1.tv_nsec - cpu0.tv_nsec) / 1e9;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  reader.join();
  for (int fd : senders) ::close(fd);
  for (int fd : readers) ::close(fd);
  std::sort(latency.begin(), latency.end());
  auto pct = [&](double p) { return percentile(latency, p); };
  double sends = double(o.subscribers) * o.messages;
  nlohmann::json report = {
      {"scenario", "floor"},
      {"connections", o.subscribers},
      {"rounds", o.messages},
      {"rate", o.rate},
      {"deliveries", latency.size()},
      {"send_cpu_us_each", 1e6 * send_cpu_s / sends},
      {"latency_us", latency_report(latency)}};
  std::printf("%s\n", o.json_only ? report.dump().c_str() : report.dump(2).c_str());
  if (!o.json_only)
    std::printf("floor: %d loopback connections x %d rounds at %.0f/s: %.2f us of CPU per send; "
                "latency p50 %u us, p99 %u us, max %u us\n",
                o.subscribers, o.messages, o.rate, 1e6 * send_cpu_s / sends, pct(0.5), pct(0.99),
                pct(1.0));
  return latency.size() == static_cast<std::size_t>(sends) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  auto o = parse(argc, argv);
  if (o.scenario == "idle") return idle(o);
  if (o.scenario == "replay") return replay(o);
  if (o.scenario == "publish") return publish(o);
  if (o.scenario == "floor") return kernel_floor(o);
  return fanout(o);
}
