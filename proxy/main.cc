// wsbridge command line: run, check, --version, --help.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "config/loader.h"
#include "proxy/server.h"
#include "proxy/snapshot.h"

namespace {

constexpr const char* kUsage =
    "usage: wsbridge [run] [-c FILE]   run the proxy\n"
    "       wsbridge check -c FILE     validate a config; prints ok or file:line:col errors\n"
    "       wsbridge --version\n"
    "       wsbridge --help\n"
    "\n"
    "Without -c, ./wsbridge.toml is used if present, else the embedded default config\n"
    "(a WebSocket relay from 127.0.0.1:8080 to the example backend on 127.0.0.1:9000).\n"
    "Signals: SIGHUP reloads the config file; SIGINT/SIGTERM stop accepting, close clients\n"
    "with 1001 and exit 0.\n";

struct Args {
  std::string command = "run";
  std::string config;
};

bool parseArgs(int argc, char** argv, Args* args) {
  int i = 1;
  if (i < argc && (std::strcmp(argv[i], "run") == 0 || std::strcmp(argv[i], "check") == 0)) {
    args->command = argv[i++];
  }
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-c" || a == "--config") && i + 1 < argc) {
      args->config = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      args->config = a.substr(9);
    } else {
      std::fprintf(stderr, "wsbridge: unexpected argument '%s'\n\n%s", a.c_str(), kUsage);
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace wsb;
  if (argc >= 2 && (std::strcmp(argv[1], "--version") == 0 || std::strcmp(argv[1], "version") == 0)) {
    std::printf("wsbridge %s\n", WSBRIDGE_VERSION);
    return 0;
  }
  if (argc >= 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
                    std::strcmp(argv[1], "help") == 0)) {
    std::printf("%s", kUsage);
    return 0;
  }
  Args args;
  if (!parseArgs(argc, argv, &args)) return 2;

  bool embedded = false;
  if (args.config.empty()) {
    if (args.command == "check") {
      std::fprintf(stderr, "wsbridge check: -c FILE is required\n");
      return 2;
    }
    if (std::filesystem::exists("wsbridge.toml")) {
      args.config = "wsbridge.toml";
    } else {
      embedded = true;
    }
  }
  config::LoadResult loaded = embedded
      ? config::loadString(config::embeddedDefaultConfig(), "<embedded default>")
      : config::loadFile(args.config);

  if (args.command == "check") {
    std::vector<std::string> errors = loaded.errors;
    if (loaded.ok()) proxy::Snapshot::build(loaded.config, &errors);
    if (errors.empty()) {
      std::printf("ok\n");
      return 0;
    }
    for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.c_str());
    return 1;
  }

  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.c_str());
    return 1;
  }
  proxy::setupLogging(loaded.config->runtime);
  if (embedded) {
    spdlog::info("wsbridge {}: no -c given and no ./wsbridge.toml; running the embedded default "
                 "config (ws://127.0.0.1:8080/ -> ws://127.0.0.1:9000)", WSBRIDGE_VERSION);
  } else {
    spdlog::info("wsbridge {}: config {}", WSBRIDGE_VERSION, args.config);
  }
  proxy::Server server(loaded.config, embedded ? std::string() : args.config);
  return server.run();
}
