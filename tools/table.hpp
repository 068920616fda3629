// Plain-text tables for sbctl: columns padded to their widest cell.
#pragma once

#include <string>
#include <vector>

namespace sbctl {

using row = std::vector<std::string>;

// The header line, then one line per row; a row shorter than the header is
// padded with empty cells. "(none)" under the header when there are no rows.
std::string render_table(const row& header, const std::vector<row>& rows);

}  // namespace sbctl
