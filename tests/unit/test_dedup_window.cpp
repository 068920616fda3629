#include <doctest/doctest.h>

#include "core/dedup_window.hpp"

TEST_CASE("dedup window: a resend within the window returns the first event id") {
  sb::dedup_window w(600000);
  auto k = sb::dedup_window::key("42", "m1");
  CHECK_FALSE(w.find(k, 1000));
  w.remember(k, 7, 1000);
  CHECK(*w.find(k, 2000) == 7);
  w.remember(k, 9, 3000);  // the first answer stays
  CHECK(*w.find(k, 3000) == 7);
  CHECK_FALSE(w.find(sb::dedup_window::key("43", "m1"), 3000));
  CHECK_FALSE(w.find(sb::dedup_window::key("4", "2m1"), 3000));
}

TEST_CASE("dedup window: ids expire after the window") {
  sb::dedup_window w(600000);
  w.remember("a", 1, 0);
  w.remember("b", 2, 300000);
  CHECK(w.find("a", 599999));
  CHECK_FALSE(w.find("a", 600000));
  CHECK(w.size() == 1);
  CHECK(*w.find("b", 899999) == 2);
  CHECK_FALSE(w.find("b", 900000));
  CHECK(w.size() == 0);
}

TEST_CASE("dedup window: a backend's key (no user) never equals a client's") {
  // Backends' idempotency keys are printable ASCII: their only NUL is first.
  auto api = sb::dedup_window::key("", "42");
  CHECK(api != sb::dedup_window::key("4", "2"));
  CHECK(api.find('\0', 1) == std::string::npos);
  // A user id starting with NUL still puts another one after it.
  CHECK(sb::dedup_window::key(std::string("\0" "4", 2), "2").find('\0', 1) != std::string::npos);
}

TEST_CASE("dedup window: past max_keys the oldest key is forgotten early") {
  sb::dedup_window w(600000);
  for (std::size_t i = 0; i <= sb::dedup_window::max_keys; ++i) w.remember(std::to_string(i), i + 1, 0);
  CHECK(w.size() == sb::dedup_window::max_keys);
  CHECK_FALSE(w.find("0", 1));
  CHECK(*w.find("1", 1) == 2);
  CHECK(*w.find(std::to_string(sb::dedup_window::max_keys), 1) == sb::dedup_window::max_keys + 1);
}
