#include "tools/http_client.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace sbctl {

namespace {

constexpr int connect_timeout_ms = 3000;

class connection {
 public:
  connection(const std::string& address, int timeout_s) : address_(address) {
    auto [host, port] = split_address(address);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || !found)
      throw unreachable_error("cannot resolve " + address);
    fd_ = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int rc = fd_ < 0 ? -1 : ::connect(fd_, found->ai_addr, found->ai_addrlen);
    freeaddrinfo(found);
    if (rc != 0 && errno != EINPROGRESS) fail("cannot connect to");
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, connect_timeout_ms) != 1) fail("timed out connecting to");
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      errno = err;
      fail("cannot connect to");
    }
    timeout_ms_ = timeout_s < 0 ? -1 : timeout_s * 1000;
  }

  ~connection() {
    if (fd_ >= 0) ::close(fd_);
  }

  void send_all(const std::string& data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
      wait(POLLOUT);
      auto n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN) fail("lost the connection to");
      if (n > 0) sent += static_cast<std::size_t>(n);
    }
  }

  // Appends what arrives to `buf`; false at the end of the stream.
  bool receive(std::string& buf) {
    wait(POLLIN);
    char chunk[16384];
    auto n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EAGAIN) return true;
    if (n < 0) fail("lost the connection to");
    buf.append(chunk, static_cast<std::size_t>(n));
    return n > 0;
  }

 private:
  void wait(short what) {
    pollfd p{fd_, what, 0};
    int rc = ::poll(&p, 1, timeout_ms_);
    if (rc == 0) throw unreachable_error("no answer from " + address_ + " in time");
    if (rc < 0 && errno != EINTR) fail("lost the connection to");
  }

  [[noreturn]] void fail(const std::string& what) {
    throw unreachable_error(what + " " + address_ + ": " + std::strerror(errno) +
                            " (is the node's admin interface on? see admin.port)");
  }

  std::string address_;
  int fd_ = -1;
  int timeout_ms_ = -1;
};

std::string request_text(const std::string& address, const admin_call& call, const std::string& token) {
  return call.method + " " + call.target + " HTTP/1.1\r\nHost: " + address +
         "\r\nAuthorization: Bearer " + token +
         "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
         std::to_string(call.body.size()) + "\r\n\r\n" + call.body;
}

// Reads up to the end of the head; returns the status, leaves the body's
// start in `buf`.
int read_head(connection& c, std::string& buf, const std::string& address) {
  std::size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos)
    if (!c.receive(buf)) throw unreachable_error(address + " closed the connection without answering");
  int status = 0;
  if (std::sscanf(buf.c_str(), "HTTP/1.%*d %d", &status) != 1)
    throw unreachable_error(address + " did not answer with HTTP");
  buf.erase(0, end + 4);
  return status;
}

}  // namespace

http_response http_call(const std::string& address, const admin_call& call,
                        const std::string& token, int timeout_s) {
  connection c(address, timeout_s);
  c.send_all(request_text(address, call, token));
  http_response r;
  r.status = read_head(c, r.body, address);
  while (c.receive(r.body)) {
  }
  return r;
}

http_response http_stream(const std::string& address, const admin_call& call,
                          const std::string& token, const std::function<bool(const std::string&)>& on_line) {
  connection c(address, -1);
  c.send_all(request_text(address, call, token));
  http_response r;
  std::string buf;
  r.status = read_head(c, buf, address);
  if (r.status != 200) {
    while (c.receive(buf)) {
    }
    r.body = std::move(buf);
    return r;
  }
  while (true) {
    std::size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      if (!on_line(buf.substr(0, nl))) return r;
      buf.erase(0, nl + 1);
    }
    if (!c.receive(buf)) return r;
  }
}

}  // namespace sbctl
