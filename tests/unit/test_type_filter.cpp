#include <doctest/doctest.h>

#include "core/type_filter.hpp"

namespace {

sb::event app_event(const std::string& type) {
  sb::event e;
  e.body.kind = sb::event_kind::app;
  e.body.app_type = type;
  return e;
}

}  // namespace

TEST_CASE("type filter: empty wants everything; otherwise only its types") {
  sb::type_filter none;
  CHECK(sb::wants(none, app_event("grade_update")));
  sb::type_filter some{"grade_update", "message"};
  CHECK(sb::wants(some, app_event("grade_update")));
  CHECK_FALSE(sb::wants(some, app_event("notification")));
  sb::event m;
  m.body.kind = sb::event_kind::message;
  CHECK(sb::wants(some, m));
}

TEST_CASE("type filter: a change over the cap is refused whole") {
  auto f = sb::changed_filter({}, {"a", "b", "a"}, true, 3);
  REQUIRE(f);
  CHECK(f->size() == 2);
  CHECK_FALSE(sb::changed_filter(*f, {"c", "d"}, true, 3));
  auto g = sb::changed_filter(*f, {"a", "b", "c"}, true, 3);  // repeats count once
  REQUIRE(g);
  CHECK(g->size() == 3);
  auto h = sb::changed_filter(*g, {"b", "zzz"}, false, 3);
  REQUIRE(h);
  CHECK(*h == sb::type_filter{"a", "c"});
}

TEST_CASE("type filter: thousands of types in one change stay cheap and bounded") {
  std::vector<std::string> many;
  for (int i = 0; i < 5000; ++i) many.push_back("n" + std::to_string(i));
  CHECK_FALSE(sb::changed_filter({}, many, true, 100));
  auto all = sb::changed_filter({}, many, true, 5000);
  REQUIRE(all);
  CHECK(all->size() == 5000);
  CHECK(sb::changed_filter(*all, many, false, 100)->empty());
}
