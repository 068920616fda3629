#include <doctest/doctest.h>

#include "net/outbound_queue.hpp"

using sb::outbound_queue;
using verdict = sb::outbound_queue::verdict;

namespace {

sb::frame_ptr frame(std::size_t size, char fill = 'x') {
  auto f = std::make_shared<sb::wire_frame>();
  f->bytes.assign(size, fill);
  return f;
}

}  // namespace

TEST_CASE("outbound queue: nothing is written before the greeting, which goes first") {
  outbound_queue q(10, 1000);
  CHECK(q.push(frame(10, 'a')) == verdict::queued);
  CHECK(q.push(frame(10, 'b')) == verdict::queued);
  CHECK(q.start(frame(10, 'g')) == verdict::start_writer);
  std::vector<sb::frame_ptr> batch;
  std::vector<std::function<void()>> drained;
  REQUIRE(q.take(batch, drained));
  REQUIRE(batch.size() == 3);
  CHECK(batch[0]->bytes[0] == 'g');
  CHECK(batch[1]->bytes[0] == 'a');
  CHECK(batch[2]->bytes[0] == 'b');
}

TEST_CASE("outbound queue: one writer wake-up per busy period, and batching") {
  outbound_queue q(100, 100000);
  q.start(frame(1));
  std::vector<sb::frame_ptr> batch;
  std::vector<std::function<void()>> drained;
  REQUIRE(q.take(batch, drained));
  CHECK(q.push(frame(1)) == verdict::queued);  // the writer is still busy
  CHECK(q.push(frame(1)) == verdict::queued);
  batch.clear();
  REQUIRE(q.take(batch, drained));
  CHECK(batch.size() == 2);
  batch.clear();
  CHECK_FALSE(q.take(batch, drained));                        // idle now
  CHECK(q.push(frame(1)) == verdict::start_writer);  // so the next push wakes it
}

TEST_CASE("outbound queue: bounds in frames and in bytes") {
  outbound_queue by_frames(3, 100000);
  by_frames.start(frame(1));
  CHECK(by_frames.push(frame(1)) != verdict::overflow);
  CHECK(by_frames.push(frame(1)) != verdict::overflow);
  CHECK(by_frames.push(frame(1)) == verdict::overflow);

  outbound_queue by_bytes(1000, 100);
  CHECK(by_bytes.push(frame(60)) == verdict::queued);
  CHECK(by_bytes.push(frame(40)) == verdict::queued);
  CHECK(by_bytes.push(frame(1)) == verdict::overflow);
  CHECK(by_bytes.size() == 2);
}

TEST_CASE("outbound queue: close drops pending frames when asked and refuses more") {
  outbound_queue q(10, 1000);
  q.start(frame(1, 'g'));
  std::vector<sb::frame_ptr> batch;
  std::vector<std::function<void()>> drained;
  q.take(batch, drained);
  q.push(frame(1, 'a'));
  CHECK(q.close(frame(1, 'c'), /*drop_pending=*/true) == verdict::queued);
  CHECK(q.close(frame(1, 'd'), true) == verdict::closed);
  CHECK(q.push(frame(1)) == verdict::closed);
  batch.clear();
  REQUIRE(q.take(batch, drained));
  REQUIRE(batch.size() == 1);
  CHECK(batch[0]->bytes[0] == 'c');

  outbound_queue keep(10, 1000);
  keep.start(frame(1, 'g'));
  keep.push(frame(1, 'a'));
  keep.close(frame(1, 'c'), /*drop_pending=*/false);
  batch.clear();
  REQUIRE(keep.take(batch, drained));
  CHECK(batch.size() == 3);
  CHECK(batch.back()->bytes[0] == 'c');
}

TEST_CASE("outbound queue: kill drops everything") {
  outbound_queue q(10, 1000);
  q.start(frame(1));
  q.kill();
  CHECK(q.closing());
  CHECK(q.size() == 0);
  CHECK(q.push(frame(1)) == verdict::closed);
}

TEST_CASE("outbound queue: a page is queued whole or not at all, within the bounds") {
  outbound_queue q(4, 1000);
  q.start(frame(1));
  CHECK(q.push_page({frame(1), frame(1)}, {}) == verdict::queued);
  CHECK(q.push_page({frame(1), frame(1)}, {}) == verdict::overflow);
  CHECK(q.size() == 3);

  outbound_queue by_bytes(100, 100);
  CHECK(by_bytes.push_page({frame(50), frame(50), frame(1)}, {}) == verdict::overflow);
  CHECK(by_bytes.size() == 0);
}

TEST_CASE("outbound queue: a page's callback goes to the writer with the batch that takes it") {
  outbound_queue q(10, 1000);
  int runs = 0;
  CHECK(q.push_page({frame(1)}, [&] { ++runs; }) == verdict::queued);
  CHECK(q.start(frame(1)) == verdict::start_writer);
  std::vector<sb::frame_ptr> batch;
  std::vector<std::function<void()>> drained;
  REQUIRE(q.take(batch, drained));
  CHECK(batch.size() == 2);
  REQUIRE(drained.size() == 1);
  drained.front()();
  CHECK(runs == 1);
  batch.clear();
  drained.clear();
  CHECK_FALSE(q.take(batch, drained));
  CHECK(drained.empty());

  outbound_queue dropped(10, 1000);
  dropped.start(frame(1));
  dropped.push_page({frame(1)}, [&] { ++runs; });
  dropped.close(frame(1), /*drop_pending=*/true);
  batch.clear();
  REQUIRE(dropped.take(batch, drained));
  CHECK(drained.empty());
}
