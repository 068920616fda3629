// The config loader (core/config) on the text of a config file, and on the
// same bytes as one `--KEY=VALUE` command-line override. A bad config must
// end in config_error (the server exits 2 naming the key); any other
// exception or a crash is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/config.hpp"

namespace {

void load(const std::string& text, const std::vector<std::string>& overrides) {
  try {
    sb::load_config(text, overrides, {});
  } catch (const sb::config_error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  load(input, {});
  load(R"({"auth": {"jwt_secret": "fuzz-secret-fuzz-secret-fuzz-secret"}})", {input});
  return 0;
}
