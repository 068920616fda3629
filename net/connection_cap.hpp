// The node's cap on open WebSocket and SSE connections (limits.max_connections,
// /ws/health/ included): a request over it is refused at the handshake, before
// any socket state, actor or token check costs anything. A place is held by a
// ticket from the handshake until the connection closes.
#pragma once

#include <atomic>
#include <cstddef>
#include <optional>
#include <utility>

namespace sb {

class connection_cap {
 public:
  explicit connection_cap(std::size_t most) : most_(most) {}

  class ticket {
   public:
    explicit ticket(connection_cap& cap) : cap_(&cap) {}
    ticket(ticket&& o) noexcept : cap_(std::exchange(o.cap_, nullptr)) {}
    ticket& operator=(ticket&& o) noexcept {
      if (this != &o) {
        release();
        cap_ = std::exchange(o.cap_, nullptr);
      }
      return *this;
    }
    ticket(const ticket&) = delete;
    ticket& operator=(const ticket&) = delete;
    ~ticket() { release(); }

   private:
    void release() {
      if (cap_) cap_->open_.fetch_sub(1, std::memory_order_relaxed);
      cap_ = nullptr;
    }
    connection_cap* cap_;
  };

  // A place, or nothing when `most` are open.
  std::optional<ticket> try_take() {
    auto n = open_.load(std::memory_order_relaxed);
    do {
      if (n >= most_) return std::nullopt;
    } while (!open_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
    return std::optional<ticket>{std::in_place, *this};
  }

  std::size_t open() const { return open_.load(std::memory_order_relaxed); }
  std::size_t most() const { return most_; }

 private:
  const std::size_t most_;
  std::atomic<std::size_t> open_{0};
};

}  // namespace sb
