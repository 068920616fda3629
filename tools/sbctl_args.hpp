// sbctl's command line: global options, one command, its arguments and
// options, checked against the command's shape; and the admin request that
// a command makes. No I/O here.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace sbctl {

// Exit codes, documented in `sbctl --help`.
enum exit_code : int { ok = 0, not_found = 1, bad_arguments = 2, unreachable = 3, auth_failed = 4 };

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct invocation {
  std::string command;  // empty with --help alone
  std::vector<std::string> args;
  std::map<std::string, std::string> options;  // the command's own, without "--"
  std::string address = "127.0.0.1:8100";      // the node's admin interface
  std::string token;
  bool json = false;
  bool help = false;
};

// `argv` without the program name; `env` supplies SBCTL_NODE and
// SWITCHBOARD_ADMIN_TOKEN. Throws usage_error. `token` is not parsed here.
invocation parse_args(const std::vector<std::string>& argv,
                      const std::map<std::string, std::string>& env);

// The HTTP request a command makes to the admin interface.
struct admin_call {
  std::string method;
  std::string target;  // path and query
  std::string body;
};

admin_call call_for(const invocation& inv);

// "host:port" -> host and port; throws usage_error.
std::pair<std::string, uint16_t> split_address(const std::string& address);

extern const char* const usage;

}  // namespace sbctl
