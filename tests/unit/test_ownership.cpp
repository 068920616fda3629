#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "cluster/ownership.hpp"

namespace {

std::vector<std::string> five_nodes() { return {"node-1", "node-2", "node-3", "node-4", "node-5"}; }

std::string key_of(int i) { return "chat:" + std::to_string(i); }

std::vector<std::string> without(std::vector<std::string> v, const std::string& gone) {
  v.erase(std::remove(v.begin(), v.end(), gone), v.end());
  return v;
}

}  // namespace

TEST_CASE("ownership: the ranking is deterministic and a permutation of the input") {
  auto nodes = five_nodes();
  auto sorted_input = nodes;
  std::sort(sorted_input.begin(), sorted_input.end());
  std::map<std::string, int> first_places;
  for (int i = 0; i < 200; ++i) {
    auto key = key_of(i);
    auto r = sb::rank_nodes(nodes, key);
    CHECK(r == sb::rank_nodes(nodes, key));
    REQUIRE(r.size() == nodes.size());
    auto sorted = r;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == sorted_input);
    // Best first: scores never increase along the ranking.
    for (std::size_t j = 1; j < r.size(); ++j)
      CHECK(sb::rendezvous_score(r[j - 1], key) >= sb::rendezvous_score(r[j], key));
    first_places[r.front()] += 1;
  }
  // The key matters: not every key has the same owner.
  CHECK(first_places.size() > 1);
  CHECK(sb::rendezvous_score("node-1", "chat:1") == sb::rendezvous_score("node-1", "chat:1"));
  CHECK(sb::rendezvous_score("node-1", "chat:1") != sb::rendezvous_score("node-1", "chat:2"));
  CHECK(sb::rendezvous_score("node-1", "chat:1") != sb::rendezvous_score("node-2", "chat:1"));
  CHECK(sb::rank_nodes({}, "chat:1").empty());
  CHECK(sb::rank_nodes({"solo"}, "chat:1") == std::vector<std::string>{"solo"});
}

TEST_CASE("ownership: the order of the input does not change the ranking") {
  auto nodes = five_nodes();
  for (int i = 0; i < 300; ++i) {
    auto key = key_of(i);
    auto expected = sb::rank_nodes(nodes, key);
    auto shuffled = nodes;
    std::reverse(shuffled.begin(), shuffled.end());
    CHECK(sb::rank_nodes(shuffled, key) == expected);
    std::rotate(shuffled.begin(), shuffled.begin() + 1 + i % 4, shuffled.end());
    CHECK(sb::rank_nodes(shuffled, key) == expected);
    std::swap(shuffled[i % 5], shuffled[(i + 2) % 5]);
    CHECK(sb::rank_nodes(shuffled, key) == expected);
  }
}

TEST_CASE("ownership: a node leaving moves only its own keys") {
  auto nodes = five_nodes();
  const std::string gone = "node-3";
  auto rest = without(nodes, gone);
  int moved = 0, removed_not_first = 0;
  for (int i = 0; i < 5000; ++i) {
    auto key = key_of(i);
    auto before = sb::rank_nodes(nodes, key);
    auto after = sb::rank_nodes(rest, key);
    // The others keep their relative order, whatever place the leaver had.
    CHECK(after == without(before, gone));
    if (before.front() != gone) {
      ++removed_not_first;
      CHECK(after.front() == before.front());  // the owner stays
    } else {
      ++moved;
      CHECK(after.front() == before[1]);  // its keys go to their first replica
    }
  }
  // The leaver owned about a fifth of the keys, and those were the only ones that moved.
  CHECK(moved > 700);
  CHECK(moved < 1300);
  CHECK(moved + removed_not_first == 5000);
}

TEST_CASE("ownership: keys spread roughly evenly") {
  const std::vector<std::string> nodes{"node-a", "node-b", "node-c"};
  const int keys = 30000;
  std::map<std::string, int> owned;
  std::map<std::string, int> second;
  for (int i = 0; i < keys; ++i) {
    auto r = sb::rank_nodes(nodes, key_of(i));
    owned[r[0]] += 1;
    second[r[1]] += 1;
  }
  REQUIRE(owned.size() == 3);
  for (const auto& [node, n] : owned) {
    INFO(node << " owns " << n << " of " << keys);
    CHECK(n >= keys * 28 / 100);
    CHECK(n <= keys * 39 / 100);
  }
  REQUIRE(second.size() == 3);
  for (const auto& [node, n] : second) {
    INFO(node << " is the first replica of " << n << " of " << keys);
    CHECK(n >= keys * 28 / 100);
    CHECK(n <= keys * 39 / 100);
  }
  // Keys that differ only in their last character, with numbered node ids.
  std::map<std::string, int> tail_owned;
  const std::vector<std::string> numbered{"node-1", "node-2", "node-3"};
  for (int i = 0; i < keys; ++i) {
    std::string key = "room-" + std::to_string(i / 26) + static_cast<char>('a' + i % 26);
    tail_owned[sb::rank_nodes(numbered, key).front()] += 1;
  }
  REQUIRE(tail_owned.size() == 3);
  for (const auto& [node, n] : tail_owned) {
    INFO(node << " owns " << n << " of " << keys);
    CHECK(n >= keys * 28 / 100);
    CHECK(n <= keys * 39 / 100);
  }
}

TEST_CASE("ownership: the separator keeps node and key apart") {
  CHECK(sb::rendezvous_score("ab", "c") != sb::rendezvous_score("a", "bc"));
  CHECK(sb::rendezvous_score("a", "bc") != sb::rendezvous_score("", "abc"));
  CHECK(sb::rendezvous_score("abc", "") != sb::rendezvous_score("ab", "c"));
  CHECK(sb::rendezvous_score("node-1", "0") != sb::rendezvous_score("node-", "10"));
}
