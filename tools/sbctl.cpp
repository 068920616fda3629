// sbctl: Switchboard's admin CLI. `token` mints HS256 tokens for development
// and tests; every other command asks a node's admin interface (docs/admin.md).
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
#include "core/time.hpp"
#include "net/jwt.hpp"
#include "tools/http_client.hpp"
#include "tools/sbctl_args.hpp"
#include "tools/sbctl_render.hpp"

extern char** environ;

namespace {

constexpr const char* token_usage = R"(usage: sbctl token --user ID [options]

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
      std::fputs(token_usage, stdout);
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
  auto now = sb::now_s();
  claims["iat"] = now;
  claims["exp"] = now + ttl;
  claims["token_type"] = "access";
  std::printf("%s\n", sb::jwt::sign(claims.dump(), secret_from(secret, config_path)).c_str());
  return 0;
}

constexpr int answer_timeout_s = 15;  // the node gathers from its members within 10 s

std::map<std::string, std::string> environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

int exit_code_of(int status) {
  if (status == 401) return sbctl::auth_failed;
  if (status == 404) return sbctl::not_found;
  if (status == 400 || status == 405) return sbctl::bad_arguments;
  return sbctl::unreachable;
}

// A refused request: the node's message on stderr, an exit code for scripts.
int refused(const sbctl::http_response& r) {
  auto body = nlohmann::json::parse(r.body, nullptr, false);
  bool has_message = body.is_object() && body.contains("message") && body["message"].is_string();
  std::string message = has_message ? body["message"].get<std::string>() : r.body;
  if (r.status == 401) message = "the admin token was refused (check --token or SWITCHBOARD_ADMIN_TOKEN)";
  std::fprintf(stderr, "sbctl: %s (HTTP %d)\n", message.c_str(), r.status);
  return exit_code_of(r.status);
}

// SSE lines of /admin/tail: each `data:` line is one frame. The stream's
// own markers (`subscribed` first, `replay_complete` after a replay) are not
// events of the channel; an `event: close` is the node ending the stream.
int tail(const sbctl::invocation& inv) {
  long long count = inv.options.count("count") ? std::stoll(inv.options.at("count")) : -1;
  std::string event;
  bool closed_by_node = false;
  auto r = sbctl::http_stream(inv.address, sbctl::call_for(inv), inv.token, [&](const std::string& line) {
    if (line.rfind("event: ", 0) == 0) event = line.substr(7);
    if (line.rfind("data: ", 0) != 0) return true;
    auto frame = line.substr(6);
    if (event == "close") {
      std::fprintf(stderr, "sbctl: the node closed the stream: %s\n", frame.c_str());
      closed_by_node = true;
      return false;
    }
    auto j = nlohmann::json::parse(frame, nullptr, false);
    auto type = j.is_object() && j.contains("type") ? j["type"] : nlohmann::json();
    if (type == "subscribed" || type == "replay_complete") return true;
    std::printf("%s\n", frame.c_str());
    std::fflush(stdout);
    return --count != 0;
  });
  if (r.status != 200) return refused(r);
  return closed_by_node ? sbctl::unreachable : sbctl::ok;
}

int admin_command(const sbctl::invocation& inv) {
  if (inv.command == "tail") return tail(inv);
  auto r = sbctl::http_call(inv.address, sbctl::call_for(inv), inv.token, answer_timeout_s);
  if (r.status != 200) return refused(r);
  auto body = nlohmann::json::parse(r.body, nullptr, false);
  if (!body.is_object()) {
    std::fprintf(stderr, "sbctl: the node's answer is not a JSON object\n");
    return sbctl::unreachable;
  }
  std::fputs(inv.json ? (body.dump(2) + "\n").c_str() : sbctl::render(inv.command, body).c_str(), stdout);
  return sbctl::ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "token") == 0) return token(argc, argv);
  try {
    auto inv = sbctl::parse_args({argv + 1, argv + argc}, environment());
    if (inv.help) {
      std::fputs(sbctl::usage, stdout);
      return sbctl::ok;
    }
    return admin_command(inv);
  } catch (const sbctl::usage_error& e) {
    std::fprintf(stderr, "sbctl: %s\n", e.what());
    return sbctl::bad_arguments;
  } catch (const sbctl::unreachable_error& e) {
    std::fprintf(stderr, "sbctl: %s\n", e.what());
    return sbctl::unreachable;
  }
}
