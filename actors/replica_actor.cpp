#include "actors/replica_actor.hpp"

#include <limits>
#include <map>

#include "core/log.hpp"
#include "core/time.hpp"

namespace sb {

namespace {

// An append under way, and whom to answer once it is durable.
struct queued_append {
  caf::response_promise rp;
  std::string channel;
  uint64_t last_event_id = 0;
};

// A new owner's question, held until this node's appends of that channel
// are on disk: an answer that missed them would let the new owner reuse
// their ids.
struct held_sync {
  caf::response_promise rp;
  std::string node;
  std::string epoch;
  uint64_t since = 0;
  uint64_t upto = 0;
};

struct replica_state {
  event_log* log = nullptr;
  std::string node;
  view_ptr view;
  uint64_t next_ticket = 0;
  std::map<uint64_t, queued_append> waiting;               // by ticket
  std::map<std::string, std::vector<held_sync>> held;      // by channel
};

bool appending(const replica_state& st, const std::string& channel) {
  for (auto& [ticket, q] : st.waiting)
    if (q.channel == channel) return true;
  return false;
}

using replica = caf::stateful_actor<replica_state>;

// Whether `b` may be stored: it comes from the channel's owner as this node
// sees it, and rewrites no event this node has with other content (a node
// that was cut off, or hung, and still thinks it owns the channel).
bool acceptable(const replica_state& st, const replica_batch& b,
                const std::optional<channel_meta>& meta) {
  if (st.view && !st.view->owners.empty() && st.view->rank(b.channel).front().id != b.from)
    return false;
  if (!meta || meta->epoch != b.epoch) return true;
  for (auto& r : b.records) {
    if (r.event_id > meta->last_event_id) break;
    auto mine = st.log->get(b.channel, r.event_id);
    if (mine && mine->payload != r.payload) return false;
  }
  return true;
}

caf::result<caf::message> replicate(replica* self, replica_batch& b) {
  auto& st = self->state;
  append_request req;
  auto meta = st.log->peek(b.channel);
  if (!acceptable(st, b, meta)) {
    log::warn("replica_refused", {{"channel", b.channel}, {"from", b.from}});
    return make_error(sb_error::not_owner);
  }
  // Another epoch here is history this node kept from before the channel's
  // history was lost: it must not mix with the new one.
  req.reset = meta && meta->epoch != b.epoch;
  if (req.reset)
    log::warn("replica_reset", {{"channel", b.channel}, {"old_epoch", meta->epoch},
                                {"epoch", b.epoch}});
  req.channel = std::move(b.channel);
  req.epoch = std::move(b.epoch);
  req.last_event_id = b.records.empty() ? 0 : b.records.back().event_id;
  req.records = std::move(b.records);
  req.dedup = std::move(b.dedup);
  req.rewrites = std::move(b.rewrites);
  auto ticket = ++st.next_ticket;
  auto rp = self->make_response_promise();
  st.waiting.emplace(ticket, queued_append{rp, req.channel, req.last_event_id});
  req.done = [h = caf::actor{self}, ticket](const std::string& error) {
    caf::anon_send(h, appended_atom::value, ticket, error);
  };
  if (!st.log->append(std::move(req))) {
    st.waiting.erase(ticket);
    return make_error(sb_error::storage_failed);
  }
  return rp;
}

caf::behavior replica_behavior(replica* self, event_log* log, std::string node) {
  self->state.log = log;
  self->state.node = std::move(node);
  return {
      [=](replicate_atom, replica_batch& b) { return replicate(self, b); },
      [=](view_atom, view_ptr& v) { self->state.view = std::move(v); },
      [=](sync_atom, const std::string& channel, const std::string& node,
          const std::string& epoch, uint64_t since, uint64_t upto) -> caf::result<sync_reply> {
        auto& st = self->state;
        if (!appending(st, channel))
          return read_for_sync(*st.log, channel, st.node, epoch, since, upto);
        auto rp = self->make_response_promise();
        st.held[channel].push_back({rp, node, epoch, since, upto});
        return rp;
      },
      [=](appended_atom, uint64_t ticket, const std::string& error) {
        auto& st = self->state;
        auto it = st.waiting.find(ticket);
        if (it == st.waiting.end()) return;
        auto q = std::move(it->second);
        st.waiting.erase(it);
        if (error.empty())
          q.rp.deliver(q.last_event_id);
        else
          q.rp.deliver(make_error(sb_error::storage_failed));
        auto h = st.held.find(q.channel);
        if (h == st.held.end() || appending(st, q.channel)) return;
        for (auto& s : h->second)
          s.rp.deliver(read_for_sync(*st.log, q.channel, st.node, s.epoch, s.since, s.upto));
        st.held.erase(h);
      },
  };
}

}  // namespace

sync_reply read_for_sync(event_log& log, const std::string& channel, const std::string& node,
                         const std::string& epoch, uint64_t since, uint64_t upto) {
  sync_reply r;
  r.node = node;
  auto meta = log.peek(channel);
  if (!meta) return r;
  r.epoch = meta->epoch;
  r.last_event_id = std::min(meta->last_event_id, upto);
  if (r.last_event_id > since || meta->epoch != epoch) {
    r.records = log.read_after(channel, meta->epoch == epoch ? since : 0,
                               std::numeric_limits<std::size_t>::max());
    while (!r.records.empty() && r.records.back().event_id > upto) r.records.pop_back();
    r.dedup = log.recent_dedup(channel, now_ms());
  }
  return r;
}

caf::actor spawn_replica(caf::event_based_actor* parent, event_log* log, std::string node_id) {
  return parent->spawn(replica_behavior, log, std::move(node_id));
}

}  // namespace sb
