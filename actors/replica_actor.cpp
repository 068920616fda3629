#include "actors/replica_actor.hpp"

#include <map>

#include "cluster/term_history.hpp"
#include "core/log.hpp"
#include "core/time.hpp"

namespace sb {

namespace {

// An append under way, and whom to answer once it is durable.
struct queued_append {
  caf::typed_response_promise<uint64_t> rp;
  std::string channel;
  uint64_t last_event_id = 0;
};

// A new owner's question, held until this node's appends of that channel
// are on disk: an answer that missed them would let the new owner reuse
// their ids.
struct held_sync {
  caf::response_promise rp;
  log_position asker;
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

// Whether `b` comes from the channel's owner as this node sees it, in a
// term no older than any this node has stored: a node that was cut off, or
// hung, and still thinks it owns the channel is refused.
bool from_owner(const replica_state& st, const replica_batch& b,
                const std::optional<channel_meta>& meta) {
  if (st.view && !st.view->owners.empty() && st.view->rank(b.channel).front().id != b.from)
    return false;
  return !meta || !(b.term < newest_term(meta->terms));
}

caf::result<uint64_t> replicate(replica* self, replica_batch& b) {
  auto& st = self->state;
  auto meta = st.log->peek(b.channel);
  if (!from_owner(st, b, meta)) {
    log::warn("replica_refused", {{"channel", b.channel}, {"from", b.from}, {"term", b.term.n}});
    return make_error(sb_error::not_owner);
  }
  // Another epoch here is history this node kept from before the channel's
  // history was lost: it must not mix with the new one.
  bool same_epoch = meta && meta->epoch == b.epoch;
  uint64_t have = same_epoch ? agreed_upto(b.terms, b.after, meta->terms, meta->last_event_id) : 0;
  if (have < b.after) {
    log::info("replica_behind", {{"channel", b.channel}, {"from", b.from}, {"have", have},
                                 {"after", b.after}});
    return have;
  }
  append_request req;
  req.reset = meta && !same_epoch;
  if (req.reset)
    log::warn("replica_reset", {{"channel", b.channel}, {"old_epoch", meta->epoch},
                                {"epoch", b.epoch}});
  if (same_epoch && meta->last_event_id > b.after) req.truncate_after = b.after;
  req.channel = std::move(b.channel);
  req.epoch = std::move(b.epoch);
  req.last_event_id = b.records.empty() ? b.after : b.records.back().event_id;
  req.records = std::move(b.records);
  req.dedup = std::move(b.dedup);
  req.rewrites = std::move(b.rewrites);
  req.terms = std::move(b.terms);
  auto ticket = ++st.next_ticket;
  auto rp = self->make_response_promise<uint64_t>();
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
      [=](sync_atom, const std::string& channel, const log_position& asker,
          uint64_t upto) -> caf::result<sync_reply> {
        auto& st = self->state;
        if (!appending(st, channel)) return read_for_sync(*st.log, channel, st.node, asker, upto);
        auto rp = self->make_response_promise();
        st.held[channel].push_back({rp, asker, upto});
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
          s.rp.deliver(read_for_sync(*st.log, q.channel, st.node, s.asker, s.upto));
        st.held.erase(h);
      },
  };
}

}  // namespace

sync_reply read_for_sync(event_log& log, const std::string& channel, const std::string& node,
                         const log_position& asker, uint64_t upto) {
  sync_reply r;
  r.node = node;
  auto meta = log.peek(channel);
  if (!meta) return r;
  r.epoch = meta->epoch;
  // A cut applies to this node's own writes, not to what it stored as a replica.
  bool own_tail = term_of(meta->terms, meta->last_event_id).node == node;
  r.last_event_id = own_tail ? std::min(meta->last_event_id, upto) : meta->last_event_id;
  r.newest = newest_term(meta->terms);
  r.terms = cut_after(std::move(meta->terms), r.last_event_id);
  if (asker.epoch == r.epoch)
    r.agreed = agreed_upto(asker.terms, asker.last_event_id, r.terms, r.last_event_id);
  if (r.last_event_id > r.agreed) {
    r.records = log.read_after(channel, r.agreed, r.last_event_id - r.agreed);
    // Only frame ids of events offered: a resend must not be answered with
    // an id the new owner will give another event.
    for (auto& d : log.recent_dedup(channel, now_ms()))
      if (d.event_id <= r.last_event_id) r.dedup.push_back(std::move(d));
  }
  return r;
}

caf::actor spawn_replica(caf::event_based_actor* parent, event_log* log, std::string node_id) {
  return parent->spawn(replica_behavior, log, std::move(node_id));
}

}  // namespace sb
