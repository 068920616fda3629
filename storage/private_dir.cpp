#include "storage/private_dir.hpp"

#include <filesystem>

#include "core/log.hpp"
#include "storage/event_log.hpp"

namespace sb {

namespace {

namespace fs = std::filesystem;

constexpr fs::perms open_bits = fs::perms::group_all | fs::perms::others_all;

// True when `p` had group or other bits and lost them.
bool tighten(const fs::path& p, std::error_code& ec) {
  auto st = fs::symlink_status(p, ec);
  if (ec || fs::is_symlink(st) || (st.permissions() & open_bits) == fs::perms::none) return false;
  fs::permissions(p, open_bits, fs::perm_options::remove, ec);
  return !ec;
}

}  // namespace

void make_private_dir(const std::string& dir) {
  std::error_code ec;
  bool existed = fs::exists(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) throw storage_error("cannot create data folder '" + dir + "': " + ec.message());
  std::size_t tightened = tighten(dir, ec) ? 1 : 0;
  fs::recursive_directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) tightened += tighten(it->path(), ec) ? 1 : 0;
  if (ec) log::warn("data_dir_not_private", {{"dir", dir}, {"why", ec.message()}});
  if (existed && tightened > 0)
    log::warn("data_dir_made_private", {{"dir", dir}, {"entries", tightened}});
}

}  // namespace sb
