#include <doctest/doctest.h>

#include "core/typing_states.hpp"

TEST_CASE("typing states: a repeated state within the window is not news") {
  sb::typing_states t(1000);
  CHECK(t.changed("42", true, 0));
  CHECK_FALSE(t.changed("42", true, 10));
  CHECK_FALSE(t.changed("42", true, 999));
  CHECK(t.changed("42", true, 1000));  // a keep-alive after the window goes out
  CHECK_FALSE(t.changed("42", true, 1500));
}

TEST_CASE("typing states: a change always goes out; users are apart") {
  sb::typing_states t(1000);
  CHECK(t.changed("42", true, 0));
  CHECK(t.changed("42", false, 1));
  CHECK(t.changed("42", true, 2));
  CHECK_FALSE(t.changed("42", true, 3));
  CHECK(t.changed("7", true, 3));
  CHECK(t.changed("7", false, 4));
  CHECK_FALSE(t.changed("7", false, 5));
  CHECK(t.size() == 2);
}

TEST_CASE("typing states: a user who left starts afresh") {
  sb::typing_states t(1000);
  CHECK(t.changed("42", false, 0));
  t.forget("42");
  CHECK(t.size() == 0);
  CHECK(t.changed("42", false, 1));
  t.forget("absent");
  CHECK(t.size() == 1);
}
