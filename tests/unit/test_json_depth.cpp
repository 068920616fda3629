#include <doctest/doctest.h>

#include <string>

#include "core/json_depth.hpp"

using sb::json_status;
using sb::max_json_depth;
using sb::nests_deeper_than;
using sb::parse_untrusted_json;

namespace {

std::string arrays(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string objects(std::size_t depth) {
  std::string s;
  for (std::size_t i = 0; i < depth; ++i) s += R"({"k":)";
  s += "1";
  s += std::string(depth, '}');
  return s;
}  // TEST_SUITE

}  // namespace

TEST_SUITE("json_depth") {

TEST_CASE("depth counts nested arrays and objects, up to the limit inclusive") {
  CHECK_FALSE(nests_deeper_than("1", 0));
  CHECK_FALSE(nests_deeper_than("[]", 1));
  CHECK(nests_deeper_than("[]", 0));
  CHECK_FALSE(nests_deeper_than(R"({"a": [1, {"b": 2}], "c": [3]})", 3));
  CHECK(nests_deeper_than(R"({"a": [1, {"b": 2}], "c": [3]})", 2));
  CHECK_FALSE(nests_deeper_than(arrays(64), 64));
  CHECK(nests_deeper_than(arrays(65), 64));
  CHECK(nests_deeper_than(objects(65), 64));
  // Siblings do not add up: depth is nesting, not count.
  std::string wide = "[";
  for (int i = 0; i < 1000; ++i) wide += "[],";
  wide += "[]]";
  CHECK_FALSE(nests_deeper_than(wide, 2));
}  // TEST_SUITE

TEST_CASE("brackets inside strings, escaped quotes included, do not count") {
  CHECK_FALSE(nests_deeper_than(R"(["[[[[{{{{"])", 1));
  CHECK_FALSE(nests_deeper_than(R"(["a\"[[[[", "\\", "]]"])", 1));
  CHECK(nests_deeper_than(R"(["\\", [[]]])", 2));
  // An unterminated string hides the rest; the parser refuses it anyway.
  CHECK_FALSE(nests_deeper_than(R"(["[[[[)", 1));
}  // TEST_SUITE

TEST_CASE("comments hide brackets only when comments are allowed") {
  std::string text = "// [[[[ \"\n[1, /* {{{{ \" */ 2]";
  CHECK_FALSE(nests_deeper_than(text, 1, /*comments=*/true));
  CHECK(nests_deeper_than(text, 1, /*comments=*/false));
  CHECK(nests_deeper_than("/* x */ [[1]] // [", 1, true));
  CHECK_FALSE(nests_deeper_than("[1] / 2 [", 1, true));  // a lone '/' is not a comment
}  // TEST_SUITE

TEST_CASE("parse_untrusted_json refuses deep input before building it") {
  auto ok = parse_untrusted_json(objects(max_json_depth));
  CHECK(ok.status == json_status::ok);
  CHECK(ok.value.is_object());
  auto deep = parse_untrusted_json(arrays(450000));
  CHECK(deep.status == json_status::too_deep);
  CHECK(deep.value.is_discarded());
  auto bad = parse_untrusted_json("{not json");
  CHECK(bad.status == json_status::malformed);
  CHECK(parse_untrusted_json("{} // c", /*comments=*/true).status == json_status::ok);
  CHECK(parse_untrusted_json("{} // c").status == json_status::malformed);
}  // TEST_SUITE

}  // TEST_SUITE
