// A stand-in for the actor side of a node, for fuzz_http only: it answers
// every server API call at once, as a node with one stored event would, so
// that the fuzzer reaches net/api.cpp's body parsing and answer rendering
// without actors, threads or storage. Linked instead of actors/node.cpp.
#include "actors/node.hpp"

namespace sb {

struct actor_node::impl {};

actor_node::actor_node(const config&) : impl_(std::make_unique<impl>()) {}

actor_node::~actor_node() = default;

void actor_node::publish(const std::string& channel, draft, std::function<void(api_published)> done) {
  done({channel, 1, "fuzz-epoch", {}});
}

void actor_node::history(const std::string& channel, std::optional<uint64_t>,
                         std::optional<uint64_t>, std::size_t,
                         std::function<void(api_history)> done) {
  std::string stored = R"({"channel":")" + channel + R"(","event_id":1,"type":"message"})";
  done({"fuzz-epoch", {stored}, false, {}});
}

void actor_node::presence(const std::string&, std::function<void(api_presence)> done) {
  done({{{{"42", true, "Alice", ""}, 1}}, {}});
}

void actor_node::channel(const std::string&, std::function<void(api_channel)> done) {
  done({"fuzz-epoch", 1, "fuzz-node", {}, {}});
}

void actor_node::disconnect(const std::string&, std::function<void(uint32_t)> done) { done(0); }

}  // namespace sb
