#include "cluster/term_history.hpp"

#include <algorithm>

namespace sb {

namespace {

constexpr std::size_t max_entries = 64;

// The ids [first, last] the i-th entry covers in a log ending at `last_id`.
struct span {
  uint64_t first = 0;
  uint64_t last = 0;
};

span span_of(const term_history& h, std::size_t i, uint64_t last_id) {
  uint64_t end = i + 1 < h.size() ? h[i + 1].first_id - 1 : last_id;
  return {h[i].first_id, std::min(end, last_id)};
}

}  // namespace

term_id term_of(const term_history& h, uint64_t id) {
  term_id t;
  for (const auto& e : h) {
    if (e.first_id > id) break;
    t = e.term;
  }
  return t;
}

term_id newest_term(const term_history& h) {
  term_id t;
  for (const auto& e : h) t = std::max(t, e.term);
  return t;
}

bool newer(const term_history& h_a, uint64_t last_a, const term_history& h_b, uint64_t last_b) {
  auto ta = term_of(h_a, last_a);
  auto tb = term_of(h_b, last_b);
  if (ta != tb) return tb < ta;
  return last_a > last_b;
}

uint64_t agreed_upto(const term_history& h_a, uint64_t last_a, const term_history& h_b,
                     uint64_t last_b) {
  uint64_t limit = std::min(last_a, last_b);
  // Ids before either history's first entry were written before terms.
  uint64_t untermed = std::min(h_a.empty() ? limit + 1 : h_a.front().first_id,
                               h_b.empty() ? limit + 1 : h_b.front().first_id);
  for (std::size_t i = h_a.size(); i-- > 0;) {
    auto a = span_of(h_a, i, limit);
    if (a.first > a.last) continue;
    for (std::size_t j = 0; j < h_b.size(); ++j) {
      if (h_b[j].term != h_a[i].term) continue;
      auto b = span_of(h_b, j, limit);
      if (std::max(a.first, b.first) <= std::min(a.last, b.last)) return std::min(a.last, b.last);
    }
  }
  return std::min(limit, untermed - 1);
}

term_history cut_after(term_history h, uint64_t last) {
  while (!h.empty() && h.back().first_id > last + 1) h.pop_back();
  return h;
}

term_history begin_term(term_history h, term_id t, uint64_t first_id) {
  h = cut_after(std::move(h), first_id - 1);
  if (!h.empty() && h.back().first_id == first_id) h.pop_back();  // a term that wrote nothing
  h.push_back({std::move(t), first_id});
  if (h.size() > max_entries) h.erase(h.begin(), h.end() - max_entries);
  return h;
}

}  // namespace sb
