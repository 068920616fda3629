#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "core/request_bucket.hpp"

TEST_CASE("request bucket: connections of one user on several threads share one burst") {
  sb::request_bucket bucket(0.001, 500);
  std::atomic<int> taken{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i)
        if (bucket.try_take()) ++taken;
    });
  for (auto& t : threads) t.join();
  CHECK(taken == 500);
  CHECK(bucket.tokens() < 1);
}
