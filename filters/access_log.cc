// The access_log filter: counters per connection, one formatted line at close, and the registry
// of async loggers by path.
#include "filters/access_log.h"

#include <spdlog/async_logger.h>
#include <spdlog/details/thread_pool.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>

#include "codec/http1.h"
#include "config/table_reader.h"

namespace wsb::filters {

namespace {

// Lines queued for the writer thread; beyond this the oldest are dropped rather than stall an
// event loop on a slow disk.
constexpr size_t kQueuedLines = 8192;

void appendTime(std::string& out, int64_t unix_ms) {
  std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + n, sizeof text - n, ".%03dZ", static_cast<int>(unix_ms % 1000));
  out += text;
}

void appendQuoted(std::string& out, std::string_view text) {
  out += '"';
  out += http::jsonEscape(text);
  out += '"';
}

class AccessLogFilter final : public Filter {
 public:
  AccessLogFilter(AccessLogFormat format, std::shared_ptr<spdlog::logger> logger,
                  FilterCallbacks& callbacks)
      : format_(format),
        logger_(std::move(logger)),
        callbacks_(callbacks),
        start_(callbacks.clock().now()) {}

  Status onHandshake(HandshakeContext& context) override {
    route_ = context.route.path;
    client_ip_ = context.client_ip;
    return Status::Continue;
  }

  Status onMessage(Message& message) override {
    if (!message.event_follows) count(message.direction, message.payload.size());
    return Status::Continue;
  }

  Status onEvent(Event& event) override {
    count(event.direction, event.size);
    return Status::Continue;
  }

  void onClose(const CloseInfo& info) override {
    const Attributes& attributes = callbacks_.attributes();
    auto user = attributes.find("user");
    if (user == attributes.end()) user = attributes.find("jwt.sub");
    AccessRecord record;
    record.unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    record.route = route_;
    record.client_ip = client_ip_;
    record.user = user != attributes.end() ? std::string_view(user->second) : std::string_view();
    record.duration_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(callbacks_.clock().now() - start_)
            .count();
    record.messages_in = messages_[0];
    record.bytes_in = bytes_[0];
    record.messages_out = messages_[1];
    record.bytes_out = bytes_[1];
    record.code = info.code;
    record.closed_by = info.closed_by;
    record.reason = info.reason;
    std::string line = formatAccessLine(record, format_);
    logger_->info(std::string_view(line));
  }

 private:
  void count(Direction direction, size_t bytes) {
    size_t i = direction == Direction::ToUpstream ? 0 : 1;
    ++messages_[i];
    bytes_[i] += bytes;
  }

  AccessLogFormat format_;
  std::shared_ptr<spdlog::logger> logger_;
  FilterCallbacks& callbacks_;
  TimePoint start_;
  std::string route_;
  std::string client_ip_;
  uint64_t messages_[2] = {0, 0};  // [0] toward the upstream, [1] toward the client
  uint64_t bytes_[2] = {0, 0};
};

// One async logger per path ("-" = stderr), shared by every factory that names it, so lines
// from several tables never interleave inside one file.
std::shared_ptr<spdlog::logger> openLogger(const std::string& path, std::string* problem) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<spdlog::logger>> by_path;
  // Async loggers hold their pool weakly: keep it for the life of the process.
  static std::shared_ptr<spdlog::details::thread_pool> pool;
  std::lock_guard lock(mutex);
  if (std::shared_ptr<spdlog::logger> shared = by_path[path].lock()) return shared;
  spdlog::sink_ptr sink;
  try {
    if (path == "-") {
      sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    } else {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, false);
    }
    if (pool == nullptr) pool = std::make_shared<spdlog::details::thread_pool>(kQueuedLines, 1);
  } catch (const std::exception& e) {
    *problem = e.what();
    return nullptr;
  }
  auto logger = std::make_shared<spdlog::async_logger>(
      "access_log", std::move(sink), pool, spdlog::async_overflow_policy::overrun_oldest);
  logger->set_pattern("%v");
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::info);  // a line is on disk soon after the close, not at exit
  by_path[path] = logger;
  return logger;
}

}  // namespace

std::string formatAccessLine(const AccessRecord& r, AccessLogFormat format) {
  bool json = format == AccessLogFormat::Json;
  std::string out;
  out.reserve(256);
  auto field = [&](std::string_view name) {
    if (json) {
      out += out.empty() ? "{\"" : ",\"";
      out += name;
      out += "\":";
    } else {
      out += ' ';
      out += name;
      out += '=';
    }
  };
  auto number = [&](std::string_view name, uint64_t value) {
    field(name);
    out += std::to_string(value);
  };
  auto plain = [&](std::string_view name, std::string_view value) {
    field(name);
    if (json) {
      appendQuoted(out, value);
    } else {
      out += value.empty() ? std::string_view("-") : value;
    }
  };
  if (json) {
    field("time");
    out += '"';
    appendTime(out, r.unix_ms);
    out += '"';
  } else {
    appendTime(out, r.unix_ms);
  }
  plain("route", r.route);
  plain("client", r.client_ip);
  field("user");
  if (r.user.empty()) {
    out += json ? "null" : "-";
  } else {
    appendQuoted(out, r.user);
  }
  number("duration_ms", static_cast<uint64_t>(r.duration_ms < 0 ? 0 : r.duration_ms));
  number("messages_in", r.messages_in);
  number("bytes_in", r.bytes_in);
  number("messages_out", r.messages_out);
  number("bytes_out", r.bytes_out);
  number(r.code != 0 && r.code < 1000 ? "status" : "close_code", r.code);
  plain("closed_by", r.closed_by);
  field("reason");
  appendQuoted(out, r.reason);
  if (json) out += '}';
  return out;
}

std::unique_ptr<Filter> AccessLogFactory::create(FilterCallbacks& callbacks) const {
  return std::make_unique<AccessLogFilter>(format_, logger_, callbacks);
}

FactoryPtr buildAccessLogFactory(const config::FilterSpec& spec, std::vector<std::string>* errors) {
  size_t before = errors->size();
  config::TableReader reader(*spec.table, "[filter." + spec.name + "]", spec.pos.file, errors);
  reader.markRead("type");
  AccessLogFormat format =
      reader.choice("format", AccessLogFormat::Text,
                    {{"json", AccessLogFormat::Json}, {"text", AccessLogFormat::Text}});
  std::string path = reader.string("path", "-");
  const toml::node* path_node = reader.node("path");
  if (path.empty()) reader.error(path_node, "'path' must be a file path or \"-\" for stderr");
  std::filesystem::path file(path);
  if (path != "-" && !path.empty()) {
    if (file.is_relative()) file = std::filesystem::path(spec.pos.file).parent_path() / file;
    std::filesystem::path dir = file.has_parent_path() ? file.parent_path() : ".";
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
      reader.error(path_node, "'path' directory not found: " + dir.string());
    } else if (std::filesystem::is_directory(file, ec)) {
      reader.error(path_node, "'path' is a directory: " + file.string());
    } else if (::access(std::filesystem::exists(file, ec) ? file.c_str() : dir.c_str(), W_OK) !=
               0) {
      reader.error(path_node, "'path' is not writable: " + file.string());
    }
  }
  reader.finish();
  if (errors->size() != before) return nullptr;
  std::string problem;
  std::shared_ptr<spdlog::logger> logger = openLogger(path == "-" ? path : file.string(), &problem);
  if (logger == nullptr) {
    reader.error(path_node, "cannot open the access log: " + problem);
    return nullptr;
  }
  return std::make_shared<AccessLogFactory>(format, std::move(logger));
}

}  // namespace wsb::filters
