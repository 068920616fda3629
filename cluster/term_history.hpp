// A channel's term history: which leadership term sequenced which ids.
// Comparing two nodes' histories tells a new owner whose history to
// continue (the newest term wins, then the longest log) and up to which id
// two logs hold the same events: an id written in the same term holds the
// same event on every node, because one primary sequences a term and its
// replicas only append what it sent them after checking they agree up to
// there (as Raft's log matching does).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/event_log.hpp"

namespace sb {

using term_history = std::vector<term_start>;

// The term that sequenced `id`; the zero term for ids before the first
// entry (logs written before terms existed).
term_id term_of(const term_history& h, uint64_t id);

// The newest term the history names, whether or not it wrote anything.
term_id newest_term(const term_history& h);

// Whether a log (h_a, last_a) is newer than (h_b, last_b): its last event's
// term is newer, or the terms are the same and it is longer.
bool newer(const term_history& h_a, uint64_t last_a, const term_history& h_b, uint64_t last_b);

// The largest id up to which two logs of one epoch hold the same events.
uint64_t agreed_upto(const term_history& h_a, uint64_t last_a, const term_history& h_b,
                     uint64_t last_b);

// The history as it stands once the log is cut after `last`.
term_history cut_after(term_history h, uint64_t last);

// `h` continued by a new term starting at `first_id`; the oldest entries go
// beyond a bound (they describe events long trimmed).
term_history begin_term(term_history h, term_id t, uint64_t first_id);

}  // namespace sb
