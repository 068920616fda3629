#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "storage/private_dir.hpp"

namespace fs = std::filesystem;

namespace {

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

fs::path temp_dir() {
  std::string pattern = (fs::temp_directory_path() / "sb-private-XXXXXX").string();
  REQUIRE(::mkdtemp(pattern.data()) != nullptr);
  return pattern;
}

}  // namespace

TEST_CASE("make_private_dir creates the folder for the owner only") {
  auto base = temp_dir();
  auto dir = base / "a" / "data";
  sb::make_private_dir(dir.string());
  CHECK(mode_of(dir) == 0700);
  fs::remove_all(base);
}

TEST_CASE("make_private_dir takes group and other bits from an existing folder and its files") {
  auto dir = temp_dir();
  fs::create_directories(dir / "events");
  std::ofstream(dir / "events" / "000001.log") << "wal";
  auto outside = temp_dir();
  std::ofstream(outside / "shared") << "not ours to change";
  fs::permissions(outside / "shared", fs::perms(0644));
  fs::create_symlink(outside / "shared", dir / "link");
  fs::permissions(dir, fs::perms(0755));
  fs::permissions(dir / "events", fs::perms(0775));
  fs::permissions(dir / "events" / "000001.log", fs::perms(0644));
  sb::make_private_dir(dir.string());
  CHECK(mode_of(dir) == 0700);
  CHECK(mode_of(dir / "events") == 0700);
  CHECK(mode_of(dir / "events" / "000001.log") == 0600);
  CHECK(mode_of(outside / "shared") == 0644);  // a symlink is not followed
  fs::remove_all(dir);
  fs::remove_all(outside);
}
