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
  REQUIRE(q.take(batch));
  REQUIRE(batch.size() == 3);
  CHECK(batch[0]->bytes[0] == 'g');
  CHECK(batch[1]->bytes[0] == 'a');
  CHECK(batch[2]->bytes[0] == 'b');
}

TEST_CASE("outbound queue: one writer wake-up per busy period, and batching") {
  outbound_queue q(100, 100000);
  q.start(frame(1));
  std::vector<sb::frame_ptr> batch;
  REQUIRE(q.take(batch));
  CHECK(q.push(frame(1)) == verdict::queued);  // the writer is still busy
  CHECK(q.push(frame(1)) == verdict::queued);
  batch.clear();
  REQUIRE(q.take(batch));
  CHECK(batch.size() == 2);
  batch.clear();
  CHECK_FALSE(q.take(batch));                        // idle now
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
  q.take(batch);
  q.push(frame(1, 'a'));
  CHECK(q.close(frame(1, 'c'), /*drop_pending=*/true) == verdict::queued);
  CHECK(q.close(frame(1, 'd'), true) == verdict::closed);
  CHECK(q.push(frame(1)) == verdict::closed);
  batch.clear();
  REQUIRE(q.take(batch));
  REQUIRE(batch.size() == 1);
  CHECK(batch[0]->bytes[0] == 'c');

  outbound_queue keep(10, 1000);
  keep.start(frame(1, 'g'));
  keep.push(frame(1, 'a'));
  keep.close(frame(1, 'c'), /*drop_pending=*/false);
  batch.clear();
  REQUIRE(keep.take(batch));
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

TEST_CASE("outbound queue: a replay may exceed the bounds, later frames may not") {
  outbound_queue q(2, 1000);
  q.start(frame(1));
  std::vector<sb::frame_ptr> replay{frame(1), frame(1), frame(1)};
  CHECK(q.push_unbounded(std::move(replay)) == verdict::queued);
  CHECK(q.size() == 4);
  CHECK(q.push(frame(1)) == verdict::overflow);
}
