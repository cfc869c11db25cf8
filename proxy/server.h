// The main thread: owns the configuration, the workers, signals (reload, drain) and logging.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/handshake_counts.h"
#include "proxy/snapshot.h"

namespace wsb::proxy {

class Worker;
class AdminListener;

class Server {
 public:
  // `config_path` empty = the embedded default (reload then re-reads nothing).
  Server(config::ConfigPtr config, std::string config_path);
  ~Server();

  // Builds the snapshot, binds listeners, runs until SIGINT/SIGTERM and the drain end.
  // Returns the process exit code.
  int run();

 private:
  // Loads the config file again; the errors (file:line:col) when it is refused, else none.
  std::vector<std::string> reload();
  void drain();

  config::ConfigPtr config_;
  std::string config_path_;
  SnapshotPtr snapshot_;
  HandshakeCounts handshakes_;  // every worker's; declared before them, so it outlives them
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<AdminListener> admin_;  // set when [admin] has an address
};

// Configures spdlog's default logger from the runtime section.
void setupLogging(const config::Runtime& runtime);

}  // namespace wsb::proxy
