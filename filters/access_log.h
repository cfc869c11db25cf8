// The access_log filter: one line per connection when it ends, as JSON or text, written by an
// spdlog async logger shared by every filter that logs to the same path.
//
// A line holds the time of the close (UTC), the route's path, the client address, the user (the
// "user" attribute, else "jwt.sub"), the duration since routing, messages and bytes each way,
// the close code (or the HTTP status when the connection was refused before the upgrade), who
// closed it and the close reason. Query strings and headers are never logged, so tokens are not.
// The filter counts what reaches it: list it first so that it also sees what later filters drop
// and connections that a later filter refuses.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "filters/filter.h"

namespace spdlog {
class logger;
}

namespace wsb::filters {

enum class AccessLogFormat { Json, Text };

struct AccessRecord {
  int64_t unix_ms = 0;  // when the connection ended
  std::string_view route;
  std::string_view client_ip;
  std::string_view user;  // empty = unknown
  int64_t duration_ms = 0;
  uint64_t messages_in = 0;  // client -> upstream
  uint64_t bytes_in = 0;
  uint64_t messages_out = 0;  // upstream -> client
  uint64_t bytes_out = 0;
  uint16_t code = 0;  // a close code, or the HTTP status (< 1000) of a refused handshake
  std::string_view closed_by;
  std::string_view reason;
};

// One line without the newline, e.g.
// {"time":"2023-11-14T22:13:20.000Z","route":"/chat","client":"192.0.2.7","user":"alice",
//  "duration_ms":1500,"messages_in":3,"bytes_in":42,"messages_out":1,"bytes_out":7,
//  "close_code":1000,"closed_by":"client","reason":"bye"}
// 2023-11-14T22:13:20.000Z route=/chat client=192.0.2.7 user="alice" duration_ms=1500
//  messages_in=3 bytes_in=42 messages_out=1 bytes_out=7 close_code=1000 closed_by=client
//  reason="bye"
std::string formatAccessLine(const AccessRecord& record, AccessLogFormat format);

class AccessLogFactory final : public FilterFactory {
 public:
  AccessLogFactory(AccessLogFormat format, std::shared_ptr<spdlog::logger> logger)
      : format_(format), logger_(std::move(logger)) {}
  std::unique_ptr<Filter> create(FilterCallbacks& callbacks) const override;
  const std::shared_ptr<spdlog::logger>& logger() const { return logger_; }

 private:
  AccessLogFormat format_;
  std::shared_ptr<spdlog::logger> logger_;
};

// Reads [filter.NAME] with type = "access_log"; opens (creates) the log file now, so that an
// unwritable path is a config error.
FactoryPtr buildAccessLogFactory(const config::FilterSpec& spec, std::vector<std::string>* errors);

}  // namespace wsb::filters
