// All of Switchboard's Boost.Beast I/O lives in this one translation unit:
// instantiating Beast's async operations is what makes a build slow, so no
// other file uses them (net/http_request has the synchronous parts only).
#include "net/server.hpp"

#include <climits>
#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "core/access.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/time.hpp"
#include "net/admin.hpp"
#include "net/api.hpp"
#include "net/connection_cap.hpp"
#include "net/http_request.hpp"
#include "net/jwt.hpp"
#include "net/outbound_queue.hpp"
#include "net/router.hpp"
#include "net/wire.hpp"
#include "net/ws_codec.hpp"

namespace sb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

constexpr std::size_t read_chunk = 64 * 1024;

std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }


// Who may connect where: the token is verified and every channel of the
// route checked against the access rules. A refusal carries its close code.
struct admission {
  uint16_t refusal_code = 0;
  std::string reason;
  connection_args args;
};

admission admit(const config& cfg, const route_match& route, const request_target& target,
                std::string bearer, uint64_t conn_id, const std::string& remote) {
  admission a;
  auto token = target.query.count("token") ? target.query.at("token") : std::move(bearer);
  auto verdict = jwt::verify(token, cfg.auth.jwt_secret, now_s());
  if (!verdict.ok()) {
    a.refusal_code = static_cast<uint16_t>(std::get<jwt::refusal>(verdict.result));
    a.reason = verdict.reason;
    log::info("auth_refused", {{"conn", conn_id}, {"route", target.path}, {"remote", remote},
                               {"code", a.refusal_code}, {"why", verdict.reason}});
    return a;
  }
  auto& c = std::get<claims>(verdict.result);
  auto channels = route_channels(route, c);
  if (!channels) {
    a.refusal_code = 4004;
    a.reason = "invalid channel name";
    return a;
  }
  for (const auto& ch : *channels) {
    if (!may_subscribe(cfg, c, ch)) {
      log::info("access_refused", {{"conn", conn_id}, {"user", c.user_id}, {"channel", ch}});
      a.refusal_code = 4004;
      a.reason = "not allowed in " + ch;
      return a;
    }
  }
  a.args.id = conn_id;
  a.args.token = std::move(c);
  a.args.channels = std::move(*channels);
  a.args.multiplex = route.route->kind == route_kind::multiplex;
  a.args.notification_filter = route.route->notification_filter;
  a.args.remote = remote;
  a.args.path = target.path;
  return a;
}

// Time left until `exp` (seconds since the epoch), capped so that a token
// valid for ages cannot overflow the timer.
std::chrono::milliseconds time_until(int64_t exp) {
  constexpr int64_t max_wait_s = int64_t{1} << 32;
  auto s = std::min(exp, now_s() + max_wait_s);
  return std::chrono::milliseconds(s * 1000 - now_ms());
}

// Anything the server must be able to close at shutdown.
class closable {
 public:
  virtual ~closable() = default;
  virtual void shutdown() = 0;
};

}  // namespace

// A listening socket: the public port, or the admin interface's.
struct listener {
  listener(asio::io_context& ioc, bool is_admin)
      : acceptor(asio::make_strand(ioc)), pause(acceptor.get_executor()), admin(is_admin) {}

  tcp::acceptor acceptor;
  asio::steady_timer pause;
  const bool admin;
};

// State shared by the listeners and every session.
struct server::impl {
  impl(const config& c, actor_node& n)
      : cfg(c), node(n), started(std::chrono::steady_clock::now()),
        streams(c.limits.max_connections), ioc(static_cast<int>(c.http.threads)),
        public_port(ioc, false), admin_port(ioc, true), signals(ioc, SIGINT, SIGTERM) {}

  const config& cfg;
  actor_node& node;
  std::chrono::steady_clock::time_point started;
  std::atomic<uint64_t> next_id{1};
  std::atomic<bool> stopping{false};
  // Declared before the io_context: a session whose handler was still
  // pending dies with the io_context, and gives its place and its entry back
  // on the way.
  connection_cap streams;  // open WebSocket and SSE connections
  std::mutex sessions_mu;
  std::unordered_map<uint64_t, std::weak_ptr<closable>> sessions;

  asio::io_context ioc;
  listener public_port;
  listener admin_port;  // closed when the admin interface is off
  asio::signal_set signals;

  // A WebSocket session takes over the entry of the HTTP session it came from.
  void add(uint64_t id, std::weak_ptr<closable> s) {
    std::lock_guard lk(sessions_mu);
    sessions.insert_or_assign(id, std::move(s));
  }
  void remove(uint64_t id) {
    std::lock_guard lk(sessions_mu);
    sessions.erase(id);
  }

  void accept(listener& l);
  void stop();
};

namespace {

// ---------------------------------------------------------------------------
// What WebSocket and SSE sessions share: the bounded queue behind `outbound`
// (a client that stops reading is closed with 4009, its pending frames
// dropped), a heartbeat that ends a session showing no sign of life for a
// whole interval, and the grace timer that ends a session whose close does
// not get out.
class queued_session : public outbound,
                       public closable,
                       public std::enable_shared_from_this<queued_session> {
 public:
  // `place` is the session's under limits.max_connections (none for the
  // admin interface's tail).
  queued_session(server::impl& srv, uint64_t id, tcp::socket socket,
                 std::optional<connection_cap::ticket> place)
      : srv_(srv), id_(id), socket_(std::move(socket)), place_(std::move(place)),
        queue_(srv.cfg.limits.outbound_max_frames, srv.cfg.limits.outbound_max_bytes),
        heartbeat_(socket_.get_executor()), deadline_(socket_.get_executor()) {}

  ~queued_session() override { srv_.remove(id_); }

  // --- outbound (any thread) ---
  void start(frame_ptr greeting) override { schedule(queue_.start(std::move(greeting))); }

  void send(frame_ptr frame) override { pushed(queue_.push(std::move(frame))); }

  void send_page(std::vector<frame_ptr> frames, std::function<void()> on_drained) override {
    pushed(queue_.push_page(std::move(frames), std::move(on_drained)));
  }

  void close(uint16_t code, std::string reason) override {
    // A client that is not reading would only delay its close frame further.
    auto v = queue_.close(close_frame(code, reason), code == 4009);
    if (v == outbound_queue::verdict::closed) return;
    schedule(v);
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->arm_close_timer(); });
  }

  backlog queued() const override { return queue_.queued(); }

  // An SSE stream gets `event: close` (4003) too: an EventSource cannot
  // refresh, it reconnects with a new token.
  void expires_at(int64_t exp) override {
    asio::post(socket_.get_executor(), [self = shared_from_this(), exp] { self->arm_expiry(exp); });
  }

  // --- closable ---
  void shutdown() override { close(ws::close_going_away, "server shutting down"); }

 protected:
  virtual frame_ptr close_frame(uint16_t code, const std::string& reason) const = 0;
  // What each heartbeat sends.
  virtual frame_ptr heartbeat_frame() const = 0;
  // Strand: sends what take() hands out, then takes more.
  virtual void write_batch() = 0;
  // Strand, once: the session's own part of the teardown.
  virtual void on_teardown() {}

  void schedule(outbound_queue::verdict v) {
    if (v == outbound_queue::verdict::start_writer)
      asio::post(socket_.get_executor(), [self = shared_from_this()] { self->write_batch(); });
  }

  // Strand: moves what is queued into `batch`; the replays whose pages it
  // holds may queue their next now.
  bool take(std::vector<frame_ptr>& batch) {
    if (!queue_.take(batch, drained_)) return false;
    for (auto& next_page : drained_) next_page();
    drained_.clear();
    return true;
  }

  // `alive_` is set by what shows the client is there (WebSocket: anything it
  // sends; SSE: the socket taking bytes); a session without any since the
  // previous heartbeat is torn down when `watch_liveness_`.
  void arm_heartbeat() {
    heartbeat_.expires_after(srv_.cfg.limits.heartbeat_interval);
    heartbeat_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->dead_) return;
      self->on_heartbeat();
    });
  }

  // Ends the session on the strand; safe to call more than once.
  void teardown(const std::string& why) {
    if (dead_) return;
    dead_ = true;
    place_.reset();
    queue_.kill();
    heartbeat_.cancel();
    deadline_.cancel();
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    log::debug("socket_closed", {{"conn", id_}, {"user", user_}, {"why", why}});
    on_teardown();
    if (link_) link_->closed();
    link_.reset();
  }

  server::impl& srv_;
  uint64_t id_;
  tcp::socket socket_;
  std::optional<connection_cap::ticket> place_;  // strand only
  std::string user_;
  std::unique_ptr<connection_link> link_;
  bool watch_liveness_ = true;
  bool alive_ = true;   // strand only
  bool dead_ = false;   // strand only
  outbound_queue queue_;

 private:
  void pushed(outbound_queue::verdict v) {
    if (v == outbound_queue::verdict::overflow) {
      log::warn("slow_consumer", {{"conn", id_}, {"user", user_}, {"queued_frames", queue_.size()}});
      metrics::node().slow_consumer_closes++;
      close(4009, "slow consumer");
      return;
    }
    schedule(v);
  }

  void on_heartbeat() {
    if (watch_liveness_ && !alive_) {
      log::info("heartbeat_timeout", {{"conn", id_}, {"user", user_}});
      teardown("no sign of life within the heartbeat interval");
      return;
    }
    alive_ = false;
    send(heartbeat_frame());
    arm_heartbeat();
  }

  // Until the session closes, its deadline is the token's expiry; the close
  // handshake then takes the timer over.
  void arm_expiry(int64_t exp) {
    if (dead_ || queue_.closing()) return;
    deadline_.expires_after(time_until(exp));
    deadline_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->dead_ || self->queue_.closing()) return;
      log::info("token_expired", {{"conn", self->id_}, {"user", self->user_}});
      self->close(4003, "token expired");
    });
  }

  void arm_close_timer() {
    heartbeat_.cancel();
    deadline_.expires_after(srv_.cfg.limits.slow_consumer_grace);
    deadline_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) self->teardown("close handshake timed out");
    });
  }

  asio::steady_timer heartbeat_;
  asio::steady_timer deadline_;  // the token's expiry, then the close handshake's deadline
  std::vector<std::function<void()>> drained_;  // strand only
};

// ---------------------------------------------------------------------------
// WebSocket session: our own framing over the raw socket, so that a batch of
// queued frames leaves in one gather write.
class ws_session final : public queued_session {
 public:
  ws_session(server::impl& srv, uint64_t id, tcp::socket socket, std::string remote,
             connection_cap::ticket place)
      : queued_session(srv, id, std::move(socket), std::move(place)), remote_(std::move(remote)),
        reader_(srv.cfg.http.max_frame_bytes) {}

  // Runs on the strand right after the 101 response went out.
  void begin(const route_match& route, const request_target& target, std::string bearer,
             std::string_view leftover) {
    srv_.add(id_, weak_from_this());
    metrics::node().connections++;
    metrics::node().connections_total++;
    error_code ec;
    socket_.non_blocking(true, ec);
    if (!leftover.empty()) reader_.feed(leftover.data(), leftover.size());
    path_ = target.path;
    if (route.route->kind == route_kind::health) {
      health_ = true;
      watch_liveness_ = false;
      start(wire::heartbeat(now_ms(), "ok"));
    } else {
      authenticate(route, target, std::move(bearer));
    }
    arm_heartbeat();
    process_input();
  }

 private:
  std::shared_ptr<ws_session> me() { return std::static_pointer_cast<ws_session>(shared_from_this()); }

  frame_ptr close_frame(uint16_t code, const std::string& reason) const override {
    auto f = std::make_shared<wire_frame>();
    f->bytes = ws::encode_close(code, reason);
    return f;
  }

  // Health routes get a heartbeat frame; others a ping, and are closed when
  // nothing (not even a pong) came back since the previous one.
  frame_ptr heartbeat_frame() const override {
    if (health_) return wire::heartbeat(now_ms(), "ok");
    static const frame_ptr ping = control_frame(ws::opcode::ping, {});
    return ping;
  }

  void on_teardown() override { metrics::node().connections--; }

  void authenticate(const route_match& route, const request_target& target, std::string bearer) {
    auto a = admit(srv_.cfg, route, target, std::move(bearer), id_, remote_);
    if (a.refusal_code) {
      close(a.refusal_code, a.reason);
      return;
    }
    user_ = a.args.token.user_id;
    if (auto it = target.query.find("last_event_id"); it != target.query.end())
      if (auto since = parse_uint(it->second))
        for (const auto& ch : a.args.channels) a.args.positions[ch] = *since;
    a.args.out = shared_from_this();
    link_ = srv_.node.open(std::move(a.args));
  }

  void write_batch() override {
    if (!take(inflight_)) return;
    iov_.clear();
    for (const auto& f : inflight_) {
      iov_.push_back({const_cast<char*>(f->bytes.data()), f->bytes.size()});
      if (static_cast<uint8_t>(f->bytes[0]) == (0x80 | static_cast<uint8_t>(ws::opcode::close)))
        close_in_batch_ = true;
    }
    next_iov_ = 0;
    write_more();
  }

  // One sendmsg takes up to IOV_MAX frames; Asio's writes stop at 64 buffers,
  // so a replay of 100 events took two system calls (and two wake-ups of
  // the client). The socket is non-blocking: what the kernel does not take
  // now goes once it is writable.
  void write_more() {
    while (next_iov_ < iov_.size()) {
      msghdr msg{};
      msg.msg_iov = iov_.data() + next_iov_;
      msg.msg_iovlen = std::min<std::size_t>(iov_.size() - next_iov_, IOV_MAX);
      ssize_t n = ::sendmsg(socket_.native_handle(), &msg, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        socket_.async_wait(tcp::socket::wait_write, [self = me()](error_code ec) {
          if (ec)
            self->on_written(ec);
          else
            self->write_more();
        });
        return;
      }
      if (n < 0) {
        on_written(error_code(errno, boost::system::system_category()));
        return;
      }
      skip_written(static_cast<std::size_t>(n));
    }
    // Posted, as an async_write's completion would be: a writer that keeps
    // finding frames must not recurse.
    asio::post(socket_.get_executor(), [self = me()] { self->on_written({}); });
  }
  void skip_written(std::size_t n) {
    while (n > 0) {
      auto& v = iov_[next_iov_];
      if (n < v.iov_len) {
        v.iov_base = static_cast<char*>(v.iov_base) + n;
        v.iov_len -= n;
        return;
      }
      n -= v.iov_len;
      ++next_iov_;
    }
  }

  void on_written(error_code ec) {
    inflight_.clear();
    iov_.clear();
    if (inflight_.capacity() > 1024) {
      inflight_.shrink_to_fit();
      iov_.shrink_to_fit();
    }
    if (ec) {
      teardown("write failed: " + ec.message());
      return;
    }
    if (close_in_batch_) {
      // Our close frame is out: wait for the client's close or EOF, unless
      // its close already came or its input is beyond use.
      if (input_done_) {
        teardown("closed");
        return;
      }
      error_code ignored;
      socket_.shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
    write_batch();
  }

  // --- reading: wait for readability, then read what is there into a
  // per-thread buffer, so an idle connection holds no read buffer.
  void wait_readable() {
    socket_.async_wait(tcp::socket::wait_read, [self = me()](error_code ec) {
      if (ec) {
        self->teardown("read failed: " + ec.message());
        return;
      }
      self->read_available();
    });
  }

  void read_available() {
    static thread_local std::vector<char> chunk(read_chunk);
    error_code ec;
    std::size_t n = socket_.read_some(asio::buffer(chunk), ec);
    if (ec == asio::error::would_block) {
      wait_readable();
      return;
    }
    if (ec) {
      teardown(ec == asio::error::eof ? "peer closed" : "read failed: " + ec.message());
      return;
    }
    reader_.feed(chunk.data(), n);
    process_input();
  }

  void process_input() {
    while (!dead_ && !input_done_) {
      auto r = reader_.next();
      if (r == ws::frame_reader::result::none) break;
      if (r == ws::frame_reader::result::error) {
        log::info("protocol_error", {{"conn", id_}, {"user", user_},
                                     {"code", reader_.error_code()},
                                     {"why", reader_.error_reason()}});
        input_done_ = true;
        close(reader_.error_code(), reader_.error_reason());
        break;
      }
      alive_ = true;
      on_message(reader_.op(), reader_.payload());
    }
    if (!dead_ && !input_done_) wait_readable();
  }

  void on_message(ws::opcode op, const std::string& payload) {
    switch (op) {
      case ws::opcode::text:
        on_text(payload);
        break;
      case ws::opcode::binary:
        send(wire::error("invalid_message", "binary frames are not accepted", {}));
        break;
      case ws::opcode::ping:
        send(control_frame(ws::opcode::pong, payload));
        break;
      case ws::opcode::pong:
      case ws::opcode::continuation:
        break;
      case ws::opcode::close:
        on_peer_close(payload);
        break;
    }
  }

  void on_text(const std::string& payload) {
    auto parsed = wire::parse_command(payload);
    if (auto* r = std::get_if<wire::refusal>(&parsed)) {
      send(wire::error(r->code, r->message, r->id));
      return;
    }
    auto& c = std::get<wire::command>(parsed);
    if (c.type == wire::command_type::ping) {
      send(wire::pong(c.timestamp_json, c.id));
    } else if (health_) {
      send(wire::error("invalid_message", "only ping is accepted on the health route", c.id));
    } else if (link_) {
      link_->command(std::move(c));
    }
  }

  void on_peer_close(const std::string& payload) {
    input_done_ = true;
    if (queue_.closing()) {
      teardown("close handshake done");
      return;
    }
    uint16_t code = ws::close_normal;
    if (payload.size() >= 2)
      code = static_cast<uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                   static_cast<unsigned char>(payload[1]));
    close(code, "");
  }

  static frame_ptr control_frame(ws::opcode op, std::string_view payload) {
    auto f = std::make_shared<wire_frame>();
    f->bytes = ws::encode_frame(op, payload);
    return f;
  }

  std::string remote_;
  std::string path_;
  ws::frame_reader reader_;
  bool health_ = false;
  bool input_done_ = false;  // strand only: the peer's close came, or a protocol error
  bool close_in_batch_ = false;
  std::vector<frame_ptr> inflight_;           // strand only
  std::vector<iovec> iov_;                    // strand only: the batch's bytes not yet sent
  std::size_t next_iov_ = 0;                  // strand only
};

// ---------------------------------------------------------------------------
// Server-Sent Events (PROTOCOL section 7): the events of /ws/updates/ as
// `id: user:42=17,role:cadet=0`, `event: TYPE`, `data: JSON`. The fallback
// transport: each frame is re-read here to keep the positions, a cost the
// WebSocket path never pays, on the sender's thread as it is queued. The
// queue holds SSE text: frames without a WebSocket header.
class sse_session final : public queued_session {
 public:
  sse_session(server::impl& srv, uint64_t id, tcp::socket socket, std::vector<std::string> channels,
              const std::map<std::string, uint64_t>& positions,
              std::optional<connection_cap::ticket> place)
      : queued_session(srv, id, std::move(socket), std::move(place)) {
    for (auto& ch : channels) {
      auto p = positions.find(ch);
      positions_.emplace_back(std::move(ch), p == positions.end() ? 0 : p->second);
    }
  }

  // `cors` holds the CORS header lines for the request's origin, or nothing.
  void begin(connection_args args, std::string cors) {
    srv_.add(id_, weak_from_this());
    cors_ = std::move(cors);
    user_ = args.token.user_id;
    args.out = shared_from_this();
    link_ = srv_.node.open(std::move(args));
    arm_heartbeat();
    wait_readable();
  }

  // --- outbound (any thread): rendered in the order queued ---
  void start(frame_ptr greeting) override {
    std::lock_guard lk(render_mu_);
    queued_session::start(rendered(greeting));
  }

  void send(frame_ptr f) override {
    std::lock_guard lk(render_mu_);
    queued_session::send(rendered(f));
  }

  void send_page(std::vector<frame_ptr> frames, std::function<void()> on_drained) override {
    std::lock_guard lk(render_mu_);
    for (auto& f : frames) f = rendered(f);
    queued_session::send_page(std::move(frames), std::move(on_drained));
  }

 private:
  std::shared_ptr<sse_session> me() {
    return std::static_pointer_cast<sse_session>(shared_from_this());
  }

  static frame_ptr own_line(std::string text) {
    auto f = std::make_shared<wire_frame>();
    f->bytes = std::move(text);
    return f;
  }

  frame_ptr close_frame(uint16_t code, const std::string& reason) const override {
    nlohmann::json j = {{"code", code}, {"reason", reason}};
    return own_line("event: close\ndata: " + j.dump() + "\n\n");
  }

  frame_ptr heartbeat_frame() const override {
    static const frame_ptr comment = own_line(": heartbeat\n\n");
    return comment;
  }

  static bool is_close(const wire_frame& f) {
    return f.header_size == 0 && std::string_view{f.bytes}.substr(0, 13) == "event: close\n";
  }

  // With render_mu_ held.
  frame_ptr rendered(const frame_ptr& f) {
    return f->header_size == 0 ? f : own_line(render(*f));
  }

  std::string render(const wire_frame& f) {
    auto j = nlohmann::json::parse(f.payload(), nullptr, false);
    std::string type = j.is_object() ? j.value("type", "message") : "message";
    std::string out;
    // Only stored events move the position; other frames leave the
    // EventSource's last id as it was.
    if (j.is_object() && j.contains("event_id") && j["event_id"].is_number_unsigned() &&
        j.value("channel", json_null()).is_string()) {
      auto ch = j["channel"].get<std::string>();
      for (auto& [name, pos] : positions_)
        if (name == ch) pos = std::max(pos, j["event_id"].get<uint64_t>());
      out = "id: ";
      for (std::size_t i = 0; i < positions_.size(); ++i) {
        if (i) out += ',';
        out += positions_[i].first + "=" + std::to_string(positions_[i].second);
      }
      out += '\n';
    }
    out += "event: " + type + "\ndata: ";
    out += f.payload();
    out += "\n\n";
    return out;
  }

  static const nlohmann::json& json_null() {
    static const nlohmann::json null;
    return null;
  }

  void write_batch() override {
    std::vector<frame_ptr> batch;
    if (dead_ || !take(batch)) return;
    if (!head_sent_) {
      head_sent_ = true;
      inflight_ =
          "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
          "Connection: keep-alive\r\nX-Accel-Buffering: no\r\nServer: switchboard\r\n" +
          cors_ + "\r\nretry: 1000\n\n";
    }
    for (auto& f : batch) {
      inflight_ += f->bytes;
      close_in_batch_ = close_in_batch_ || is_close(*f);
    }
    written_ = 0;
    write_more();
  }

  // In pieces, so that each piece the socket takes counts as a sign of life.
  void write_more() {
    socket_.async_write_some(asio::buffer(inflight_.data() + written_, inflight_.size() - written_),
                             [self = me()](error_code ec, std::size_t n) {
                               if (ec) return self->teardown("write failed: " + ec.message());
                               self->alive_ = true;
                               self->written_ += n;
                               if (self->written_ < self->inflight_.size()) return self->write_more();
                               self->inflight_.clear();
                               if (self->close_in_batch_) return self->teardown("closed");
                               self->write_batch();
                             });
  }

  // An EventSource sends nothing after its request: readable means closed.
  void wait_readable() {
    socket_.async_wait(tcp::socket::wait_read,
                       [self = me()](error_code) { self->teardown("peer closed"); });
  }

  std::mutex render_mu_;
  std::vector<std::pair<std::string, uint64_t>> positions_;  // guarded by render_mu_
  // Strand only.
  std::string cors_;
  std::string inflight_;
  std::size_t written_ = 0;
  bool head_sent_ = false;
  bool close_in_batch_ = false;
};

// ---------------------------------------------------------------------------
// HTTP session: reads requests, answers the plain HTTP routes, and upgrades
// WebSocket requests on the configured routes.
class http_session final : public closable, public std::enable_shared_from_this<http_session> {
 public:
  http_session(server::impl& srv, tcp::socket socket, bool admin)
      : srv_(srv), id_(srv.next_id++), stream_(std::move(socket)), admin_(admin) {
    error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  ~http_session() override {
    if (!handed_over_) srv_.remove(id_);
  }

  void run() {
    srv_.add(id_, weak_from_this());
    read_request();
  }

  void shutdown() override {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
      self->stream_.close();
    });
  }

 private:
  void read_request() {
    parser_.emplace();
    limit_request(*parser_);
    stream_.expires_after(srv_.cfg.http.handshake_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, std::size_t) {
                       self->on_request(ec);
                     });
  }

  void on_request(error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      stream_.close();
      return;
    }
    if (ec) {
      log::info("bad_http_request", {{"remote", remote_}, {"why", ec.message()}});
      auto status = ec == http::error::header_limit ? http::status::request_header_fields_too_large
                                                    : http::status::bad_request;
      respond(error_response(status, "bad_request", "malformed HTTP request: " + ec.message(), 10),
              false);
      return;
    }
    auto req = parser_->release();
    cors_origin_ = admin_ ? std::string{} : cors_origin(req);
    auto target = parse_target(sv(req.target()));
    if (!target) {
      respond(error_response(http::status::bad_request, "bad_request", "malformed request target",
                             req.version()),
              false);
      return;
    }
    switch (destination_of(req, *target, admin_)) {
      case destination::admin:
        return admin_request(req, *target);
      case destination::websocket:
        return upgrade(req, *target);
      case destination::health:
        return health(req.version(), req.keep_alive());
      case destination::metrics: {
        http::response<http::string_body> res{http::status::ok, req.version()};
        res.set(http::field::content_type, "text/plain; version=0.0.4");
        res.body() = metrics::render();
        res.prepare_payload();
        return respond(std::move(res), req.keep_alive());
      }
      case destination::preflight:
        return preflight(req, *target);
      case destination::events:
        return open_events(req, *target);
      case destination::api:
        metrics::node().api_requests++;
        return call_api(req, *target, [this](const api::request& r, reply_fn reply) {
          api::handle(srv_.cfg, srv_.node, r, std::move(reply));
        });
      case destination::other:
        return respond(route_http(req, *target), req.keep_alive());
    }
  }

  // The request's Origin when it is one of http.allowed_origins, else "":
  // answers to it carry CORS headers naming it (never a wildcard, since
  // they allow credentials).
  std::string cors_origin(const http::request<http::string_body>& req) const {
    auto origin = req.find(http::field::origin);
    if (origin == req.end()) return {};
    auto& allowed = srv_.cfg.http.allowed_origins;
    auto it = std::find(allowed.begin(), allowed.end(), sv(origin->value()));
    return it == allowed.end() ? std::string{} : *it;
  }

  std::vector<std::pair<http::field, std::string>> cors_headers() const {
    if (cors_origin_.empty()) return {};
    return {{http::field::access_control_allow_origin, cors_origin_},
            {http::field::access_control_allow_credentials, "true"},
            {http::field::vary, "Origin"}};
  }

  std::string cors_header_lines() const {
    std::string lines;
    for (const auto& [name, value] : cors_headers())
      lines += std::string{sv(http::to_string(name))} + ": " + value + "\r\n";
    return lines;
  }

  // OPTIONS before a cross-origin call to the API or /api/events.
  void preflight(const http::request<http::string_body>& req, const request_target& target) {
    if (cors_origin_.empty())
      return refuse(http::status::forbidden, "forbidden", "origin not allowed", req, target);
    http::response<http::string_body> res{http::status::no_content, req.version()};
    res.set(http::field::server, "switchboard");
    res.set(http::field::access_control_allow_methods, "GET, POST, OPTIONS");
    res.set(http::field::access_control_allow_headers, "Authorization, Content-Type, Last-Event-ID");
    res.set(http::field::access_control_max_age, "600");
    respond(std::move(res), req.keep_alive());
  }

  // GET /health: this node and the cluster members it knows.
  void health(unsigned version, bool keep_alive) {
    srv_.node.members([self = shared_from_this(), version, keep_alive](
                          std::vector<api_member> members) {
      auto& srv = self->srv_;
      nlohmann::json list = nlohmann::json::array();
      for (const auto& m : members)
        list.push_back({{"node", m.node},
                        {"address", m.address},
                        {"state", !m.up ? "down" : m.draining ? "draining" : "up"},
                        {"self", m.self},
                        {"since", m.since_ms ? nlohmann::json(iso8601_ms(m.since_ms)) : nlohmann::json()}});
      nlohmann::json body = {
          {"status", srv.stopping ? "stopping" : srv.node.draining() ? "draining" : "ok"},
          {"node", srv.cfg.node_id},
          {"uptime_s", std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::steady_clock::now() - srv.started)
                           .count()},
          {"cluster", {{"members", std::move(list)}}}};
      asio::post(self->stream_.get_executor(), [self, version, keep_alive, text = body.dump()] {
        self->respond(json_response(http::status::ok, text, version), keep_alive);
      });
    });
  }

  // GET /api/events: the /ws/updates/ channels as Server-Sent Events,
  // resuming from Last-Event-ID (`user:42=17,role:cadet=5`), or from the
  // same list in `?last_event_id=`: an EventSource opened anew (with a fresh
  // token) cannot set the header.
  void open_events(const http::request<http::string_body>& req, const request_target& target) {
    if (!take_place()) return refuse_full(req);
    auto route = match_route(srv_.cfg.routes, "/ws/updates/");
    std::string bearer{jwt::bearer(sv(req[http::field::authorization]))};
    auto a = admit(srv_.cfg, *route, target, std::move(bearer), id_, remote_);
    if (a.refusal_code)
      return respond(error_response(a.refusal_code == 4004 ? http::status::forbidden
                                                           : http::status::unauthorized,
                                    a.refusal_code == 4004 ? "forbidden" : "unauthorized", a.reason,
                                    req.version()),
                     false);
    std::string_view ids = sv(req["Last-Event-ID"]);
    if (auto q = target.query.find("last_event_id"); ids.empty() && q != target.query.end())
      ids = q->second;
    a.args.positions = last_event_ids(ids, a.args.channels);
    stream_events(std::move(a.args));
  }

  // The socket becomes a Server-Sent Events stream of `args`' channels.
  void stream_events(connection_args args) {
    stream_.expires_never();
    handed_over_ = true;
    auto channels = args.channels;
    auto positions = args.positions;
    auto sse = std::make_shared<sse_session>(srv_, id_, stream_.release_socket(),
                                             std::move(channels), positions, std::move(place_));
    sse->begin(std::move(args), cors_header_lines());
  }

  // The admin port answers the admin interface only, and only with the token.
  void admin_request(const http::request<http::string_body>& req, const request_target& target) {
    if (!admin::authorized(srv_.cfg, std::string{sv(req[http::field::authorization])})) {
      log::info("admin_refused", {{"remote", remote_}, {"path", target.path}});
      return call_api(req, target, [](const api::request&, reply_fn reply) {
        reply(admin::unauthorized());
      });
    }
    if (target.path == "/admin/tail" && req.method() == http::verb::get)
      return open_tail(req, target);
    call_api(req, target, [this](const api::request& r, reply_fn reply) {
      admin::handle(srv_.cfg, srv_.node, r, std::move(reply));
    });
  }

  // GET /admin/tail: the channel's events as Server-Sent Events, from an
  // observer that is not present in the channel.
  void open_tail(const http::request<http::string_body>& req, const request_target& target) {
    auto t = admin::parse_tail(api_request(req, target));
    if (!t.error.empty())
      return respond(error_response(http::status::bad_request, "bad_request", t.error,
                                    req.version()),
                     false);
    connection_args args;
    args.id = id_;
    args.channels = {t.channel};
    if (t.since) args.positions[t.channel] = *t.since;
    args.remote = remote_;
    args.path = target.path;
    args.observer = true;
    stream_events(std::move(args));
  }

  using reply_fn = std::function<void(api::response)>;

  // The answer comes back on an actor thread; the response is written on
  // this session's strand, and the next request is read only after it.
  void call_api(const http::request<http::string_body>& req, const request_target& target,
                const std::function<void(const api::request&, reply_fn)>& handler) {
    auto version = req.version();
    bool keep_alive = req.keep_alive();
    handler(api_request(req, target),
                [self = shared_from_this(), version, keep_alive](api::response res) {
                  asio::post(self->stream_.get_executor(),
                             [self, version, keep_alive, res = std::move(res)]() mutable {
                               self->respond(json_response(static_cast<http::status>(res.status),
                                                           std::move(res.body), version),
                                             keep_alive);
                             });
                });
  }

  http::response<http::string_body> route_http(const http::request<http::string_body>& req,
                                               const request_target& target) {
    if (match_route(srv_.cfg.routes, target.path)) {
      auto res = error_response(http::status::upgrade_required, "upgrade_required",
                                "this path takes WebSocket connections", req.version());
      res.set(http::field::upgrade, "websocket");
      return res;
    }
    return error_response(http::status::not_found, "not_found", "no such path", req.version());
  }

  static http::response<http::string_body> json_response(http::status status, std::string body,
                                                         unsigned version) {
    http::response<http::string_body> res{status, version};
    res.set(http::field::server, "switchboard");
    res.set(http::field::content_type, "application/json");
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
  }

  static http::response<http::string_body> error_response(http::status status,
                                                          std::string_view code,
                                                          std::string_view message,
                                                          unsigned version) {
    return json_response(status, api::error_body(code, message), version);
  }

  void respond(http::response<http::string_body> res, bool keep_alive) {
    res.keep_alive(keep_alive && !srv_.stopping);
    for (const auto& [name, value] : cors_headers()) res.set(name, value);
    auto sp = std::make_shared<http::response<http::string_body>>(std::move(res));
    http::async_write(stream_, *sp, [self = shared_from_this(), sp](error_code ec, std::size_t) {
      if (ec || !sp->keep_alive()) {
        error_code ignored;
        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        self->stream_.close();
        return;
      }
      self->read_request();
    });
  }

  // Logs the path, never the whole target: its query may carry a token.
  void refuse(http::status status, std::string_view code, std::string_view message,
              const http::request<http::string_body>& req, const request_target& target) {
    log::info("handshake_refused", {{"remote", remote_}, {"path", target.path},
                                    {"status", static_cast<unsigned>(status)}, {"why", message}});
    respond(error_response(status, code, message, req.version()), false);
  }

  // A place under limits.max_connections for the WebSocket or SSE stream
  // this request opens; released if the handshake goes no further.
  bool take_place() {
    place_ = srv_.streams.try_take();
    return place_.has_value();
  }

  // Over limits.max_connections: the load balancer should send the client
  // elsewhere. Not logged per request: a flood would flood the log too.
  void refuse_full(const http::request<http::string_body>& req) {
    metrics::node().connections_refused++;
    auto res = error_response(
        http::status::service_unavailable, "unavailable",
        "this node has " + std::to_string(srv_.streams.most()) +
            " connections open, the most it takes (limits.max_connections); try another node or later",
        req.version());
    res.set(http::field::retry_after, "1");
    respond(std::move(res), false);
  }

  void upgrade(const http::request<http::string_body>& req, const request_target& target) {
    auto checked = check_upgrade(srv_.cfg, req, target);
    if (auto* r = std::get_if<upgrade_refusal>(&checked)) {
      if (r->status != http::status::upgrade_required)
        return refuse(r->status, r->code, r->message, req, target);
      auto res = error_response(r->status, r->code, r->message, req.version());
      res.set(http::field::sec_websocket_version, "13");
      return respond(std::move(res), false);
    }
    auto route = std::get<route_match>(std::move(checked));
    auto key = sv(req[http::field::sec_websocket_key]);
    if (srv_.stopping || srv_.node.draining())
      return refuse(http::status::service_unavailable, "unavailable", "node shutting down", req,
                    target);
    if (!take_place()) return refuse_full(req);

    std::string bearer{jwt::bearer(sv(req[http::field::authorization]))};

    auto res = std::make_shared<http::response<http::empty_body>>(http::status::switching_protocols,
                                                                  req.version());
    res->set(http::field::upgrade, "websocket");
    res->set(http::field::connection, "Upgrade");
    res->set(http::field::sec_websocket_accept, ws::accept_key(key));
    res->set(http::field::server, "switchboard");
    stream_.expires_never();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res, route = std::move(route), target,
                       bearer = std::move(bearer)](error_code ec, std::size_t) mutable {
                        if (ec) {
                          self->stream_.close();
                          return;
                        }
                        self->hand_over(route, target, std::move(bearer));
                      });
  }

  void hand_over(const route_match& route, const request_target& target, std::string bearer) {
    auto data = buffer_.data();
    std::string leftover{static_cast<const char*>(data.data()), data.size()};
    auto ws = std::make_shared<ws_session>(srv_, id_, stream_.release_socket(), remote_,
                                           std::move(*place_));
    handed_over_ = true;
    ws->begin(route, target, std::move(bearer), leftover);
  }

  server::impl& srv_;
  uint64_t id_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http_request_parser> parser_;
  std::string remote_;
  std::string cors_origin_;  // the current request's allowed Origin, or ""
  std::optional<connection_cap::ticket> place_;  // the stream's, from the handshake on
  bool handed_over_ = false;
  const bool admin_;  // accepted on the admin port: only the admin interface
};

}  // namespace

void server::impl::accept(listener& l) {
  l.acceptor.async_accept(asio::make_strand(ioc), [this, &l](error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !l.acceptor.is_open()) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<http_session>(*this, std::move(socket), l.admin)->run();
      accept(l);
      return;
    }
    // Out of descriptors (or similar): retrying at once would spin. Pause,
    // so that closing connections can free some.
    log::warn("accept_failed", {{"why", ec.message()}, {"retry_in_ms", 100}});
    l.pause.expires_after(std::chrono::milliseconds(100));
    l.pause.async_wait([this, &l](error_code wait_ec) {
      if (!wait_ec && l.acceptor.is_open()) accept(l);
    });
  });
}

void server::impl::stop() {
  stopping = true;
  error_code ignored;
  signals.cancel(ignored);
  for (auto* l : {&public_port, &admin_port})
    asio::post(l->acceptor.get_executor(), [l] {
      error_code ignored;
      l->acceptor.close(ignored);
      l->pause.cancel();
    });
  std::vector<std::shared_ptr<closable>> live;
  {
    std::lock_guard lk(sessions_mu);
    for (auto& [id, weak] : sessions)
      if (auto s = weak.lock()) live.push_back(std::move(s));
  }
  log::info("shutdown", {{"open_sessions", live.size()}});
  for (auto& s : live) s->shutdown();
}

server::server(const config& cfg, actor_node& node)
    : impl_(std::make_unique<impl>(cfg, node)) {}

server::~server() = default;

namespace {

// Binds `a`; `key` names the config section for the error message.
uint16_t open_listener(tcp::acceptor& a, const std::string& key, const std::string& host, uint16_t port) {
  error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) throw std::runtime_error(key + ".host '" + host + "' is not an IP address");
  tcp::endpoint ep{address, port};
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + " (" + key +
                             "): " + ec.message());
  return a.local_endpoint().port();
}

// Why the admin interface is off, or "" when it is on.
std::string admin_off_reason(const admin_config& a) {
  if (!a.port) return "admin.port is 0";
  if (a.token.empty()) return "no admin token: set admin.token or SWITCHBOARD_ADMIN_TOKEN";
  return {};
}

}  // namespace

uint16_t server::listen() {
  const auto& cfg = impl_->cfg;
  auto port = open_listener(impl_->public_port.acceptor, "http", cfg.http.host, cfg.http.port);
  if (auto why = admin_off_reason(cfg.admin); !why.empty()) {
    log::warn("admin_off", {{"why", why}});
    return port;
  }
  auto admin = open_listener(impl_->admin_port.acceptor, "admin", cfg.admin.host, *cfg.admin.port);
  log::info("admin_open", {{"addr", cfg.admin.host}, {"port", admin}});
  return port;
}

void server::run() {
  impl_->signals.async_wait([this](error_code ec, int signo) {
    if (ec) return;
    log::info("signal", {{"signal", signo == SIGTERM ? "SIGTERM" : "SIGINT"}});
    if (!impl_->node.clustered()) {
      impl_->stop();
      return;
    }
    // In a cluster the node first hands its channels over, so that its
    // clients, closed with 1001, find them on the other nodes.
    impl_->node.drain([this] { asio::post(impl_->ioc, [this] { impl_->stop(); }); });
    impl_->signals.async_wait([this](error_code ec, int) {
      if (!ec) impl_->stop();  // a second signal: stop without waiting
    });
  });
  impl_->accept(impl_->public_port);
  if (impl_->admin_port.acceptor.is_open()) impl_->accept(impl_->admin_port);
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < impl_->cfg.http.threads; ++i)
    threads.emplace_back([this] { impl_->ioc.run(); });
  impl_->ioc.run();
  for (auto& t : threads) t.join();
}

}  // namespace sb
