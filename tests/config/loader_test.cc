// Loader and TableReader behaviour: what loads, and the exact `file:line:col: message` of what
// does not.
#include "config/loader.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <catch2/catch.hpp>

#include "config/table_reader.h"

using namespace wsb::config;
using namespace std::chrono_literals;
using Errors = std::vector<std::string>;

namespace {

Errors errorsOf(std::string_view text) {
  LoadResult result = loadString(text, "t.toml");
  CHECK_FALSE(result.ok());
  return result.errors;
}

std::shared_ptr<const Config> load(std::string_view text) {
  LoadResult result = loadString(text, "t.toml");
  INFO((result.errors.empty() ? std::string() : result.errors.front()));
  REQUIRE(result.ok());
  REQUIRE(result.errors.empty());
  return result.config;
}

// A fresh directory under the system temp dir, removed at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() /
           ("wsb_config_test_" + std::to_string(std::rand()) + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string write(const std::string& name, std::string_view text) const {
    std::ofstream(path / name, std::ios::binary) << text;
    return (path / name).string();
  }
};

// The minimal relay from DESIGN.md "Configuration", verbatim.
constexpr std::string_view kDesignRelay = R"([runtime]
workers = 1            # 0 = one per CPU core
log_level = "info"     # trace | debug | info | warn | error
log_format = "text"    # text | json

[admin]
address = "127.0.0.1:9901"

[[listener]]
name = "public"
address = "127.0.0.1:8080"
# tls_cert = "cert.pem"
# tls_key  = "key.pem"

[[route]]
listener = "public"        # may be left out when there is one listener
path = "/chat"             # prefix match; longest prefix wins; default "/"
downstream = "websocket"   # websocket | socketio
cluster = "chat"
filters = ["jwt", "limit"] # names of [filter.*] tables, run in this order

[cluster.chat]
protocol = "websocket"     # websocket | socketio
endpoints = ["127.0.0.1:9000", "127.0.0.1:9001"]
path = "/"                 # path on the upstream; default: the client's path
lb = "round_robin"         # round_robin | least_conn | hash_ip | hash_sub
connect_timeout = "2s"
# tls = true, tls_ca = "ca.pem", tls_server_name = "backend.local"

[filter.jwt]
type = "auth.jwt"
# ... per filter, see its reference in the README

[filter.limit]
type = "rate_limit"
# ...
)";

// The smallest valid config (6 lines), for tests that append one problem after it; what is
// appended without a table header belongs to the route (line 5).
constexpr std::string_view kBase = R"([[listener]]
address = "127.0.0.1:8080"
[cluster.c]
endpoints = ["127.0.0.1:9000"]
[[route]]
cluster = "c"
)";

std::string withBase(std::string_view tail) { return std::string(kBase) + std::string(tail); }

}  // namespace

TEST_CASE("the DESIGN.md minimal relay loads with its filter tables") {
  auto config = load(kDesignRelay);
  CHECK(config->source == "t.toml");
  CHECK(config->runtime.workers == 1);
  CHECK(config->runtime.log_level == "info");
  CHECK(config->runtime.log_format == LogFormat::Text);
  CHECK(config->runtime.drain_timeout == 10s);
  REQUIRE(config->admin.address);
  CHECK(config->admin.address->str() == "127.0.0.1:9901");
  CHECK_FALSE(config->admin.allow_remote);

  REQUIRE(config->listeners.size() == 1);
  const Listener& listener = config->listeners[0];
  CHECK(listener.name == "public");
  CHECK(listener.address.host == "127.0.0.1");
  CHECK(listener.address.port == 8080);
  CHECK_FALSE(listener.tls());
  CHECK(listener.pos.str() == "t.toml:9:1");

  REQUIRE(config->routes.size() == 1);
  const Route& route = config->routes[0];
  CHECK(route.listener == "public");
  CHECK(route.path == "/chat");
  CHECK_FALSE(route.host);
  CHECK(route.downstream == Protocol::WebSocket);
  CHECK(route.cluster == "chat");
  CHECK(route.filters == std::vector<std::string>{"jwt", "limit"});
  CHECK(route.max_message == 16u << 20);
  CHECK(route.namespace_ == "/");
  CHECK(route.text_event == "message");
  CHECK(route.transports == std::vector<Transport>{Transport::Polling, Transport::WebSocket});
  CHECK(route.pos.str() == "t.toml:15:1");

  REQUIRE(config->clusters.count("chat") == 1);
  const Cluster& cluster = config->clusters.at("chat");
  CHECK(cluster.name == "chat");
  CHECK(cluster.protocol == Protocol::WebSocket);
  REQUIRE(cluster.endpoints.size() == 2);
  CHECK(cluster.endpoints[0].str() == "127.0.0.1:9000");
  CHECK(cluster.endpoints[1].str() == "127.0.0.1:9001");
  CHECK(cluster.path == "/");
  CHECK_FALSE(cluster.host);
  CHECK(cluster.lb == LoadBalance::RoundRobin);
  CHECK(cluster.connect_timeout == 2s);
  CHECK(cluster.handshake_timeout == 5s);
  CHECK_FALSE(cluster.tls);
  CHECK(cluster.tls_verify);
  CHECK(cluster.pos.str() == "t.toml:22:1");

  REQUIRE(config->filters.size() == 2);
  const FilterSpec& jwt = config->filters.at("jwt");
  CHECK(jwt.name == "jwt");
  CHECK(jwt.type == "auth.jwt");
  CHECK(jwt.pos.str() == "t.toml:30:1");
  REQUIRE(jwt.table);
  CHECK(config->filters.at("limit").type == "rate_limit");
}

TEST_CASE("filter tables are kept whole, with source positions, for their factories") {
  auto config = load(withBase(R"([filter.limit]
type = "rate_limit"
messages_per_second = 5
secret = "${WSB_TEST_NEVER_SET}"
[filter.limit.events]
chat = { messages_per_second = 5, burst = 5 }
)"));
  const FilterSpec& spec = config->filters.at("limit");
  REQUIRE(spec.table);
  // Other keys are the factory's: neither checked nor expanded here.
  CHECK(spec.table->get("secret")->value<std::string>() == "${WSB_TEST_NEVER_SET}");
  const toml::node* rate = spec.table->get("messages_per_second");
  REQUIRE(rate);
  CHECK(positionOf(rate->source(), "x").str() == "t.toml:9:23");
  CHECK(spec.table->at_path("events.chat.burst").value<int64_t>() == 5);

  // A factory reads the rest with its own TableReader and gets positioned errors.
  Errors errors;
  TableReader reader(*spec.table, "[filter.limit]", spec.pos.file, &errors);
  reader.markRead("type");
  CHECK(reader.integer("messages_per_second", 1, 10, 100) == 1);
  CHECK(reader.table("events") != nullptr);
  reader.finish();
  CHECK(errors == Errors{"t.toml:9:23: 'messages_per_second' must be between 10 and 100",
                         "t.toml:10:1: unknown key 'secret' in [filter.limit]"});
}

TEST_CASE("the embedded default config loads") {
  LoadResult result = loadString(embeddedDefaultConfig(), "<embedded default>");
  REQUIRE(result.errors.empty());
  REQUIRE(result.ok());
  const Config& config = *result.config;
  CHECK(config.source == "<embedded default>");
  CHECK(config.runtime.workers == 1);
  CHECK(config.admin.address->str() == "127.0.0.1:9901");
  REQUIRE(config.listeners.size() == 1);
  CHECK(config.listeners[0].name == "public");
  CHECK(config.listeners[0].address.str() == "127.0.0.1:8080");
  REQUIRE(config.routes.size() == 1);
  CHECK(config.routes[0].listener == "public");  // the only listener
  CHECK(config.routes[0].path == "/");
  CHECK(config.routes[0].cluster == "echo");
  CHECK(config.clusters.at("echo").endpoints[0].str() == "127.0.0.1:9000");
  CHECK(embeddedDefaultConfig().starts_with("# wsbridge embedded default:"));
}

TEST_CASE("workers = 0 resolves to the CPU count") {
  auto config = load(withBase("[runtime]\nworkers = 0\n"));
  uint32_t cpus = std::max(1u, std::thread::hardware_concurrency());
  CHECK(config->runtime.workers == cpus);
}

TEST_CASE("every option of every table is read") {
  TempDir dir;
  std::string cert = dir.write("cert.pem", "x");
  std::string key = dir.write("key.pem", "x");
  std::string ca = dir.write("ca.pem", "x");
  auto config = load(R"([runtime]
workers = 3
log_level = "debug"
log_format = "json"
drain_timeout = "1m30s"
[admin]
address = "[::1]:9901"
allow_remote = true
[[listener]]
name = "tls"
address = "0.0.0.0:8443"
tls_cert = ")" + cert +
                     R"("
tls_key = ")" + key + R"("
[[listener]]
address = "127.0.0.1:0"
[[route]]
listener = "tls"
path = "/io"
host = "Chat.Example.COM"
downstream = "socketio"
cluster = "sio"
max_message = "64KiB"
namespace = "/chat"
envelope = "array"
binary_event = "audio"
text_event = "text"
allow_nsp = true
close_on_bad_envelope = true
connect_error_as_event = true
upstream_auth = { token = "{query.token}", user = "{jwt.sub}" }
namespace_paths = { "/admin" = "/admin-ws" }
ping_interval = "10s"
ping_timeout = "5s"
max_payload = 2048
allow_eio3 = true
transports = ["websocket"]
cors_origins = ["https://a.example"]
sid_key = "k"
[route.reconnect]
max_attempts = 3
initial_backoff = "100ms"
max_backoff = "2s"
max_messages = 10
max_bytes = "1KiB"
[[route]]
listener = "listener2"
cluster = "sio"
reconnect = true
[cluster.sio]
protocol = "socketio"
endpoints = ["backend.local:3000", "[fe80::1%eth0]:3001"]
host = "backend.local"
lb = "hash_sub"
connect_timeout = "250ms"
handshake_timeout = "1.5s"
tls = true
tls_ca = ")" + ca + R"("
tls_server_name = "backend.local"
tls_verify = false
)");
  CHECK(config->runtime.workers == 3);
  CHECK(config->runtime.log_level == "debug");
  CHECK(config->runtime.log_format == LogFormat::Json);
  CHECK(config->runtime.drain_timeout == 90s);
  CHECK(config->admin.address->host == "::1");
  CHECK(config->admin.allow_remote);

  REQUIRE(config->listeners.size() == 2);
  CHECK(config->listeners[0].tls());
  CHECK(config->listeners[0].tls_cert == cert);
  CHECK(config->listeners[0].tls_key == key);
  CHECK(config->listeners[1].name == "listener2");
  CHECK(config->listeners[1].address.port == 0);

  const Route& route = config->routes.at(0);
  CHECK(route.listener == "tls");
  CHECK(route.host == "chat.example.com");
  CHECK(route.downstream == Protocol::SocketIO);
  CHECK(route.max_message == 65536);
  CHECK(route.namespace_ == "/chat");
  CHECK(route.envelope == Envelope::Array);
  CHECK(route.binary_event == "audio");
  CHECK(route.text_event == "text");
  CHECK(route.allow_nsp);
  CHECK(route.close_on_bad_envelope);
  CHECK(route.connect_error_as_event);
  CHECK(route.upstream_auth ==
        std::map<std::string, std::string>{{"token", "{query.token}"}, {"user", "{jwt.sub}"}});
  CHECK(route.namespace_paths == std::map<std::string, std::string>{{"/admin", "/admin-ws"}});
  CHECK(route.reconnect.enabled);  // a table means enabled unless it says otherwise
  CHECK(route.reconnect.max_attempts == 3);
  CHECK(route.reconnect.initial_backoff == 100ms);
  CHECK(route.reconnect.max_backoff == 2s);
  CHECK(route.reconnect.max_buffered_messages == 10);
  CHECK(route.reconnect.max_buffered_bytes == 1024);
  CHECK(route.ping_interval == 10s);
  CHECK(route.ping_timeout == 5s);
  CHECK(route.max_payload == 2048);
  CHECK(route.allow_eio3);
  CHECK(route.transports == std::vector<Transport>{Transport::WebSocket});
  CHECK(route.cors_origins == std::vector<std::string>{"https://a.example"});
  CHECK(route.sid_key == "k");
  CHECK(config->routes.at(1).listener == "listener2");
  CHECK(config->routes.at(1).reconnect.enabled);
  CHECK(config->routes.at(1).reconnect.max_attempts == 0);

  const Cluster& cluster = config->clusters.at("sio");
  CHECK(cluster.protocol == Protocol::SocketIO);
  REQUIRE(cluster.endpoints.size() == 2);
  CHECK(cluster.endpoints[0].host == "backend.local");
  CHECK(cluster.endpoints[0].port == 3000);
  CHECK(cluster.endpoints[1].str() == "[fe80::1%eth0]:3001");
  CHECK_FALSE(cluster.path);
  CHECK(cluster.host == "backend.local");
  CHECK(cluster.lb == LoadBalance::HashSub);
  CHECK(cluster.connect_timeout == 250ms);
  CHECK(cluster.handshake_timeout == 1500ms);
  CHECK(cluster.tls);
  CHECK(cluster.tls_ca == ca);
  CHECK(cluster.tls_server_name == "backend.local");
  CHECK_FALSE(cluster.tls_verify);
}

TEST_CASE("toml syntax errors come out as file:line:col") {
  CHECK(errorsOf("[runtime]\nworkers = \n") ==
        Errors{"t.toml:2:11: Error while parsing key-value pair: expected value, saw '\\n'"});
  CHECK(errorsOf("[[listener]]\n[[listener]\n") ==
        Errors{"t.toml:2:12: Error while parsing table header: expected ']', saw '\\n'"});
}

TEST_CASE("unknown keys are reported at the key, with a hint when one is close") {
  CHECK(errorsOf(withBase("[runtime]\nworkerz = 2\nlog_level = \"warn\"\n")) ==
        Errors{"t.toml:8:1: unknown key 'workerz' in [runtime] (did you mean 'workers'?)"});
  CHECK(errorsOf(withBase("[runtim]\nworkers = 2\n")) ==
        Errors{"t.toml:7:2: unknown key 'runtim' in the top level (did you mean 'runtime'?)"});
  CHECK(errorsOf("  frobnicate = true\n" + std::string(kBase)) ==
        Errors{"t.toml:1:3: unknown key 'frobnicate' in the top level"});
  CHECK(errorsOf(withBase("[cluster.d]\nendpoints = [\"a:1\"]\nweight = 3\n")) ==
        Errors{"t.toml:9:1: unknown key 'weight' in [cluster.d]"});
  CHECK(errorsOf(withBase("[admin]\naddress = \"127.0.0.1:1\"\n  allow = true\n")) ==
        Errors{"t.toml:9:3: unknown key 'allow' in [admin]"});
}

TEST_CASE("max_handshakes_per_ip: 128 by default, 0 turns it off, negative is an error") {
  CHECK(load(kBase)->listeners[0].max_handshakes_per_ip == 128);
  auto off = load("[[listener]]\naddress = \"127.0.0.1:8080\"\nmax_handshakes_per_ip = 0\n" +
                  std::string(kBase).substr(std::string(kBase).find("[cluster")));
  CHECK(off->listeners[0].max_handshakes_per_ip == 0);
  CHECK(errorsOf("[[listener]]\naddress = \"127.0.0.1:8080\"\nmax_handshakes_per_ip = -1\n" +
                 std::string(kBase).substr(std::string(kBase).find("[cluster"))) ==
        Errors{"t.toml:3:25: 'max_handshakes_per_ip' must be between 0 and 4294967295"});
}

TEST_CASE("wrong types and out-of-range values are reported at the value") {
  CHECK(errorsOf(withBase("[runtime]\nworkers = \"2\"\n")) ==
        Errors{"t.toml:8:11: 'workers' must be an integer"});
  CHECK(errorsOf(withBase("[runtime]\nworkers = 1.5\n")) ==
        Errors{"t.toml:8:11: 'workers' must be an integer"});
  CHECK(errorsOf(withBase("[runtime]\nworkers = -1\n")) ==
        Errors{"t.toml:8:11: 'workers' must be between 0 and 1024"});
  CHECK(errorsOf(withBase("[runtime]\nlog_level = \"verbose\"\n")) ==
        Errors{"t.toml:8:13: 'log_level' must be one of: trace, debug, info, warn, error"});
  CHECK(errorsOf(withBase("[runtime]\nlog_format = 1\n")) ==
        Errors{"t.toml:8:14: 'log_format' must be one of: text, json"});
  CHECK(errorsOf(withBase("[runtime]\ndrain_timeout = \"10\"\n")) ==
        Errors{"t.toml:8:17: 'drain_timeout' must be a duration such as \"250ms\", \"30s\" or "
               "\"5m\", not '10'"});
  CHECK(errorsOf(withBase("[runtime]\ndrain_timeout = 10\n")) ==
        Errors{"t.toml:8:17: 'drain_timeout' must be a duration string such as \"250ms\", "
               "\"30s\" or \"5m\""});
  CHECK(errorsOf(withBase("[admin]\nallow_remote = \"yes\"\n")) ==
        Errors{"t.toml:8:16: 'allow_remote' must be true or false"});
  CHECK(errorsOf("runtime = 1\n" + std::string(kBase)) ==
        Errors{"t.toml:1:11: 'runtime' must be a table"});
  CHECK(errorsOf(withBase("[cluster]\nx = 1\n")) ==
        Errors{"t.toml:8:5: 'cluster.x' must be a table ([cluster.x])"});
}

TEST_CASE("listener errors") {
  SECTION("missing address is reported at the table header") {
    CHECK(errorsOf("[[listener]]\nname = \"a\"\n[[route]]\ncluster = \"c\"\n[cluster.c]\n"
                   "endpoints = [\"h:1\"]\n") ==
          Errors{"t.toml:1:1: missing required key 'address' in [[listener]]"});
  }
  SECTION("bad addresses") {
    for (const char* bad : {"8080", "localhost", "[::1]8080", "::1:80", "1.2.3:80", "h:65536",
                            "h:", ":80", "[]:80", "[zz]:80", "h:8o"}) {
      INFO(bad);
      CHECK(errorsOf(std::string("[[listener]]\naddress = \"") + bad +
                     "\"\n[[route]]\ncluster = \"c\"\n[cluster.c]\nendpoints = [\"h:1\"]\n") ==
            Errors{std::string("t.toml:2:11: invalid address '") + bad +
                   "' in 'address': expected host:port such as \"127.0.0.1:8080\" or "
                   "\"[::1]:8080\""});
    }
  }
  SECTION("a duplicate address is reported at the second listener") {
    CHECK(errorsOf(withBase("[[listener]]\nname = \"b\"\naddress = \"127.0.0.1:8080\"\n"
                            "[[route]]\nlistener = \"b\"\ncluster = \"c\"\n")) ==
          Errors{// The first route now has two listeners to choose from.
                 "t.toml:5:1: 'listener' is required when there are several listeners",
                 "t.toml:9:11: listener address 127.0.0.1:8080 is already used by listener "
                 "'listener1'"});
  }
  SECTION("duplicate names, including a default one") {
    CHECK(errorsOf(withBase("[[listener]]\nname = \"listener1\"\naddress = \"127.0.0.1:8081\"\n"
                            "[[route]]\nlistener = \"listener1\"\npath = \"/x\"\ncluster = "
                            "\"c\"\n")) ==
          Errors{"t.toml:5:1: 'listener' is required when there are several listeners",
                 "t.toml:8:8: listener name 'listener1' is already used by the listener at "
                 "t.toml:1:1"});
  }
  SECTION("tls_cert without tls_key, and files that do not exist") {
    TempDir dir;
    std::string cert = dir.write("cert.pem", "x");
    CHECK(errorsOf("[[listener]]\naddress = \"127.0.0.1:1\"\ntls_cert = \"" + cert +
                   "\"\n[[route]]\ncluster = \"c\"\n[cluster.c]\nendpoints = [\"h:1\"]\n") ==
          Errors{"t.toml:3:12: 'tls_cert' and 'tls_key' must be set together"});
    CHECK(errorsOf("[[listener]]\naddress = \"127.0.0.1:1\"\ntls_cert = \"" + cert +
                   "\"\ntls_key = \"/nonexistent/key.pem\"\n[[route]]\ncluster = \"c\"\n"
                   "[cluster.c]\nendpoints = [\"h:1\"]\n") ==
          Errors{"t.toml:4:11: 'tls_key' file not found: /nonexistent/key.pem"});
    CHECK(errorsOf("[[listener]]\naddress = \"127.0.0.1:1\"\ntls_cert = \"" + dir.path.string() +
                   "\"\ntls_key = \"" + cert +
                   "\"\n[[route]]\ncluster = \"c\"\n[cluster.c]\nendpoints = [\"h:1\"]\n") ==
          Errors{"t.toml:3:12: 'tls_cert' is not a regular file: " + dir.path.string()});
  }
  SECTION("a [listener] table instead of [[listener]]") {
    CHECK(errorsOf("[listener]\naddress = \"127.0.0.1:1\"\n[[route]]\ncluster = \"c\"\n"
                   "[cluster.c]\nendpoints = [\"h:1\"]\n") ==
          Errors{"t.toml:1:1: 'listener' must be an array of tables ([[listener]])"});
  }
}

TEST_CASE("relative tls paths are taken from the config file's directory") {
  TempDir dir;
  dir.write("cert.pem", "x");
  dir.write("key.pem", "x");
  std::string path = dir.write("wsbridge.toml", R"([[listener]]
address = "127.0.0.1:8443"
tls_cert = "cert.pem"
tls_key = "key.pem"
[[route]]
cluster = "c"
[cluster.c]
endpoints = ["127.0.0.1:9000"]
)");
  LoadResult result = loadFile(path);
  REQUIRE(result.ok());
  CHECK(result.config->source == path);
  CHECK(result.config->listeners[0].tls_cert == (dir.path / "cert.pem").string());
  CHECK(result.config->listeners[0].tls_key == (dir.path / "key.pem").string());
  CHECK(result.config->listeners[0].pos.str() == path + ":1:1");
}

TEST_CASE("loadFile reports an unreadable file and errors carry its path") {
  LoadResult missing = loadFile("/nonexistent/wsbridge.toml");
  CHECK_FALSE(missing.ok());
  CHECK(missing.errors ==
        Errors{"/nonexistent/wsbridge.toml:1:1: cannot read the file: No such file or directory"});

  TempDir dir;
  std::string path = dir.write("bad.toml", withBase("[runtime]\nworkers = \"x\"\n"));
  CHECK(loadFile(path).errors == Errors{path + ":8:11: 'workers' must be an integer"});
  CHECK(loadFile(dir.path.string()).errors ==
        Errors{dir.path.string() + ":1:1: is a directory, not a file"});
}

TEST_CASE("at least one listener and one route are required") {
  CHECK(errorsOf("") == Errors{"t.toml:1:1: at least one [[listener]] is required",
                               "t.toml:1:1: at least one [[route]] is required"});
  CHECK(errorsOf("listener = []\nroute = []\n") ==
        Errors{"t.toml:1:12: at least one [[listener]] is required",
               "t.toml:2:9: at least one [[route]] is required"});
}

TEST_CASE("route errors") {
  SECTION("unknown listener, cluster and filter") {
    CHECK(errorsOf(withBase("[[route]]\nlistener = \"nope\"\npath = \"/b\"\ncluster = \"d\"\n"
                            "filters = [\"f\", \"x\", \"f\"]\n[filter.f]\ntype = \"origin\"\n")) ==
          Errors{"t.toml:8:12: unknown listener 'nope'",
                 "t.toml:10:11: unknown cluster 'd' (no [cluster.d])",
                 "t.toml:11:17: unknown filter 'x' (no [filter.x])",
                 "t.toml:11:22: filter 'f' is listed twice"});
  }
  SECTION("missing cluster, bad path, host with a port") {
    CHECK(errorsOf(withBase("[[route]]\npath = \"chat\"\nhost = \"a.example:80\"\n")) ==
          Errors{"t.toml:7:1: missing required key 'cluster' in [[route]]",
                 "t.toml:8:8: 'path' must start with '/'",
                 "t.toml:9:8: 'host' must not include a port"});
  }
  SECTION("a second route on the same listener, host and path") {
    CHECK(errorsOf(withBase("[[route]]\ncluster = \"c\"\npath = \"/\"\n")) ==
          Errors{"t.toml:7:1: duplicate route: listener 'listener1' path '/' is already routed "
                 "at t.toml:5:1"});
    // A different host is a different route.
    load(withBase("[[route]]\ncluster = \"c\"\nhost = \"a.example\"\n"));
  }
  SECTION("translation options") {
    CHECK(errorsOf(withBase("namespace = \"chat\"\nenvelope = \"xml\"\ntext_event = \"\"\n"
                            "namespace_paths = { \"/a\" = \"x\", b = \"/b\", \"/c\" = 1 }\n"
                            "upstream_auth = { token = 5 }\n")) ==
          Errors{"t.toml:7:13: 'namespace' must start with '/'",
                 "t.toml:8:12: 'envelope' must be one of: json, array",
                 "t.toml:9:14: 'text_event' must not be empty",
                 "t.toml:10:28: path 'x' for namespace '/a' must start with '/'",
                 "t.toml:10:37: namespace 'b' in 'namespace_paths' must start with '/'",
                 "t.toml:10:50: 'namespace_paths./c' must be a string",
                 "t.toml:11:27: 'upstream_auth.token' must be a string"});
  }
  SECTION("reconnect") {
    CHECK(errorsOf(withBase("reconnect = \"yes\"\n")) ==
          Errors{"t.toml:7:13: 'reconnect' must be true, false or a table"});
    CHECK(errorsOf(withBase("[route.reconnect]\nenabled = false\ninitial_backoff = \"10s\"\n"
                            "max_attempts = -1\nmax_byte = 3\n")) ==
          Errors{"t.toml:9:19: 'initial_backoff' must not exceed 'max_backoff'",
                 "t.toml:10:16: 'max_attempts' must be between 0 and 4294967295",
                 "t.toml:11:1: unknown key 'max_byte' in [route.reconnect] (did you mean "
                 "'max_bytes'?)"});
  }
  SECTION("Socket.IO options") {
    CHECK(errorsOf(withBase("ping_interval = \"0s\"\nmax_payload = 0\n"
                            "transports = [\"polling\", \"smoke\", \"polling\"]\n"
                            "cors_origins = \"*\"\nsid_key = \"${WSB_TEST_NEVER_SET}\"\n")) ==
          Errors{"t.toml:7:17: 'ping_interval' must be greater than 0",
                 "t.toml:8:15: 'max_payload' must be greater than 0",
                 "t.toml:9:26: unknown transport 'smoke' (expected 'polling' or 'websocket')",
                 "t.toml:9:35: transport 'polling' is listed twice",
                 "t.toml:10:16: 'cors_origins' must be an array of strings",
                 "t.toml:11:11: environment variable 'WSB_TEST_NEVER_SET' is not set (in "
                 "'sid_key')"});
    CHECK(errorsOf(withBase("transports = []\n")) ==
          Errors{"t.toml:7:14: 'transports' must not be empty"});
  }
  SECTION("the listener may be left out only when there is exactly one") {
    CHECK(errorsOf(withBase("[[listener]]\naddress = \"127.0.0.1:8081\"\n")) ==
          Errors{"t.toml:5:1: 'listener' is required when there are several listeners"});
  }
}

TEST_CASE("cluster and filter errors") {
  CHECK(errorsOf(withBase("[cluster.d]\nprotocol = \"http\"\nlb = \"random\"\npath = \"x\"\n"
                          "connect_timeout = \"0\"\ntls_ca = \"/nonexistent/ca.pem\"\n")) ==
        Errors{"t.toml:7:1: missing required key 'endpoints' in [cluster.d]",
               "t.toml:8:12: 'protocol' must be one of: websocket, socketio, engineio",
               "t.toml:9:6: 'lb' must be one of: round_robin, least_conn, hash_ip, hash_sub",
               "t.toml:10:8: 'path' must start with '/'",
               "t.toml:11:19: 'connect_timeout' must be greater than 0",
               "t.toml:12:10: 'tls_ca' file not found: /nonexistent/ca.pem"});
  CHECK(errorsOf(withBase("[cluster.d]\nendpoints = []\n[cluster.e]\n"
                          "endpoints = [\"h:0\", \"nohost\", 7]\n")) ==
        Errors{"t.toml:8:13: 'endpoints' must not be empty",
               "t.toml:10:14: endpoint 'h:0' needs a port",
               "t.toml:10:21: invalid address 'nohost' in 'endpoints': expected host:port such "
               "as \"127.0.0.1:8080\" or \"[::1]:8080\"",
               "t.toml:10:31: 'endpoints' must be an array of strings"});
  CHECK(errorsOf(withBase("[filter.a]\nallow = []\n[filter.b]\ntype = \"\"\n[filter]\nc = 3\n")) ==
        Errors{"t.toml:7:1: missing required key 'type' in [filter.a]",
               "t.toml:10:8: 'type' must not be empty",
               "t.toml:12:5: 'filter.c' must be a table ([filter.c])"});
}

TEST_CASE("errors come out sorted by position, whatever the reading order") {
  // Routes are read after clusters and filters, the top level last.
  CHECK(errorsOf(R"(bogus = 1
[[route]]
cluster = "nope"
[[listener]]
address = "x"
[cluster.c]
endpoints = ["h:1"]
lb = 3
[runtime]
workers = 1.0
)") == Errors{"t.toml:1:1: unknown key 'bogus' in the top level",
              "t.toml:3:11: unknown cluster 'nope' (no [cluster.nope])",
              "t.toml:5:11: invalid address 'x' in 'address': expected host:port such as "
              "\"127.0.0.1:8080\" or \"[::1]:8080\"",
              "t.toml:8:6: 'lb' must be one of: round_robin, least_conn, hash_ip, hash_sub",
              "t.toml:10:11: 'workers' must be an integer"});

  Errors errors{"b:1:1: z", "a:10:2: y", "a:9:30: x", "no position", "a:9:4: w"};
  sortByPosition(errors);
  CHECK(errors == Errors{"a:9:4: w", "a:9:30: x", "a:10:2: y", "b:1:1: z", "no position"});
}

TEST_CASE("${ENV} is expanded in strings, and a missing variable is named") {
  ::setenv("WSB_TEST_PORT_ADDR", "127.0.0.1:7777", 1);
  ::setenv("WSB_TEST_KEY", "s3cret", 1);
  ::unsetenv("WSB_TEST_MISSING");
  auto config = load(R"([[listener]]
address = "${WSB_TEST_PORT_ADDR}"
[[route]]
cluster = "c"
sid_key = "k-${WSB_TEST_KEY}-$${literal}"
[cluster.c]
endpoints = ["${WSB_TEST_PORT_ADDR}"]
)");
  CHECK(config->listeners[0].address.port == 7777);
  CHECK(config->routes[0].sid_key == "k-s3cret-${literal}");
  CHECK(config->clusters.at("c").endpoints[0].port == 7777);

  CHECK(errorsOf(withBase("[admin]\naddress = \"${WSB_TEST_MISSING}\"\n")) ==
        Errors{"t.toml:8:11: environment variable 'WSB_TEST_MISSING' is not set (in 'address')"});
  CHECK(errorsOf(withBase("[admin]\naddress = \"${WSB_TEST_KEY\"\n")) ==
        Errors{"t.toml:8:11: unterminated '${' (write '$${' for a literal '${') (in 'address')"});
  CHECK(errorsOf(withBase("[admin]\naddress = \"${1A}\"\n")) ==
        Errors{"t.toml:8:11: invalid environment variable name '1A' (in 'address')"});

  std::string problem;
  CHECK(expandEnvironment("a$b${WSB_TEST_KEY}}$", &problem) == "a$bs3cret}$");
  CHECK(expandEnvironment("", &problem) == "");
  CHECK_FALSE(expandEnvironment("${}", &problem));
  CHECK(problem == "invalid environment variable name ''");
}

TEST_CASE("durations parse to whole milliseconds") {
  struct Case {
    const char* text;
    std::optional<Duration> expected;
  };
  const Case cases[] = {{"0", 0ms},
                        {"0s", 0ms},
                        {"250ms", 250ms},
                        {"30s", 30s},
                        {"5m", 5min},
                        {"1h", 1h},
                        {"1.5s", 1500ms},
                        {"0.25s", 250ms},
                        {"1m30s", 90s},
                        {"1h0m1ms", 3600001ms},
                        {"2.5m", 150s},
                        {"0.001s", 1ms},
                        {"", std::nullopt},
                        {"10", std::nullopt},
                        {"1.5", std::nullopt},
                        {"-1s", std::nullopt},
                        {"1d", std::nullopt},
                        {"0.5ms", std::nullopt},
                        {"0.0001s", std::nullopt},
                        {"1.s", std::nullopt},
                        {".5s", std::nullopt},
                        {"s", std::nullopt},
                        {"1 s", std::nullopt},
                        {"1S", std::nullopt},
                        {"1s ", std::nullopt},
                        {"00", std::nullopt},
                        {"99999999999999999999h", std::nullopt},
                        {"2562047788016h", std::nullopt},
                        {"1.000000000000000000s", 1000ms}};
  for (const Case& c : cases) {
    INFO(c.text);
    CHECK(parseDuration(c.text) == c.expected);
  }
}

TEST_CASE("sizes parse with decimal and binary units") {
  struct Case {
    const char* text;
    std::optional<uint64_t> expected;
  };
  const Case cases[] = {
      {"512", 512},
      {"0", 0},
      {"512B", 512},
      {"10KB", 10000},
      {"64KiB", 65536},
      {"64 KiB", 65536},
      {"1MiB", 1048576},
      {"1MB", 1000000},
      {"1GiB", 1073741824},
      {"2GB", 2000000000},
      {"1TiB", 1099511627776},
      {"1.5MiB", 1572864},
      {"0.5KB", 500},
      {"", std::nullopt},
      {"KiB", std::nullopt},
      {"1.5", std::nullopt},
      {"0.3KiB", std::nullopt},
      {"1kib", std::nullopt},
      {"1 k", std::nullopt},
      {"-1", std::nullopt},
      {"1,000", std::nullopt},
      {"1e3", std::nullopt},
      {"9223372036854775807", 9223372036854775807ULL},
      {"9223372036854775808", std::nullopt},
      {"10000000TiB", std::nullopt},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    CHECK(parseSize(c.text) == c.expected);
  }

  // In the file a size is a string or a plain integer.
  auto config = load(withBase("max_message = 65536\nmax_payload = \"1MiB\"\n"));
  CHECK(config->routes[0].max_message == 65536);
  CHECK(config->routes[0].max_payload == 1048576);
  CHECK(errorsOf(withBase("max_message = -5\nmax_payload = \"lots\"\n")) ==
        Errors{"t.toml:7:15: 'max_message' must be a size of at least 0",
               "t.toml:8:15: 'max_payload' must be a size such as 65536, \"64KiB\" or \"1MiB\", "
               "not 'lots'"});
}

TEST_CASE("addresses parse as host:port, IPv6 in brackets") {
  auto check = [](const char* text, const char* host, uint16_t port) {
    INFO(text);
    std::optional<Address> address = parseAddress(text);
    REQUIRE(address);
    CHECK(address->host == host);
    CHECK(address->port == port);
    CHECK(address->str() == text);
  };
  check("127.0.0.1:8080", "127.0.0.1", 8080);
  check("[::1]:80", "::1", 80);
  check("host:1", "host", 1);
  check("backend-2.svc.local:65535", "backend-2.svc.local", 65535);
  check("0.0.0.0:0", "0.0.0.0", 0);
  check("[2001:db8::7]:443", "2001:db8::7", 443);
  for (const char* bad : {"", "host", "host:", ":80", "[::1]", "[::1]:", "::1:80", "[1.2.3.4]:80",
                          "256.0.0.1:80", "01.2.3.4:80", "1.2.3:80", "h:123456", "h:-1", "h :80",
                          "-h:80", "h:80 ", "[::1]:80x", "[::1%]:80"}) {
    INFO(bad);
    CHECK_FALSE(parseAddress(bad));
  }
}

TEST_CASE("TableReader getters for filter factories") {
  toml::table table = toml::parse(R"(name = "n"
flag = true
ratio = 2
limit = "2KiB"
list = ["a", "b"]
mode = "fast"
claims = { "x-user" = "sub" }
sub = { a = 1 }
)",
                                  std::string("f.toml"));
  Errors errors;
  TableReader reader(table, "[filter.x]", "f.toml", &errors);
  CHECK(reader.string("name", "fallback") == "n");
  CHECK(reader.string("absent", "fallback") == "fallback");
  CHECK_FALSE(reader.string("also_absent"));
  CHECK(reader.boolean("flag", false));
  CHECK(reader.number("ratio", 0.0, 0.0, 10.0) == 2.0);
  CHECK(reader.size("limit", 0) == 2048);
  CHECK(reader.strings("list") == std::vector<std::string>{"a", "b"});
  enum class Mode { Slow, Fast };
  CHECK(reader.choice("mode", Mode::Slow, {{"slow", Mode::Slow}, {"fast", Mode::Fast}}) ==
        Mode::Fast);
  CHECK(reader.stringMap("claims") == std::map<std::string, std::string>{{"x-user", "sub"}});
  const toml::table* sub = reader.table("sub");
  REQUIRE(sub);
  CHECK(reader.duration("interval", 7s) == 7s);
  CHECK_FALSE(reader.string("required", true));
  CHECK(reader.position().str() == "f.toml:1:1");
  reader.error(reader.node("mode"), "'mode' fast is not allowed with 'flag'");
  reader.finish();
  CHECK(errors == Errors{"f.toml:1:1: missing required key 'required' in [filter.x]",
                         "f.toml:6:8: 'mode' fast is not allowed with 'flag'"});
}

TEST_CASE("malformed inputs are errors, not crashes") {
  const std::vector<std::vector<uint8_t>> inputs = {
      {0x00},
      {'[', '[', 'r', 'o', 'u', 't', 'e', ']', ']', '\n', 'r',
       'e', 'c', 'o', 'n', 'n', 'e', 'c', 't', '=', '{',  '}'},
      {'a', '=', '"', '$', '{', '"'},
  };
  for (const auto& bytes : inputs) {
    LoadResult result = loadString(
        std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), "fuzz");
    CHECK_FALSE(result.ok());
    CHECK_FALSE(result.errors.empty());
  }
}

TEST_CASE("an engineio cluster serves pass-through routes only") {
  constexpr std::string_view kEngineIo = R"([[listener]]
address = "127.0.0.1:8080"
[cluster.e]
protocol = "engineio"
endpoints = ["127.0.0.1:9000"]
[[route]]
cluster = "e"
downstream = "socketio"
max_namespaces = 2
)";
  auto config = load(kEngineIo);
  REQUIRE(config->clusters.at("e").protocol == Protocol::EngineIO);
  CHECK(config->routes[0].max_namespaces == 2);
  std::string relay(kEngineIo);
  relay.replace(relay.find("socketio"), 8, "websocket");
  CHECK(errorsOf(relay) ==
        Errors{"t.toml:7:11: cluster 'e' speaks engineio: only a route with downstream = "
               "\"socketio\" can use it (pass-through)"});
  CHECK(errorsOf(withBase("max_namespaces = 0\n")) ==
        Errors{"t.toml:7:18: 'max_namespaces' must be between 1 and 1024"});
}

TEST_CASE("an admin address beyond loopback needs a token, the same for check and run") {
  const std::string refused =
      "is not a loopback address; the admin listener exposes the configuration and can drain "
      "the proxy, so set [admin] token to serve it beyond this host";
  CHECK(errorsOf(withBase("[admin]\naddress = \"0.0.0.0:9901\"\n")) ==
        Errors{"t.toml:8:11: [admin] address 0.0.0.0:9901 " + refused});
  CHECK(errorsOf(withBase("[admin]\naddress = \"[::]:9901\"\n")) ==
        Errors{"t.toml:8:11: [admin] address [::]:9901 " + refused});
  CHECK(errorsOf(withBase("[admin]\naddress = \"10.0.0.1:9901\"\nallow_remote = true\n")) ==
        Errors{"t.toml:8:11: [admin] address 10.0.0.1:9901 " + refused});
  CHECK(errorsOf(withBase("[admin]\naddress = \"0.0.0.0:9901\"\ntoken = \"\"\n")) ==
        Errors{"t.toml:9:9: 'token' must not be empty"});

  ::setenv("WSB_TEST_ADMIN_TOKEN", "t0ken-from-env", 1);
  auto remote = load(
      withBase("[admin]\naddress = \"0.0.0.0:9901\"\ntoken = \"${WSB_TEST_ADMIN_TOKEN}\"\n"));
  CHECK(remote->admin.token == "t0ken-from-env");
  for (const char* host : {"127.0.0.1:9901", "127.8.9.10:9901", "localhost:9901", "[::1]:9901"}) {
    auto local = load(withBase("[admin]\naddress = \"" + std::string(host) + "\"\n"));
    CHECK(local->admin.token.empty());
  }
}

TEST_CASE("loopback hosts are told from the others") {
  CHECK(isLoopbackHost("127.0.0.1"));
  CHECK(isLoopbackHost("127.1.2.3"));
  CHECK(isLoopbackHost("localhost"));
  CHECK(isLoopbackHost("LocalHost"));
  CHECK(isLoopbackHost("::1"));
  CHECK(isLoopbackHost("[::1]"));
  CHECK(isLoopbackHost("::ffff:127.0.0.1"));
  CHECK_FALSE(isLoopbackHost("0.0.0.0"));
  CHECK_FALSE(isLoopbackHost("10.0.0.1"));
  CHECK_FALSE(isLoopbackHost("::"));
  CHECK_FALSE(isLoopbackHost(""));
  CHECK_FALSE(isLoopbackHost("*"));
  CHECK_FALSE(isLoopbackHost("example.com"));
  CHECK_FALSE(isLoopbackHost("localhost.example.com"));
}
