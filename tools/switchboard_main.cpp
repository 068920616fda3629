// switchboard: one node of the Switchboard real-time event broker.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include <malloc.h>
#include <sys/stat.h>

#include "actors/node.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "net/server.hpp"

extern char** environ;

namespace {

constexpr const char* usage = R"(usage: switchboard [--config FILE] [--KEY=VALUE ...]

  --config FILE, -c FILE   JSON config file (comments allowed); see configs/dev.json
  --KEY=VALUE              override one config key, e.g. --http.port=8001
                           or '--http.allowed_origins=["https://app.example"]'
                           (VALUE is read as JSON when it parses, else as a string)
  --check-config           validate the configuration, print it, and exit
  --help                   show this text

Secrets may also come from the environment: SWITCHBOARD_JWT_SECRET,
SWITCHBOARD_API_KEYS (comma-separated), SWITCHBOARD_ADMIN_TOKEN (sbctl's admin
interface). Command-line overrides win over the environment, which wins over
the file.
)";

struct options {
  std::string config_path;
  std::vector<std::string> overrides;
  bool check_only = false;
  bool help = false;
};

options parse_args(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      o.help = true;
    } else if (a == "--check-config") {
      o.check_only = true;
    } else if (a == "--config" || a == "-c") {
      if (i + 1 >= argc) throw sb::config_error("switchboard: " + a + " needs a file name");
      o.config_path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      o.config_path = a.substr(9);
    } else if (a.rfind("--", 0) == 0 && a.find('=') != std::string::npos) {
      o.overrides.push_back(a.substr(2));
    } else {
      throw sb::config_error("switchboard: unknown argument '" + a + "' (try --help)");
    }
  }
  return o;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw sb::config_error("config: cannot read '" + path + "': " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::map<std::string, std::string> environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (kv.rfind("SWITCHBOARD_", 0) == 0 && eq != std::string::npos)
      env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

}  // namespace

int main(int argc, char** argv) {
  // Every file the node creates (the event log, its WAL) is the node user's
  // alone: other local users must not read private chats.
  umask(077);
  // The server waits for these itself; block them before any thread starts
  // so none of CAF's or Asio's threads is killed by them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  sb::config cfg;
  options opts;
  try {
    opts = parse_args(argc, argv);
    if (opts.help) {
      std::fputs(usage, stdout);
      return 0;
    }
    std::string text = opts.config_path.empty() ? std::string{} : read_file(opts.config_path);
    cfg = sb::load_config(text, opts.overrides, environment());
  } catch (const sb::config_error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  if (opts.check_only) {
    std::printf("config ok: node %s, listening on %s:%u, %zu routes, %zu namespaces, admin %s\n",
                cfg.node_id.c_str(), cfg.http.host.c_str(), cfg.http.port, cfg.routes.size(),
                cfg.namespaces.size(),
                cfg.admin.enabled()
                    ? (cfg.admin.host + ":" + std::to_string(*cfg.admin.port)).c_str()
                    : "off");
    return 0;
  }
  // Before any thread starts: arenas are created per thread on demand.
  mallopt(M_ARENA_MAX, static_cast<int>(cfg.malloc_arenas));
  sb::log::configure(sb::log::parse_level(cfg.log.level), cfg.log.format == "json", cfg.node_id);

  try {
    auto node = std::make_unique<sb::actor_node>(cfg);
    sb::server srv(cfg, *node);
    auto port = srv.listen();
    sb::log::info("listening", {{"addr", cfg.http.host}, {"port", port}, {"node", cfg.node_id}});
    srv.run();
    // The actor system goes first, its threads joined, while the server is
    // still there: a connection actor's cleanup may drop the last reference
    // to its socket's session, whose destructor unregisters from the server.
    // Stopping the actors (await_all_actors_done) did not wait for that: the
    // ASan build caught a session destroyed after the server, once.
    node.reset();
  } catch (const std::exception& e) {
    sb::log::error("fatal", {{"why", e.what()}});
    return 1;
  }
  sb::log::info("stopped");
  return 0;
}
