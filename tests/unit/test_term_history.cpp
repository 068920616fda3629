#include <doctest/doctest.h>

#include "cluster/term_history.hpp"

using sb::term_history;
using sb::term_id;

namespace {

term_id t(uint64_t n, const char* node) { return term_id{n, node}; }

}  // namespace

TEST_CASE("term history: the term of an id, and the newest term named") {
  term_history h{{t(1, "a"), 1}, {t(2, "b"), 5}, {t(4, "a"), 9}};
  CHECK(sb::term_of(h, 1) == t(1, "a"));
  CHECK(sb::term_of(h, 4) == t(1, "a"));
  CHECK(sb::term_of(h, 5) == t(2, "b"));
  CHECK(sb::term_of(h, 100) == t(4, "a"));
  CHECK(sb::term_of({}, 7) == term_id{});
  CHECK(sb::term_of(term_history{{t(3, "a"), 5}}, 4) == term_id{});
  CHECK(sb::newest_term(h) == t(4, "a"));
  // Two nodes that pick the same number still differ, in one order everywhere.
  CHECK(t(3, "a") < t(3, "b"));
  CHECK(t(2, "z") < t(3, "a"));
}

TEST_CASE("term history: a newer last term beats a longer log") {
  // A crashed after writing 5 in its term, unacknowledged; B took over and
  // acknowledged its own 5 in a newer term.
  term_history a{{t(1, "a"), 1}};
  term_history b{{t(1, "a"), 1}, {t(2, "b"), 5}};
  CHECK(sb::newer(b, 5, a, 5));
  CHECK_FALSE(sb::newer(a, 5, b, 5));
  CHECK(sb::newer(b, 5, a, 9));
  // Same last term: the longer log.
  CHECK(sb::newer(a, 6, a, 5));
  CHECK_FALSE(sb::newer(a, 5, a, 5));
  // Logs from before terms compare by length.
  CHECK(sb::newer({}, 3, {}, 2));
  CHECK(sb::newer(a, 1, {}, 9));
}

TEST_CASE("term history: how far two logs agree") {
  term_history a{{t(1, "a"), 1}};
  term_history b{{t(1, "a"), 1}, {t(2, "b"), 5}};
  SUBCASE("a tail in an older term goes") {
    CHECK(sb::agreed_upto(a, 5, b, 7) == 4);
    CHECK(sb::agreed_upto(b, 7, a, 5) == 4);
  }
  SUBCASE("the same term agrees up to the shorter log") {
    CHECK(sb::agreed_upto(b, 9, b, 7) == 7);
    CHECK(sb::agreed_upto(a, 3, b, 7) == 3);
  }
  SUBCASE("a replica that missed two terms agrees only before them") {
    term_history primary{{t(1, "a"), 1}, {t(2, "b"), 41}, {t(3, "c"), 45}};
    term_history replica{{t(1, "a"), 1}};
    CHECK(sb::agreed_upto(primary, 49, replica, 45) == 40);
  }
  SUBCASE("a replica that joined a term late agrees where it overlaps") {
    term_history primary{{t(1, "a"), 1}, {t(3, "c"), 45}};
    term_history late{{t(3, "c"), 50}};
    CHECK(sb::agreed_upto(primary, 60, late, 55) == 55);
  }
  SUBCASE("no term in common") {
    CHECK(sb::agreed_upto(term_history{{t(1, "a"), 1}}, 9, term_history{{t(2, "b"), 1}}, 9) == 0);
    CHECK(sb::agreed_upto(term_history{{t(1, "a"), 1}}, 9, {}, 9) == 0);
  }
  SUBCASE("logs from before terms agree as far as both go") {
    CHECK(sb::agreed_upto({}, 9, {}, 4) == 4);
    CHECK(sb::agreed_upto({}, 9, term_history{{t(2, "b"), 6}}, 8) == 5);
  }
  SUBCASE("an empty log agrees on nothing") { CHECK(sb::agreed_upto(b, 7, {}, 0) == 0); }
}

TEST_CASE("term history: cutting and beginning terms") {
  term_history h{{t(1, "a"), 1}, {t(2, "b"), 5}, {t(3, "c"), 9}};
  CHECK(sb::cut_after(h, 6) == term_history{{t(1, "a"), 1}, {t(2, "b"), 5}});
  CHECK(sb::cut_after(h, 8) == h);  // term 3 starts right after: kept, it wrote nothing yet
  CHECK(sb::cut_after(h, 3) == term_history{{t(1, "a"), 1}});
  // A term that wrote nothing is replaced by the next one.
  auto next = sb::begin_term(h, t(4, "a"), 9);
  CHECK(next == term_history{{t(1, "a"), 1}, {t(2, "b"), 5}, {t(4, "a"), 9}});
  // A term begun below the end drops what came after.
  CHECK(sb::begin_term(h, t(5, "b"), 6) ==
        term_history{{t(1, "a"), 1}, {t(2, "b"), 5}, {t(5, "b"), 6}});
  // The history stays bounded; the newest entries stay.
  term_history long_one;
  for (uint64_t i = 1; i <= 100; ++i) long_one = sb::begin_term(long_one, t(i, "a"), i);
  CHECK(long_one.size() == 64);
  CHECK(long_one.back().term == t(100, "a"));
  CHECK(long_one.front().first_id == 37);
}
