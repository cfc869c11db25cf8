// Access log filter: exact line formats, counting per direction, user, config and file paths.
#include "filters/access_log.h"

#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>

#include "tests/filters/fake_callbacks.h"

namespace wsb::filters {
namespace {

using namespace testing;

AccessRecord sampleRecord() {
  AccessRecord r;
  r.unix_ms = 1'700'000'000'123;
  r.route = "/chat";
  r.client_ip = "192.0.2.7";
  r.user = "alice";
  r.duration_ms = 1500;
  r.messages_in = 3;
  r.bytes_in = 42;
  r.messages_out = 1;
  r.bytes_out = 7;
  r.code = 1000;
  r.closed_by = "client";
  r.reason = "bye \"now\"";
  return r;
}

TEST_CASE("access_log formats a JSON line") {
  CHECK(formatAccessLine(sampleRecord(), AccessLogFormat::Json) ==
        R"({"time":"2023-11-14T22:13:20.123Z","route":"/chat","client":"192.0.2.7",)"
        R"("user":"alice","duration_ms":1500,"messages_in":3,"bytes_in":42,"messages_out":1,)"
        R"("bytes_out":7,"close_code":1000,"closed_by":"client","reason":"bye \"now\""})");
}

TEST_CASE("access_log formats a text line") {
  CHECK(formatAccessLine(sampleRecord(), AccessLogFormat::Text) ==
        R"(2023-11-14T22:13:20.123Z route=/chat client=192.0.2.7 user="alice" duration_ms=1500 )"
        R"(messages_in=3 bytes_in=42 messages_out=1 bytes_out=7 close_code=1000 )"
        R"(closed_by=client reason="bye \"now\"")");
}

TEST_CASE("access_log writes an HTTP status and no user for a refused handshake") {
  AccessRecord r;
  r.unix_ms = 5;
  r.route = "/chat";
  r.client_ip = "::1";
  r.code = 401;
  r.closed_by = "wsbridge";
  CHECK(formatAccessLine(r, AccessLogFormat::Json) ==
        R"({"time":"1970-01-01T00:00:00.005Z","route":"/chat","client":"::1","user":null,)"
        R"("duration_ms":0,"messages_in":0,"bytes_in":0,"messages_out":0,"bytes_out":0,)"
        R"("status":401,"closed_by":"wsbridge","reason":""})");
  CHECK(formatAccessLine(r, AccessLogFormat::Text) ==
        "1970-01-01T00:00:00.005Z route=/chat client=::1 user=- duration_ms=0 messages_in=0 "
        "bytes_in=0 messages_out=0 bytes_out=0 status=401 closed_by=wsbridge reason=\"\"");
}

// The line the filter logs, captured synchronously.
struct CapturedLog {
  CapturedLog() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
    logger = std::make_shared<spdlog::logger>("test", sink);
    logger->set_pattern("%v");
  }
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> logger;
};

TEST_CASE("access_log counts messages and bytes each way once and logs at close") {
  CapturedLog log;
  AccessLogFactory factory(AccessLogFormat::Text, log.logger);
  FakeCallbacks cb;
  auto filter = factory.create(cb);
  Handshake hs;
  hs.query("token=secret-token");
  hs.header("Authorization", "Bearer secret-token");
  HandshakeContext context = hs.context();
  CHECK(filter->onHandshake(context) == Status::Continue);
  cb.attributes()["jwt.sub"] = "alice";

  Message in = textMessage(Direction::ToUpstream, "hello");
  CHECK(filter->onMessage(in) == Status::Continue);
  Message raw_side = textMessage(Direction::ToUpstream, R"({"event":"chat","data":1})");
  raw_side.event_follows = true;  // counted as the event below, not twice
  CHECK(filter->onMessage(raw_side) == Status::Continue);
  Event chat = event(Direction::ToUpstream, "chat", {}, 12);
  CHECK(filter->onEvent(chat) == Status::Continue);
  Event news = event(Direction::ToClient, "news", {}, 100);
  CHECK(filter->onEvent(news) == Status::Continue);
  cb.advance(std::chrono::milliseconds(2500));
  CHECK(log.out.str().empty());

  filter->onClose({1001, "going away", "upstream"});
  std::string line = log.out.str();
  REQUIRE(line.size() > 25);
  CHECK(line.substr(24) ==
        " route=/chat client=192.0.2.7 user=\"alice\" duration_ms=2500 messages_in=2 bytes_in=17 "
        "messages_out=1 bytes_out=100 close_code=1001 closed_by=upstream reason=\"going away\"\n");
  CHECK(line.find("secret") == std::string::npos);
}

TEST_CASE("access_log prefers the user attribute over jwt.sub") {
  CapturedLog log;
  AccessLogFactory factory(AccessLogFormat::Json, log.logger);
  FakeCallbacks cb;
  auto filter = factory.create(cb);
  cb.attributes()["jwt.sub"] = "sub-1";
  cb.attributes()["user"] = "bob";
  filter->onClose({1000, "", "client"});
  CHECK(log.out.str().find(R"("route":"","client":"","user":"bob",)") != std::string::npos);
}

FactoryPtr build(std::string_view body, std::vector<std::string>* errors) {
  return buildAccessLogFactory(specFrom(body), errors);
}

TEST_CASE("access_log shares one logger per path and creates the file at load") {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("wsb_access_log_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string file = (dir / "access.log").string();
  std::vector<std::string> errors;
  FactoryPtr a = build("type = 'access_log'\nformat = 'json'\npath = '" + file + "'\n", &errors);
  FactoryPtr b = build("type = 'access_log'\npath = '" + file + "'\n", &errors);
  FactoryPtr c = build("type = 'access_log'\n", &errors);
  CHECK(errors.empty());
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  REQUIRE(c != nullptr);
  CHECK(std::filesystem::exists(file));
  auto logger = [](const FactoryPtr& f) {
    return dynamic_cast<const AccessLogFactory&>(*f).logger();
  };
  CHECK(logger(a) == logger(b));
  CHECK(logger(a) != logger(c));
  a.reset();
  b.reset();
  std::filesystem::remove_all(dir);
}

TEST_CASE("access_log config errors carry line and column") {
  std::vector<std::string> errors;
  CHECK(build("type = 'access_log'\nformat = 'xml'\npath = '/nonexistent-dir-wsb/a.log'\n",
              &errors) == nullptr);
  CHECK(errors == std::vector<std::string>{
                      "test.toml:3:10: 'format' must be one of: json, text",
                      "test.toml:4:8: 'path' directory not found: /nonexistent-dir-wsb"});
  errors.clear();
  CHECK(build("type = 'access_log'\npath = ''\nlevel = 'info'\n", &errors) == nullptr);
  CHECK(errors ==
        std::vector<std::string>{"test.toml:3:8: 'path' must be a file path or \"-\" for stderr",
                                 "test.toml:4:1: unknown key 'level' in [filter.test]"});
}

}  // namespace
}  // namespace wsb::filters
