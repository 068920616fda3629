#include "cluster/ownership.hpp"

#include <algorithm>

namespace sb {

namespace {

// FNV-1a, then a splitmix64 finaliser: FNV alone leaves keys that differ in
// their last bytes close together, which skews who wins.
uint64_t fnv1a(uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t rendezvous_score(std::string_view node, std::string_view key) {
  auto h = fnv1a(0xcbf29ce484222325ULL, node);
  h = fnv1a(h, std::string_view{"\0", 1});  // keeps ("ab","c") apart from ("a","bc")
  return mix(fnv1a(h, key));
}

std::vector<std::string> rank_nodes(std::vector<std::string> nodes, std::string_view key) {
  std::sort(nodes.begin(), nodes.end(), [&](const std::string& a, const std::string& b) {
    auto sa = rendezvous_score(a, key), sb = rendezvous_score(b, key);
    return sa != sb ? sa > sb : a < b;
  });
  return nodes;
}

}  // namespace sb
