// Which nodes hold a channel (or a user's connection count): rendezvous
// hashing. Every node ranks the members it sees up by hash(node, key), so
// nodes that agree on the members agree on the owner (the first) and the
// replicas (the next ones), and a member leaving moves only its own keys.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sb {

uint64_t rendezvous_score(std::string_view node, std::string_view key);

// `nodes` ordered best first for `key`; ties (never seen in practice) go to
// the smaller id, so the order is the same on every node.
std::vector<std::string> rank_nodes(std::vector<std::string> nodes, std::string_view key);

}  // namespace sb
