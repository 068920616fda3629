// The bounded queue behind a socket's outbound side. Producers (channel and
// connection actors, on any thread) push shared frames; the socket's strand
// takes everything queued at once and sends it in one gather write. Exactly
// one push is told to start the writer when the queue goes from idle to busy.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <vector>

#include "net/outbound.hpp"

namespace sb {

class outbound_queue {
 public:
  enum class verdict {
    queued,        // the writer is running, or not started yet
    start_writer,  // queued; the caller must schedule the writer
    overflow,      // over a bound: nothing queued, the queue is now closing
    closed,        // closing already: dropped
  };

  outbound_queue(std::size_t max_frames, std::size_t max_bytes)
      : max_frames_(max_frames), max_bytes_(max_bytes) {}

  verdict push(frame_ptr f) {
    std::lock_guard lk(mu_);
    if (closing_) return verdict::closed;
    if (frames_.size() >= max_frames_ || bytes_ + f->bytes.size() > max_bytes_) return verdict::overflow;
    bytes_ += f->bytes.size();
    frames_.push_back(std::move(f));
    return wake();
  }

  // Queues a page, all of it or (over a bound) none; `on_drained` is handed
  // to the writer with the batch that takes the page.
  verdict push_page(std::vector<frame_ptr> page, std::function<void()> on_drained) {
    std::size_t page_bytes = 0;
    for (auto& f : page) page_bytes += f->bytes.size();
    std::lock_guard lk(mu_);
    if (closing_) return verdict::closed;
    if (frames_.size() + page.size() > max_frames_ || bytes_ + page_bytes > max_bytes_)
      return verdict::overflow;
    bytes_ += page_bytes;
    for (auto& f : page) frames_.push_back(std::move(f));
    if (on_drained) drained_.push_back(std::move(on_drained));
    return wake();
  }

  // Puts the greeting first and lets writing begin.
  verdict start(frame_ptr greeting) {
    std::lock_guard lk(mu_);
    if (closing_) return verdict::closed;
    bytes_ += greeting->bytes.size();
    frames_.insert(frames_.begin(), std::move(greeting));
    started_ = true;
    return wake();
  }

  // Queues the close frame last (after dropping what is pending, when asked)
  // and refuses everything after it. Returns closed when already closing.
  verdict close(frame_ptr close_frame, bool drop_pending) {
    std::lock_guard lk(mu_);
    if (closing_) return verdict::closed;
    closing_ = true;
    if (drop_pending) {
      frames_.clear();
      drained_.clear();
      bytes_ = 0;
    }
    frames_.push_back(std::move(close_frame));
    started_ = true;
    return wake();
  }

  // Writer side: moves everything queued into `batch` (which must be empty),
  // and the pages' callbacks into `drained` (the caller runs them, unlocked).
  // Returns false, and marks the writer idle, when there is nothing to send.
  bool take(std::vector<frame_ptr>& batch, std::vector<std::function<void()>>& drained) {
    std::lock_guard lk(mu_);
    if (frames_.empty()) {
      writing_ = false;
      return false;
    }
    batch.swap(frames_);
    drained.swap(drained_);
    bytes_ = 0;
    return true;
  }

  // The socket is gone: drop everything and refuse more.
  void kill() {
    std::lock_guard lk(mu_);
    closing_ = true;
    frames_.clear();
    drained_.clear();
    bytes_ = 0;
  }

  bool closing() const {
    std::lock_guard lk(mu_);
    return closing_;
  }

  std::size_t size() const {
    std::lock_guard lk(mu_);
    return frames_.size();
  }

  backlog queued() const {
    std::lock_guard lk(mu_);
    return {frames_.size(), bytes_};
  }

 private:
  verdict wake() {
    if (!started_ || writing_) return verdict::queued;
    writing_ = true;
    return verdict::start_writer;
  }

  const std::size_t max_frames_;
  const std::size_t max_bytes_;
  mutable std::mutex mu_;  // held only to move pointers, never across I/O
  std::vector<frame_ptr> frames_;
  std::vector<std::function<void()>> drained_;  // of the pages in frames_
  std::size_t bytes_ = 0;
  bool started_ = false;
  bool writing_ = false;
  bool closing_ = false;
};

}  // namespace sb
