// sbctl: Switchboard's admin CLI. This build has the `token` command, which
// mints HS256 tokens for development and tests.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.hpp"
#include "net/jwt.hpp"

namespace {

constexpr const char* usage = R"(usage: sbctl token --user ID [options]

Mints a signed access token (HS256) for development and tests.

  --user ID          user id (a number stays a JSON number, e.g. 42)
  --name NAME        display name
  --role ROLE        role, e.g. admin, moderator, mentor, cadet
  --channels LIST    comma-separated channels or patterns, e.g. chat:123,session:*
  --ttl SECONDS      lifetime (default 3600)
  --secret SECRET    signing secret; else SWITCHBOARD_JWT_SECRET; else the
  --config FILE      config file's auth.jwt_secret

Exit codes: 0 ok, 2 bad arguments or config.
)";

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "sbctl: %s\n", message.c_str());
  std::exit(2);
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string secret_from(const std::string& given, const std::string& config_path) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("SWITCHBOARD_JWT_SECRET"); env && *env) return env;
  if (config_path.empty()) fail("no secret: pass --secret, --config or set SWITCHBOARD_JWT_SECRET");
  std::ifstream in(config_path, std::ios::binary);
  if (!in) fail("cannot read '" + config_path + "': " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return sb::load_config(text.str(), {}, {}).auth.jwt_secret;
  } catch (const sb::config_error& e) {
    fail(e.what());
  }
}

int token(int argc, char** argv) {
  nlohmann::json claims = nlohmann::json::object();
  std::string secret, config_path;
  long long ttl = 3600;
  for (int i = 2; i < argc; ++i) {
    std::string opt = argv[i];
    if (opt == "--help") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (i + 1 >= argc) fail(opt + " needs a value (try --help)");
    std::string value = argv[++i];
    if (opt == "--user") {
      bool numeric = !value.empty() && value.size() < 19 &&
                     value.find_first_not_of("0123456789") == std::string::npos;
      claims["user_id"] = numeric ? nlohmann::json(std::stoll(value)) : nlohmann::json(value);
    } else if (opt == "--name") {
      claims["name"] = value;
    } else if (opt == "--role") {
      claims["role"] = value;
    } else if (opt == "--channels") {
      claims["channels"] = split(value);
    } else if (opt == "--ttl") {
      char* end = nullptr;
      ttl = std::strtoll(value.c_str(), &end, 10);
      if (*end != '\0' || ttl <= 0) fail("--ttl must be a positive number of seconds");
    } else if (opt == "--secret") {
      secret = value;
    } else if (opt == "--config") {
      config_path = value;
    } else {
      fail("unknown option '" + opt + "' (try --help)");
    }
  }
  if (!claims.contains("user_id")) fail("--user is required");
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  claims["iat"] = now;
  claims["exp"] = now + ttl;
  claims["token_type"] = "access";
  std::printf("%s\n", sb::jwt::sign(claims.dump(), secret_from(secret, config_path)).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0) {
    std::fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (std::strcmp(argv[1], "token") == 0) return token(argc, argv);
  fail(std::string{"unknown command '"} + argv[1] + "' (try --help)");
}
