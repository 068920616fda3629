// The HTTP request path of a connection on the public port, from raw bytes
// to the handler that would answer: Beast's parser with the node's limits,
// the request target, where the request goes (net/http_request), the
// WebSocket upgrade checks and the route's channels, SSE's Last-Event-ID,
// and the server API's body parsing and answers (net/api, against
// node_stand_in.cpp). An input may hold several requests, as a keep-alive
// connection does; the bytes arrive a few at a time.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <nlohmann/json.hpp>

#include "core/access.hpp"
#include "core/log.hpp"
#include "net/http_request.hpp"

namespace {

using error_code = boost::system::error_code;

// A SyncReadStream over the input that hands out at most `step` bytes a read.
struct input_stream {
  const uint8_t* data;
  std::size_t size;
  std::size_t step;

  template <class Buffers>
  std::size_t read_some(const Buffers& buffers, error_code& ec) {
    if (size == 0) {
      ec = boost::asio::error::eof;
      return 0;
    }
    auto n = boost::asio::buffer_copy(buffers, boost::asio::buffer(data, std::min(size, step)));
    data += n;
    size -= n;
    ec = {};
    return n;
  }

  template <class Buffers>
  std::size_t read_some(const Buffers& buffers) {
    error_code ec;
    auto n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
};

const sb::config& node_config() {
  static const sb::config cfg = sb::load_config(
      R"({"auth": {"jwt_secret": "fuzz-secret-fuzz-secret-fuzz-secret",
                   "api_keys": ["fuzz-api-key-fuzz-api-key-fuzz-api-key"]},
          "http": {"allowed_origins": ["https://app.example"]}})",
      {}, {});
  return cfg;
}

const sb::claims& user() {
  static const sb::claims c = [] {
    sb::claims u;
    u.user_id = "42";
    u.user_id_numeric = true;
    u.role = "admin";
    u.channels = {"chat:*", "session:1"};
    return u;
  }();
  return c;
}

// The channels the route stands for, access checked, as at the handshake.
std::vector<std::string> channels_of(const sb::route_match& route) {
  auto channels = sb::route_channels(route, user());
  if (!channels) return {};
  for (const auto& ch : *channels) (void)sb::may_subscribe(node_config(), user(), ch);
  return *channels;
}

void call_api(const sb::http_request& req, const sb::request_target& target) {
  static sb::actor_node node(node_config());
  sb::api::handle(node_config(), node, sb::api_request(req, target), [](sb::api::response res) {
    // Every answer is a JSON object, whatever came in.
    auto body = nlohmann::json::parse(res.body, nullptr, false);
    if (!body.is_object() || res.status < 200 || res.status > 599) std::abort();
  });
}

void route(const sb::http_request& req, const sb::request_target& target) {
  const auto& cfg = node_config();
  switch (sb::destination_of(req, target, false)) {
    case sb::destination::websocket: {
      auto checked = sb::check_upgrade(cfg, req, target);
      if (auto* m = std::get_if<sb::route_match>(&checked)) channels_of(*m);
      break;
    }
    case sb::destination::events: {
      auto updates = sb::match_route(cfg.routes, "/ws/updates/");
      auto last = req["Last-Event-ID"];
      sb::last_event_ids({last.data(), last.size()}, channels_of(*updates));
      break;
    }
    case sb::destination::api:
      call_api(req, target);
      break;
    case sb::destination::other:
      sb::match_route(cfg.routes, target.path);
      break;
    case sb::destination::admin:
    case sb::destination::health:
    case sb::destination::metrics:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sb::log::configure(sb::log::level::error, false, "fuzz");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  input_stream in{data, size, 1 + size % 61};
  boost::beast::flat_buffer buffer;
  for (int i = 0; i < 8; ++i) {
    sb::http_request_parser parser;
    sb::limit_request(parser);
    error_code ec;
    boost::beast::http::read(in, buffer, parser, ec);
    if (ec) break;  // the server answers 400 and closes
    auto req = parser.release();
    auto t = req.target();
    auto target = sb::parse_target({t.data(), t.size()});
    if (!target) break;
    route(req, *target);
    if (!req.keep_alive()) break;
  }
  return 0;
}
