#include "tools/table.hpp"

#include <algorithm>

namespace sbctl {

std::string render_table(const row& header, const std::vector<row>& rows) {
  std::vector<std::size_t> width(header.size());
  for (std::size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (auto& r : rows)
    for (std::size_t i = 0; i < r.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], r[i].size());
  auto line = [&](const row& r) {
    std::string out;
    for (std::size_t i = 0; i < width.size(); ++i) {
      std::string cell = i < r.size() ? r[i] : std::string{};
      bool last = i + 1 == width.size();
      out += last ? cell : cell + std::string(width[i] - cell.size() + 2, ' ');
    }
    return out + "\n";
  };
  std::string out = line(header);
  for (auto& r : rows) out += line(r);
  if (rows.empty()) out += "(none)\n";
  return out;
}

}  // namespace sbctl
