// Server: startup, signals, reload and drain across workers.
#include "proxy/server.h"

#include <event2/event.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>

#include "codec/http1.h"
#include "config/loader.h"
#include "proxy/admin.h"
#include "proxy/dispatcher.h"
#include "proxy/worker.h"

namespace wsb::proxy {

namespace {
// %J: the log message as the inside of a JSON string.
class JsonMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string escaped = http::jsonEscape(std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};
}  // namespace

void setupLogging(const config::Runtime& runtime) {
  auto logger = std::make_shared<spdlog::logger>(
      "wsbridge", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (runtime.log_format == config::LogFormat::Json) {
    formatter->add_flag<JsonMessageFlag>('J').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","thread":%t,"msg":"%J"})");
  } else {
    formatter->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v");
  }
  logger->set_formatter(std::move(formatter));
  logger->set_level(spdlog::level::from_str(runtime.log_level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
}

Server::Server(config::ConfigPtr config, std::string config_path)
    : config_(std::move(config)), config_path_(std::move(config_path)) {}

Server::~Server() = default;

int Server::run() {
  // Signals first: a SIGTERM that arrives while listeners are being bound must drain, not kill.
  signal(SIGPIPE, SIG_IGN);
  Dispatcher main;
  struct Handlers {
    Server* server;
    Dispatcher* main;
  } handlers{this, &main};
  auto on_stop = [](evutil_socket_t sig, short, void* arg) {
    auto* h = static_cast<Handlers*>(arg);
    spdlog::info("{}: draining connections", sig == SIGINT ? "SIGINT" : "SIGTERM");
    h->server->drain();
    event_base_loopbreak(h->main->base());
  };
  auto on_hup = [](evutil_socket_t, short, void* arg) {
    spdlog::info("SIGHUP: reloading");
    static_cast<Handlers*>(arg)->server->reload();
  };
  event* sigint = evsignal_new(main.base(), SIGINT, on_stop, &handlers);
  event* sigterm = evsignal_new(main.base(), SIGTERM, on_stop, &handlers);
  event* sighup = evsignal_new(main.base(), SIGHUP, on_hup, &handlers);
  event_add(sigint, nullptr);
  event_add(sigterm, nullptr);
  event_add(sighup, nullptr);
  auto free_signals = [&] {
    event_free(sigint);
    event_free(sigterm);
    event_free(sighup);
  };

  std::vector<std::string> errors;
  snapshot_ = Snapshot::build(config_, &errors);
  if (!snapshot_) {
    for (const auto& e : errors) spdlog::error("{}", e);
    free_signals();
    return 1;
  }
  uint32_t count = config_->runtime.workers == 0 ? 1 : config_->runtime.workers;
  for (uint32_t i = 0; i < count; ++i) {
    auto worker = std::make_unique<Worker>(static_cast<int>(i), snapshot_, handshakes_);
    std::string error;
    if (!worker->bind(&error)) {
      spdlog::error("{}", error);
      free_signals();
      return 1;
    }
    workers_.push_back(std::move(worker));
  }
  if (config_->admin.address) {
    std::vector<WorkerHandle> handles;
    for (auto& w : workers_) {
      Worker* worker = w.get();
      handles.push_back({[worker](auto done) { worker->report(std::move(done)); }, &w->stats()});
    }
    // POST /reload and /drain run on this thread, like the signals.
    AdminActions actions;
    actions.reload = [this, &main](std::function<void(std::vector<std::string>)> done) {
      main.post([this, done = std::move(done)] { done(reload()); });
    };
    actions.drain = [this, &main] {
      main.post([this, &main] {
        drain();
        event_base_loopbreak(main.base());
      });
    };
    admin_ = std::make_unique<AdminListener>(std::move(handles), std::move(actions));
    std::string error;
    if (!admin_->start(snapshot_, &error)) {
      spdlog::error("{}", error);
      admin_.reset();
      free_signals();
      return 1;
    }
  }
  for (const auto& l : config_->listeners) {
    spdlog::info("listening on {}://{} (listener '{}', {} worker{})", l.tls() ? "wss" : "ws",
                 l.address.str(), l.name, count, count == 1 ? "" : "s");
  }
  for (auto& w : workers_) w->start();
  if (admin_) admin_->setAccepting(true);

  main.run();
  free_signals();

  for (auto& w : workers_) w->join();
  admin_.reset();  // reads the workers' stats: goes first
  workers_.clear();
  spdlog::info("stopped");
  return 0;
}

void Server::drain() {
  if (admin_) admin_->setDraining();
  for (auto& w : workers_) w->drain(config_->runtime.drain_timeout);
}

std::vector<std::string> Server::reload() {
  if (config_path_.empty()) {
    spdlog::warn("reload: running on the embedded default config; nothing to reload");
    return {"running on the embedded default config; nothing to reload"};
  }
  config::LoadResult result = config::loadFile(config_path_);
  if (!result.ok()) {
    for (const auto& e : result.errors) spdlog::error("reload refused: {}", e);
    return result.errors;
  }
  if (std::string error; admin_ && !admin_->canServe(*result.config, &error)) {
    spdlog::error("reload refused: {}", error);
    return {error};
  }
  std::vector<std::string> errors;
  SnapshotPtr snapshot = Snapshot::build(result.config, &errors);
  if (!snapshot) {
    for (const auto& e : errors) spdlog::error("reload refused: {}", e);
    return errors;
  }
  std::vector<Worker::PreparedListeners> prepared(workers_.size());
  for (size_t i = 0; i < workers_.size(); ++i) {
    std::string error;
    if (!workers_[i]->prepareListeners(*snapshot, &prepared[i], &error)) {
      for (const auto& p : prepared) Worker::closePrepared(p);
      spdlog::error("reload refused: {}", error);
      return {error};
    }
  }
  config_ = result.config;
  snapshot_ = snapshot;
  for (size_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->setSnapshot(snapshot_, std::move(prepared[i]));
  }
  if (admin_) admin_->setSnapshot(snapshot_);
  spdlog::info("reloaded {}", config_path_);
  return {};
}

}  // namespace wsb::proxy
