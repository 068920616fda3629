#include <doctest/doctest.h>

#include <vector>

#include "net/connection_cap.hpp"

TEST_CASE("connection cap: at most `most` tickets; a closed one frees its place") {
  sb::connection_cap cap(2);
  auto a = cap.try_take();
  auto b = cap.try_take();
  REQUIRE(a);
  REQUIRE(b);
  CHECK(cap.open() == 2);
  CHECK_FALSE(cap.try_take());
  CHECK(cap.open() == 2);  // a refusal holds nothing
  a.reset();
  CHECK(cap.open() == 1);
  auto c = cap.try_take();
  CHECK(c);
  CHECK(cap.open() == 2);
}

TEST_CASE("connection cap: a moved ticket is released once") {
  sb::connection_cap cap(3);
  {
    auto t = cap.try_take();
    REQUIRE(t);
    std::vector<sb::connection_cap::ticket> held;
    held.push_back(std::move(*t));
    t.reset();
    CHECK(cap.open() == 1);
    auto u = cap.try_take();
    REQUIRE(u);
    held.front() = std::move(*u);  // the old place goes, the new one stays
    CHECK(cap.open() == 1);
  }
  CHECK(cap.open() == 0);
}
