// The one thing actors know about a socket: a bounded, thread-safe queue of
// ready-to-send frames. Actors push; the socket's strand drains the queue in
// one gather write. Nothing here touches Beast.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sb {

// One server-to-client message, serialized once: the WebSocket frame header
// followed by the JSON payload. Immutable and shared by every receiver.
struct wire_frame {
  std::string bytes;
  uint8_t header_size = 0;

  std::string_view payload() const {
    return std::string_view{bytes}.substr(header_size);
  }
};
using frame_ptr = std::shared_ptr<const wire_frame>;

// What waits in a socket's queue, for the admin interface.
struct backlog {
  uint64_t frames = 0;
  uint64_t bytes = 0;
};

class outbound {
 public:
  virtual ~outbound() = default;

  // Writes `greeting` and then everything queued so far. Nothing is written
  // before: a connection's first frame must be connection_established even
  // when its channels already have events for it.
  virtual void start(frame_ptr greeting) = 0;

  // Queues a frame; never blocks. A queue over its bounds closes the
  // connection with 4009 and drops the frame.
  virtual void send(frame_ptr frame) = 0;

  // Queues a page of a replay within the same bounds as `send` (over them:
  // 4009, nothing queued). `on_drained` runs once the socket has taken the
  // page (on the socket's thread, outside any lock): a replay sends its next
  // page then, so a client that stops reading holds one page, not its backlog.
  virtual void send_page(std::vector<frame_ptr> frames, std::function<void()> on_drained) = 0;

  // Sends a close frame after what is queued, then closes the socket.
  virtual void close(uint16_t code, std::string reason) = 0;

  virtual backlog queued() const = 0;

  // The connection's token expires at `exp` (seconds since the epoch): the
  // socket is closed with 4003 then, unless this is called again first.
  virtual void expires_at(int64_t exp) = 0;
};
using outbound_ptr = std::shared_ptr<outbound>;

}  // namespace sb
