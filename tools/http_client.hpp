// sbctl's HTTP/1.1 client for the admin interface: one request per
// connection (Connection: close), plain blocking sockets.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

#include "tools/sbctl_args.hpp"

namespace sbctl {

// The node could not be reached, or did not answer in time.
struct unreachable_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct http_response {
  int status = 0;
  std::string body;  // for a stream: only when the status is not 200
};

// Sends `call` with the bearer token and reads the whole answer.
http_response http_call(const std::string& address, const admin_call& call,
                        const std::string& token, int timeout_s);

// Sends `call`, then hands every line of a 200 answer's body to `on_line`
// until it returns false or the node closes the stream.
http_response http_stream(const std::string& address, const admin_call& call,
                          const std::string& token, const std::function<bool(const std::string&)>& on_line);

}  // namespace sbctl
