// Builds a Config from TOML: reads every table with TableReader, then checks the references
// between them (routes -> listeners, clusters, filters), collecting every error it can.
#include "config/loader.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <system_error>
#include <thread>

#include "config/table_reader.h"

namespace wsb::config {

namespace {

constexpr std::string_view kEmbeddedDefault =
    R"(# wsbridge embedded default: a WebSocket relay on :8080 in front of the example echo backend.
[runtime]
workers = 1
log_level = "info"
[admin]
address = "127.0.0.1:9901"
[[listener]]
name = "public"
address = "127.0.0.1:8080"
[[route]]
path = "/"
downstream = "websocket"
cluster = "echo"
[cluster.echo]
protocol = "websocket"
endpoints = ["127.0.0.1:9000"]
)";

std::string inQuotes(std::string_view text) { return "'" + std::string(text) + "'"; }

// "'cluster.x' must be a table ([cluster.x])", for `cluster.x = 1`.
std::string notATable(std::string_view kind, std::string_view name) {
  std::string path = std::string(kind) + "." + std::string(name);
  std::string message = inQuotes(path);
  message += " must be a table ([";
  message += path;
  message += "])";
  return message;
}

// One load: the parsed document (kept alive by the filter specs that point into it), the
// config being filled and the errors found so far.
class ConfigBuilder {
 public:
  ConfigBuilder(std::shared_ptr<const toml::table> document, std::string file)
      : document_(std::move(document)), file_(std::move(file)) {
    config_.source = file_;
  }

  LoadResult build() {
    TableReader root(*document_, "the top level", file_, &errors_);
    readRuntime(root);
    readAdmin(root);
    readListeners(root);
    readClusters(root);
    readFilters(root);
    readRoutes(root);
    root.finish();
    LoadResult result;
    if (errors_.empty()) {
      result.config = std::make_shared<const Config>(std::move(config_));
    } else {
      sortByPosition(errors_);
      result.errors = std::move(errors_);
    }
    return result;
  }

 private:
  void readRuntime(TableReader& root) {
    const toml::table* table = root.table("runtime");
    if (table == nullptr) return;
    TableReader reader(*table, "[runtime]", file_, &errors_);
    Runtime& runtime = config_.runtime;
    int64_t workers = reader.integer("workers", runtime.workers, 0, 1024);
    // hardware_concurrency may not know (0); one worker is always right.
    runtime.workers = workers > 0 ? static_cast<uint32_t>(workers)
                                  : std::max(1u, std::thread::hardware_concurrency());
    static constexpr std::string_view kLevels[] = {"trace", "debug", "info", "warn", "error"};
    if (std::optional<size_t> level = reader.oneOf("log_level", kLevels))
      runtime.log_level = kLevels[*level];
    runtime.log_format = reader.choice("log_format", runtime.log_format,
                                       {{"text", LogFormat::Text}, {"json", LogFormat::Json}});
    runtime.drain_timeout = reader.duration("drain_timeout", runtime.drain_timeout);
    reader.finish();
  }

  void readAdmin(TableReader& root) {
    const toml::table* table = root.table("admin");
    if (table == nullptr) return;
    TableReader reader(*table, "[admin]", file_, &errors_);
    Admin& admin = config_.admin;
    admin.address = readAddress(reader, "address", false);
    admin.token = reader.string("token", "");
    if (admin.token.empty() && reader.has("token"))
      reader.error(reader.node("token"), "'token' must not be empty");
    admin.allow_remote = reader.boolean("allow_remote", false);
    // The one place this is decided, so `check` and `run` agree: beyond this host the admin
    // listener (config, connections, POST /drain) is only served behind a token. A token that
    // is there but bad (empty, a missing ${ENV}) is reported on its own.
    if (admin.address && !reader.has("token") && !isLoopbackHost(admin.address->host)) {
      reader.error(reader.node("address"),
                   "[admin] address " + admin.address->str() +
                       " is not a loopback address; the admin listener exposes the "
                       "configuration and can drain the proxy, so set [admin] token to serve it "
                       "beyond this host");
    }
    reader.finish();
  }

  void readListeners(TableReader& root) {
    std::vector<const toml::table*> tables = arrayOfTables(root, "listener");
    std::map<std::string, SourcePos> names;
    std::map<std::string, std::string> addresses;  // address -> listener name
    for (size_t i = 0; i < tables.size(); ++i) {
      TableReader reader(*tables[i], "[[listener]]", file_, &errors_);
      Listener listener;
      listener.pos = reader.position();
      listener.name = reader.string("name", "listener" + std::to_string(i + 1));
      const toml::node* name_node = reader.node("name");
      if (listener.name.empty()) reader.error(name_node, "'name' must not be empty");
      std::optional<Address> address = readAddress(reader, "address", true);
      if (address) listener.address = *address;
      bool has_cert = reader.has("tls_cert");
      bool has_key = reader.has("tls_key");
      listener.tls_cert = reader.filePath("tls_cert").value_or("");
      listener.tls_key = reader.filePath("tls_key").value_or("");
      if (has_cert != has_key) {
        reader.error(reader.node(has_cert ? "tls_cert" : "tls_key"),
                     "'tls_cert' and 'tls_key' must be set together");
      }
      listener.max_handshakes_per_ip = static_cast<uint32_t>(reader.integer(
          "max_handshakes_per_ip", listener.max_handshakes_per_ip, 0, UINT32_MAX));
      reader.finish();

      auto [named, fresh_name] = names.emplace(listener.name, listener.pos);
      if (!fresh_name) {
        reader.error(name_node, "listener name " + inQuotes(listener.name) +
                                    " is already used by the listener at " + named->second.str());
      }
      // Port 0 asks the kernel for a fresh port each time, so those never collide.
      if (address && address->port != 0) {
        auto [used, fresh_address] = addresses.emplace(address->str(), listener.name);
        if (!fresh_address) {
          reader.error(reader.node("address"), "listener address " + address->str() +
                                                   " is already used by listener " +
                                                   inQuotes(used->second));
        }
      }
      config_.listeners.push_back(std::move(listener));
    }
    if (tables.empty() && !root.has("listener")) rootError("at least one [[listener]] is required");
  }

  void readClusters(TableReader& root) {
    const toml::table* clusters = root.table("cluster");
    if (clusters == nullptr) return;
    for (auto&& [key, node] : *clusters) {
      std::string name(key.str());
      const toml::table* table = node.as_table();
      if (table == nullptr) {
        root.error(&node, notATable("cluster", name));
        continue;
      }
      TableReader reader(*table, "[cluster." + name + "]", file_, &errors_);
      Cluster cluster;
      cluster.name = name;
      cluster.pos = reader.position();
      cluster.protocol = readProtocol(reader, "protocol", true);
      std::vector<const toml::node*> endpoint_nodes;
      std::vector<std::string> endpoints = reader.strings("endpoints", &endpoint_nodes);
      if (const toml::node* list = reader.node("endpoints"); list == nullptr) {
        reader.error(nullptr, "missing required key 'endpoints' in " + reader.context());
      } else if (list->is_array() && list->as_array()->empty()) {
        reader.error(list, "'endpoints' must not be empty");
      }
      for (size_t i = 0; i < endpoints.size(); ++i) {
        std::optional<Address> address = parseAddress(endpoints[i]);
        if (!address) {
          reader.error(endpoint_nodes[i], badAddress(endpoints[i], "endpoints"));
        } else if (address->port == 0) {
          reader.error(endpoint_nodes[i], "endpoint " + inQuotes(endpoints[i]) + " needs a port");
        } else {
          cluster.endpoints.push_back(*address);
        }
      }
      cluster.path = reader.string("path");
      if (cluster.path && !cluster.path->starts_with('/'))
        reader.error(reader.node("path"), "'path' must start with '/'");
      cluster.host = reader.string("host");
      cluster.lb = reader.choice("lb", cluster.lb,
                                 {{"round_robin", LoadBalance::RoundRobin},
                                  {"least_conn", LoadBalance::LeastConn},
                                  {"hash_ip", LoadBalance::HashIp},
                                  {"hash_sub", LoadBalance::HashSub}});
      cluster.connect_timeout =
          positiveDuration(reader, "connect_timeout", cluster.connect_timeout);
      cluster.handshake_timeout =
          positiveDuration(reader, "handshake_timeout", cluster.handshake_timeout);
      cluster.tls = reader.boolean("tls", cluster.tls);
      cluster.tls_ca = reader.filePath("tls_ca").value_or("");
      cluster.tls_server_name = reader.string("tls_server_name", "");
      cluster.tls_verify = reader.boolean("tls_verify", cluster.tls_verify);
      reader.finish();
      config_.clusters.emplace(name, std::move(cluster));
    }
  }

  void readFilters(TableReader& root) {
    const toml::table* filters = root.table("filter");
    if (filters == nullptr) return;
    for (auto&& [key, node] : *filters) {
      std::string name(key.str());
      const toml::table* table = node.as_table();
      if (table == nullptr) {
        root.error(&node, notATable("filter", name));
        continue;
      }
      // The other keys belong to the filter's factory, which reads (and checks) them later.
      TableReader reader(*table, "[filter." + name + "]", file_, &errors_);
      FilterSpec spec;
      spec.name = name;
      spec.pos = reader.position();
      spec.type = reader.string("type", true).value_or("");
      if (spec.type.empty() && reader.has("type"))
        reader.error(reader.node("type"), "'type' must not be empty");
      // Share the parsed document rather than copy the table: toml++ copies drop the source
      // positions the factory needs for its own errors.
      spec.table = std::shared_ptr<const toml::table>(document_, table);
      config_.filters.emplace(name, std::move(spec));
    }
  }

  void readRoutes(TableReader& root) {
    std::vector<const toml::table*> tables = arrayOfTables(root, "route");
    std::map<std::string, SourcePos> seen;  // listener + host + path -> first route
    for (const toml::table* table : tables) {
      TableReader reader(*table, "[[route]]", file_, &errors_);
      Route route;
      route.pos = reader.position();
      readRouteTarget(reader, route);
      readTranslation(reader, route);
      readSocketIo(reader, route);
      reader.finish();

      std::string key = route.listener + '\n' + route.host.value_or("") + '\n' + route.path;
      auto [first, fresh] = seen.emplace(key, route.pos);
      if (!fresh) {
        std::string what = "listener " + inQuotes(route.listener);
        if (route.host) what += " host " + inQuotes(*route.host);
        what += " path " + inQuotes(route.path);
        reader.error(nullptr,
                     "duplicate route: " + what + " is already routed at " + first->second.str());
      }
      config_.routes.push_back(std::move(route));
    }
    if (tables.empty() && !root.has("route")) rootError("at least one [[route]] is required");
  }

  // Where a route matches and where it goes.
  void readRouteTarget(TableReader& reader, Route& route) {
    if (std::optional<std::string> listener = reader.string("listener")) {
      route.listener = *listener;
      bool known = std::any_of(config_.listeners.begin(), config_.listeners.end(),
                               [&](const Listener& l) { return l.name == *listener; });
      if (!known) reader.error(reader.node("listener"), "unknown listener " + inQuotes(*listener));
    } else if (config_.listeners.size() == 1) {
      route.listener = config_.listeners.front().name;
    } else if (config_.listeners.size() > 1 && !reader.has("listener")) {
      reader.error(nullptr, "'listener' is required when there are several listeners");
    }

    route.path = reader.string("path", route.path);
    if (!route.path.starts_with('/'))
      reader.error(reader.node("path"), "'path' must start with '/'");
    route.host = reader.string("host");
    if (route.host) {
      // Host headers compare case-insensitively; keep one form.
      for (char& c : *route.host)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (route.host->empty()) {
        reader.error(reader.node("host"), "'host' must not be empty");
      } else if (!route.host->starts_with('[') && route.host->find(':') != std::string::npos) {
        reader.error(reader.node("host"), "'host' must not include a port");
      }
    }
    route.downstream = readProtocol(reader, "downstream");

    if (std::optional<std::string> cluster = reader.string("cluster", true)) {
      route.cluster = *cluster;
      auto it = config_.clusters.find(*cluster);
      if (it == config_.clusters.end()) {
        reader.error(reader.node("cluster"),
                     "unknown cluster " + inQuotes(*cluster) + " (no [cluster." + *cluster + "])");
      } else if (it->second.protocol == Protocol::EngineIO &&
                 route.downstream != Protocol::SocketIO) {
        reader.error(reader.node("cluster"), "cluster " + inQuotes(*cluster) +
                                                 " speaks engineio: only a route with downstream "
                                                 "= \"socketio\" can use it (pass-through)");
      }
    }
    std::vector<const toml::node*> filter_nodes;
    route.filters = reader.strings("filters", &filter_nodes);
    std::set<std::string_view> listed;
    for (size_t i = 0; i < route.filters.size(); ++i) {
      const std::string& name = route.filters[i];
      if (config_.filters.count(name) == 0) {
        reader.error(filter_nodes[i],
                     "unknown filter " + inQuotes(name) + " (no [filter." + name + "])");
      } else if (!listed.insert(name).second) {
        reader.error(filter_nodes[i], "filter " + inQuotes(name) + " is listed twice");
      }
    }
    route.max_message = positiveSize(reader, "max_message", route.max_message);
  }

  // Envelope and Socket.IO client options (translate up / down).
  void readTranslation(TableReader& reader, Route& route) {
    route.namespace_ = reader.string("namespace", route.namespace_);
    if (!route.namespace_.starts_with('/'))
      reader.error(reader.node("namespace"), "'namespace' must start with '/'");
    route.envelope = reader.choice("envelope", route.envelope,
                                   {{"json", Envelope::Json}, {"array", Envelope::Array}});
    route.binary_event = reader.string("binary_event", route.binary_event);
    route.text_event = reader.string("text_event", route.text_event);
    if (route.text_event.empty())
      reader.error(reader.node("text_event"), "'text_event' must not be empty");
    route.allow_nsp = reader.boolean("allow_nsp", route.allow_nsp);
    route.close_on_bad_envelope =
        reader.boolean("close_on_bad_envelope", route.close_on_bad_envelope);
    route.connect_error_as_event =
        reader.boolean("connect_error_as_event", route.connect_error_as_event);
    route.upstream_auth = reader.stringMap("upstream_auth");

    std::map<std::string, const toml::node*> path_nodes;
    route.namespace_paths = reader.stringMap("namespace_paths", &path_nodes);
    for (const auto& [nsp, path] : route.namespace_paths) {
      if (!nsp.starts_with('/')) {
        reader.error(path_nodes[nsp],
                     "namespace " + inQuotes(nsp) + " in 'namespace_paths' must start with '/'");
      } else if (!path.starts_with('/')) {
        reader.error(path_nodes[nsp], "path " + inQuotes(path) + " for namespace " + inQuotes(nsp) +
                                          " must start with '/'");
      }
    }
    readReconnect(reader, route.reconnect);
  }

  void readReconnect(TableReader& reader, Reconnect& reconnect) {
    const toml::node* node = reader.node("reconnect");
    if (node == nullptr) return;
    if (const auto* enabled = node->as_boolean()) {
      reconnect.enabled = enabled->get();
      return;
    }
    const toml::table* table = node->as_table();
    if (table == nullptr) {
      reader.error(node, "'reconnect' must be true, false or a table");
      return;
    }
    TableReader sub(*table, "[route.reconnect]", file_, &errors_);
    reconnect.enabled = sub.boolean("enabled", true);  // writing the table means wanting it
    reconnect.initial_backoff = positiveDuration(sub, "initial_backoff", reconnect.initial_backoff);
    reconnect.max_backoff = positiveDuration(sub, "max_backoff", reconnect.max_backoff);
    if (reconnect.initial_backoff > reconnect.max_backoff) {
      sub.error(sub.node(sub.has("initial_backoff") ? "initial_backoff" : "max_backoff"),
                "'initial_backoff' must not exceed 'max_backoff'");
    }
    constexpr int64_t kMaxU32 = std::numeric_limits<uint32_t>::max();
    reconnect.max_attempts =
        static_cast<uint32_t>(sub.integer("max_attempts", reconnect.max_attempts, 0, kMaxU32));
    reconnect.max_buffered_messages = static_cast<uint32_t>(
        sub.integer("max_messages", reconnect.max_buffered_messages, 0, kMaxU32));
    reconnect.max_buffered_bytes = sub.size("max_bytes", reconnect.max_buffered_bytes);
    sub.finish();
  }

  // Options of wsbridge's Engine.IO / Socket.IO server role.
  void readSocketIo(TableReader& reader, Route& route) {
    route.ping_interval = positiveDuration(reader, "ping_interval", route.ping_interval);
    route.ping_timeout = positiveDuration(reader, "ping_timeout", route.ping_timeout);
    route.connect_timeout = positiveDuration(reader, "connect_timeout", route.connect_timeout);
    route.max_payload = positiveSize(reader, "max_payload", route.max_payload);
    route.max_namespaces =
        static_cast<uint32_t>(reader.integer("max_namespaces", route.max_namespaces, 1, 1024));
    route.allow_eio3 = reader.boolean("allow_eio3", route.allow_eio3);
    if (reader.has("transports")) {
      std::vector<const toml::node*> nodes;
      std::vector<std::string> names = reader.strings("transports", &nodes);
      std::vector<Transport> transports;
      for (size_t i = 0; i < names.size(); ++i) {
        Transport transport;
        if (names[i] == "polling") {
          transport = Transport::Polling;
        } else if (names[i] == "websocket") {
          transport = Transport::WebSocket;
        } else {
          reader.error(nodes[i], "unknown transport " + inQuotes(names[i]) +
                                     " (expected 'polling' or 'websocket')");
          continue;
        }
        if (std::find(transports.begin(), transports.end(), transport) != transports.end()) {
          reader.error(nodes[i], "transport " + inQuotes(names[i]) + " is listed twice");
          continue;
        }
        transports.push_back(transport);
      }
      const toml::array* array = reader.node("transports")->as_array();
      if (array != nullptr && array->empty())
        reader.error(reader.node("transports"), "'transports' must not be empty");
      if (!transports.empty()) route.transports = std::move(transports);
    }
    route.cors_origins = reader.strings("cors_origins");
    route.sid_key = reader.string("sid_key", route.sid_key);
  }

  Protocol readProtocol(TableReader& reader, std::string_view key, bool engineio = false) {
    if (!engineio) {
      return reader.choice(key, Protocol::WebSocket,
                           {{"websocket", Protocol::WebSocket}, {"socketio", Protocol::SocketIO}});
    }
    return reader.choice(key, Protocol::WebSocket,
                         {{"websocket", Protocol::WebSocket},
                          {"socketio", Protocol::SocketIO},
                          {"engineio", Protocol::EngineIO}});
  }

  std::optional<Address> readAddress(TableReader& reader, std::string_view key, bool required) {
    std::optional<std::string> text = reader.string(key, required);
    if (!text) return std::nullopt;
    std::optional<Address> address = parseAddress(*text);
    if (!address) reader.error(reader.node(key), badAddress(*text, key));
    return address;
  }

  static std::string badAddress(std::string_view text, std::string_view key) {
    return "invalid address " + inQuotes(text) + " in " + inQuotes(key) +
           ": expected host:port such as \"127.0.0.1:8080\" or \"[::1]:8080\"";
  }

  Duration positiveDuration(TableReader& reader, std::string_view key, Duration fallback) {
    Duration value = reader.duration(key, fallback);
    if (value.count() > 0) return value;
    reader.error(reader.node(key), inQuotes(key) + " must be greater than 0");
    return fallback;
  }

  uint64_t positiveSize(TableReader& reader, std::string_view key, uint64_t fallback) {
    uint64_t value = reader.size(key, fallback);
    if (value > 0) return value;
    reader.error(reader.node(key), inQuotes(key) + " must be greater than 0");
    return fallback;
  }

  // The tables of `[[key]]`; anything else under `key` is reported.
  std::vector<const toml::table*> arrayOfTables(TableReader& root, std::string_view key) {
    std::vector<const toml::table*> tables;
    const toml::node* node = root.node(key);
    if (node == nullptr) return tables;
    std::string expected =
        inQuotes(key) + " must be an array of tables ([[" + std::string(key) + "]])";
    const toml::array* array = node->as_array();
    if (array == nullptr) {
      root.error(node, expected);
      return tables;
    }
    if (array->empty()) root.error(node, "at least one [[" + std::string(key) + "]] is required");
    for (const toml::node& element : *array) {
      if (const toml::table* table = element.as_table()) {
        tables.push_back(table);
      } else {
        root.error(&element, expected);
      }
    }
    return tables;
  }

  void rootError(std::string_view message) {
    errors_.push_back(formatError(SourcePos{file_, 1, 1}, message));
  }

  std::shared_ptr<const toml::table> document_;
  std::string file_;
  Config config_;
  std::vector<std::string> errors_;
};

}  // namespace

LoadResult loadString(std::string_view toml_text, const std::string& source_name) {
  std::shared_ptr<const toml::table> document;
  try {
    // toml++ reports syntax errors by throwing; they stop here and become values.
    document =
        std::make_shared<const toml::table>(toml::parse(toml_text, std::string(source_name)));
  } catch (const toml::parse_error& error) {
    LoadResult result;
    result.errors.push_back(
        formatError(positionOf(error.source(), source_name), error.description()));
    return result;
  }
  return ConfigBuilder(std::move(document), source_name).build();
}

LoadResult loadFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    LoadResult result;
    result.errors.push_back(formatError(SourcePos{path, 1, 1}, "is a directory, not a file"));
    return result;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult result;
    result.errors.push_back(formatError(
        SourcePos{path, 1, 1}, std::string("cannot read the file: ") + std::strerror(errno)));
    return result;
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    LoadResult result;
    result.errors.push_back(formatError(SourcePos{path, 1, 1}, "cannot read the file"));
    return result;
  }
  return loadString(text, path);
}

std::string_view embeddedDefaultConfig() { return kEmbeddedDefault; }

}  // namespace wsb::config
