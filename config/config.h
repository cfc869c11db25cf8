// The immutable configuration snapshot every worker reads: plain structs, filled by the loader.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

namespace wsb::config {

using Duration = std::chrono::milliseconds;

// Where a value came from, for `file:line:col: message` errors raised after loading
// (filter factories validate their own tables with it).
struct SourcePos {
  std::string file;
  uint32_t line = 0;
  uint32_t column = 0;
  std::string str() const;  // "file:line:col"
};

// A host:port pair as written in the config ("127.0.0.1:8080", "[::1]:9000", "backend:80").
struct Address {
  std::string host;
  uint16_t port = 0;
  std::string str() const;  // host:port, IPv6 hosts in brackets
};

enum class LogFormat { Text, Json };
// What a route's client or a cluster's upstream speaks. EngineIO (clusters only): a plain
// engine.io server, whose messages are not Socket.IO packets (pass-through checks Engine.IO
// framing only; Socket.IO-aware filters do not apply).
enum class Protocol { WebSocket, SocketIO, EngineIO };
enum class LoadBalance { RoundRobin, LeastConn, HashIp, HashSub };
enum class Envelope { Json, Array };
enum class Transport { Polling, WebSocket };

struct Runtime {
  uint32_t workers = 1;  // 0 in the file = one per CPU core; the loader resolves it
  std::string log_level = "info";
  LogFormat log_format = LogFormat::Text;
  Duration drain_timeout{10000};
};

struct Admin {
  std::optional<Address> address;  // unset = no admin listener
  // `Authorization: Bearer <token>` every admin endpoint but /healthz and /ready asks for.
  // Empty = no token, and then the loader accepts a loopback address only.
  std::string token;
  // Read for older files; no longer enough on its own: a non-loopback address needs `token`.
  bool allow_remote = false;
};

struct Listener {
  std::string name;
  Address address;
  std::string tls_cert;  // both set = wss/https on this listener
  std::string tls_key;
  bool tls() const { return !tls_cert.empty(); }
  // Connections from one client address (an IPv6 /64) that may be in their handshake at once,
  // across workers: accepted, first request not yet read whole. 0 = no cap.
  uint32_t max_handshakes_per_ip = 128;
  SourcePos pos;
};

struct Cluster {
  std::string name;
  Protocol protocol = Protocol::WebSocket;
  std::vector<Address> endpoints;
  std::optional<std::string> path;  // unset = the client's path
  std::optional<std::string> host;  // Host header toward the upstream; unset = the client's
  LoadBalance lb = LoadBalance::RoundRobin;
  Duration connect_timeout{2000};
  Duration handshake_timeout{5000};  // upstream HTTP answer after connect (-> 504)
  bool tls = false;
  std::string tls_ca;
  std::string tls_server_name;
  bool tls_verify = true;
  SourcePos pos;
};

// A [filter.NAME] table, kept whole: its factory validates and reads it when the config is
// built into a running snapshot (filters/registry), so errors still carry file:line:col.
struct FilterSpec {
  std::string name;
  std::string type;
  std::shared_ptr<const toml::table> table;
  SourcePos pos;
};

struct Reconnect {
  bool enabled = false;
  Duration initial_backoff{200};
  Duration max_backoff{5000};
  uint32_t max_attempts = 0;  // 0 = unlimited
  uint32_t max_buffered_messages = 1000;
  uint64_t max_buffered_bytes = 1 << 20;
};

struct Route {
  std::string listener;  // listener name
  std::string path = "/";
  std::optional<std::string> host;  // match the Host header too (without port)
  Protocol downstream = Protocol::WebSocket;
  std::string cluster;
  std::vector<std::string> filters;  // names of [filter.*] tables, in order
  uint64_t max_message = 16 << 20;   // bytes; 1009 beyond

  // Translation (downstream websocket <-> socketio cluster, and the reverse).
  std::string namespace_ = "/";
  Envelope envelope = Envelope::Json;
  std::string binary_event;         // empty = binary frames are refused
  std::string text_event = "message";
  bool allow_nsp = false;           // envelope "nsp" honoured
  bool close_on_bad_envelope = false;
  bool connect_error_as_event = false;  // refused upstream CONNECT -> event + 1008, not 403
  std::map<std::string, std::string> upstream_auth;  // key -> template
  std::map<std::string, std::string> namespace_paths;  // translate down: nsp -> upstream path
  Reconnect reconnect;

  // Socket.IO facing (server role and pass-through).
  Duration ping_interval{25000};
  Duration ping_timeout{20000};
  // Translate down: a client that has joined no namespace by then is closed (socket.io's
  // connectTimeout).
  Duration connect_timeout{45000};
  uint64_t max_payload = 1000000;
  // Namespaces one client session may join or be joining at once (translate down opens an
  // upstream connection for each); past it, CONNECT_ERROR "too many namespaces".
  uint32_t max_namespaces = 8;
  bool allow_eio3 = false;
  std::vector<Transport> transports{Transport::Polling, Transport::WebSocket};
  std::vector<std::string> cors_origins;
  std::string sid_key;  // empty = random per process

  SourcePos pos;
};

struct Config {
  std::string source;  // file path, or "<embedded default>"
  Runtime runtime;
  Admin admin;
  std::vector<Listener> listeners;
  std::vector<Route> routes;
  std::map<std::string, Cluster> clusters;
  std::map<std::string, FilterSpec> filters;
};

using ConfigPtr = std::shared_ptr<const Config>;

// 127.0.0.0/8, ::1 (bracketed or not), an IPv4-mapped 127.x address and localhost.
bool isLoopbackHost(std::string_view host);

}  // namespace wsb::config
