#include <doctest/doctest.h>

#include <chrono>

#include "core/rate_limiter.hpp"

using sb::rate_limiter;
using namespace std::chrono_literals;

namespace {

const rate_limiter::clock::time_point t0{std::chrono::hours(1000)};

}  // namespace

TEST_SUITE("rate_limiter") {

TEST_CASE("a fresh bucket allows a burst, then refuses") {
  rate_limiter limiter(1, 3, t0);
  CHECK(limiter.try_take(t0));
  CHECK(limiter.try_take(t0));
  CHECK(limiter.try_take(t0));
  CHECK_FALSE(limiter.try_take(t0));
  CHECK_FALSE(limiter.try_take(t0));
  CHECK(limiter.tokens(t0) == doctest::Approx(0));
}

TEST_CASE("tokens come back at the configured rate") {
  rate_limiter limiter(2, 2, t0);
  CHECK(limiter.try_take(t0));
  CHECK(limiter.try_take(t0));
  CHECK_FALSE(limiter.try_take(t0 + 499ms));
  CHECK(limiter.tokens(t0 + 499ms) == doctest::Approx(0.998));
  CHECK(limiter.try_take(t0 + 500ms));
  CHECK_FALSE(limiter.try_take(t0 + 500ms));
  CHECK(limiter.try_take(t0 + 1s));
  CHECK_FALSE(limiter.try_take(t0 + 1s));
}

TEST_CASE("a slow rate below one token a second") {
  rate_limiter limiter(0.5, 1, t0);
  CHECK(limiter.try_take(t0));
  CHECK_FALSE(limiter.try_take(t0 + 1s));
  CHECK_FALSE(limiter.try_take(t0 + 1999ms));
  CHECK(limiter.try_take(t0 + 2s));
}

TEST_CASE("an idle bucket fills up to the burst and no further") {
  rate_limiter limiter(10, 5, t0);
  for (int i = 0; i < 5; ++i) REQUIRE(limiter.try_take(t0));
  CHECK(limiter.tokens(t0 + 1h) == doctest::Approx(5));
  int taken = 0;
  while (limiter.try_take(t0 + 1h)) ++taken;
  CHECK(taken == 5);
}

TEST_CASE("a clock that goes backwards adds nothing and forgets nothing") {
  rate_limiter limiter(1, 2, t0);
  CHECK(limiter.try_take(t0 + 10s));
  CHECK(limiter.try_take(t0 + 10s));
  CHECK_FALSE(limiter.try_take(t0 + 5s));
  CHECK(limiter.tokens(t0) == doctest::Approx(0));
  CHECK(limiter.try_take(t0 + 11s));
}

TEST_CASE("sustained pressure is held to burst plus rate times duration") {
  rate_limiter limiter(10, 20, t0);
  int allowed = 0;
  for (int ms = 0; ms < 10000; ms += 10)
    if (limiter.try_take(t0 + std::chrono::milliseconds(ms))) ++allowed;
  // 20 from the burst, then 10 a second over the 9.99 s that follow.
  CHECK(allowed >= 118);
  CHECK(allowed <= 120);
}

TEST_CASE("a limiter with no burst never allows anything") {
  rate_limiter limiter(100, 0, t0);
  CHECK_FALSE(limiter.try_take(t0));
  CHECK_FALSE(limiter.try_take(t0 + 1h));
}

}  // TEST_SUITE
