// AdminListener: evhttp routes, access checks (Host, Origin, bearer token), readiness probes and
// the redacted config view.
#include "proxy/admin.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <tuple>

#include "codec/http1.h"
#include "proxy/dashboard.h"

namespace wsb::proxy {

namespace {
constexpr Duration kProbeInterval{2000};
constexpr Duration kProbeTimeoutMax{1500};  // below the interval: one probe per endpoint at a time

std::string quoted(std::string_view s) { return "\"" + http::jsonEscape(s) + "\""; }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}
}  // namespace

// ---- access ----

namespace {
// "[::1]" for "::1": the form a Host header carries.
std::string hostForm(std::string_view host) {
  std::string h = lower(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') return h;
  return h.find(':') != std::string::npos ? "[" + h + "]" : h;
}

bool sha256(std::string_view text, unsigned char (&out)[32]) {
  unsigned int len = 0;
  return EVP_Digest(text.data(), text.size(), out, &len, EVP_sha256(), nullptr) == 1 && len == 32;
}
}  // namespace

AdminAccess::AdminAccess(std::string_view host, uint16_t port, std::string_view bound_ip) {
  std::string configured = hostForm(host);
  any_host_ = configured.empty() || configured == "*" || configured == "0.0.0.0" ||
              configured == "[::]" || configured == "[0:0:0:0:0:0:0:0]";
  std::vector<std::string> names{configured};
  if (!bound_ip.empty()) names.push_back(hostForm(bound_ip));
  if (isLoopbackHost(host)) {
    for (const char* alias : {"localhost", "127.0.0.1", "[::1]"}) names.emplace_back(alias);
  }
  for (const std::string& name : names) {
    hosts_.push_back(name + ":" + std::to_string(port));
    if (port == 80) hosts_.push_back(name);  // the default port may be left out
  }
}

bool AdminAccess::hostAllowed(std::string_view host) const {
  if (any_host_) return !host.empty();
  return std::find(hosts_.begin(), hosts_.end(), lower(host)) != hosts_.end();
}

bool AdminAccess::originAllowed(std::string_view origin, std::string_view host) const {
  constexpr std::string_view kScheme = "http://";
  std::string o = lower(origin);
  if (!o.starts_with(kScheme)) return false;  // "null", https:// (we serve no TLS), garbage
  std::string_view authority = std::string_view(o).substr(kScheme.size());
  // A wildcard bind has no name of its own: same-origin means the Host the request was sent to.
  if (any_host_) return !host.empty() && authority == lower(host);
  return hostAllowed(authority);
}

AdminAccess::Verdict AdminAccess::check(const Request& request, std::string_view token,
                                        bool open) const {
  Verdict v;
  if (request.host_headers > 1) {
    v.status = 400;
    v.error = "more than one Host header";
  } else if (request.host_headers == 0 && request.http11) {
    v.status = 400;
    v.error = "missing Host header";
  } else if (request.host_headers == 1 && !hostAllowed(request.host)) {
    v.status = 403;
    v.error = "Host does not name this admin listener";
  } else if (request.origin != nullptr && !originAllowed(request.origin, request.host)) {
    v.status = 403;
    v.error = "cross-origin request refused";
  }
  if (v.status != 0) return v;
  v.authorized = token.empty() ||
                 (request.authorization != nullptr && bearerMatches(request.authorization, token));
  if (!v.authorized && !open) {
    v.status = 401;
    v.error = "unauthorized";
  }
  return v;
}

bool bearerMatches(std::string_view authorization, std::string_view token) {
  constexpr std::string_view kScheme = "bearer ";
  if (token.empty() || authorization.size() <= kScheme.size() ||
      lower(authorization.substr(0, kScheme.size())) != kScheme) {
    return false;
  }
  std::string_view credentials = authorization.substr(kScheme.size());
  while (!credentials.empty() && (credentials.front() == ' ' || credentials.front() == '\t'))
    credentials.remove_prefix(1);
  while (!credentials.empty() && (credentials.back() == ' ' || credentials.back() == '\t'))
    credentials.remove_suffix(1);
  unsigned char given[32], expected[32];
  if (!sha256(credentials, given) || !sha256(token, expected)) return false;
  return CRYPTO_memcmp(given, expected, sizeof given) == 0;
}

// ---- /config ----

// What /config must never show, by where it sits in config/config.h (and the filter tables):
// * [admin] token
// * [[route]] sid_key, and every value of upstream_auth (templates, but a literal credential
//   is just as valid there)
// * filter tables (kept as raw TOML): auth.jwt `secret`, and by name any key isSecretKey()
//   knows (token, *_token, *secret*, *password*, *passwd*, sid_key, private_key, api_key)
// * rate_limit `redis` (redis://[user:]password@host): the user info of any URL-looking string,
//   whatever key holds it (redactUrl)
// Not secrets: tls_cert, tls_key, tls_ca, public_key and jwks are file paths; their contents
// are never read into the Config.
bool isSecretKey(std::string_view key) {
  std::string k = lower(key);
  return k == "sid_key" || k == "token" || k.ends_with("_token") || k == "private_key" ||
         k == "api_key" || k.find("secret") != std::string::npos ||
         k.find("password") != std::string::npos || k.find("passwd") != std::string::npos;
}

namespace {
// A URL's user info is a secret whatever key holds it: "redis://user:pass@host" keeps the user,
// "redis://pass@host" (a Redis password alone) loses all of it. Redis passwords may hold '@' and
// '/', so the user info runs to the last '@', as parseRedisUrl reads it.
std::string redactUrl(std::string_view value) {
  size_t scheme = value.find("://");
  if (scheme == std::string_view::npos) return std::string(value);
  size_t start = scheme + 3;
  size_t at = value.rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(value);
  std::string_view info = value.substr(start, at - start);
  size_t colon = info.find(':');
  std::string_view user =
      colon == std::string_view::npos ? std::string_view() : info.substr(0, colon + 1);
  if (user.find('/') != std::string_view::npos) user = {};
  return std::string(value.substr(0, start)) + std::string(user) + "<redacted>" +
         std::string(value.substr(at));
}

std::string str(std::string_view value) { return quoted(redactUrl(value)); }

std::string duration(Duration d) {
  auto ms = d.count();
  if (ms != 0 && ms % 1000 == 0) return quoted(std::to_string(ms / 1000) + "s");
  return quoted(std::to_string(ms) + "ms");
}

std::string boolean(bool b) { return b ? "true" : "false"; }

std::string secret(std::string_view value) {
  return value.empty() ? "\"\"" : "\"<redacted>\"";
}

std::string protocol(config::Protocol p) {
  switch (p) {
    case config::Protocol::SocketIO:
      return "\"socketio\"";
    case config::Protocol::EngineIO:
      return "\"engineio\"";
    case config::Protocol::WebSocket:
      break;
  }
  return "\"websocket\"";
}

std::string strings(const std::vector<std::string>& list) {
  std::string out = "[";
  for (size_t i = 0; i < list.size(); ++i) out += (i ? "," : "") + str(list[i]);
  return out + "]";
}

std::string tomlToJson(const toml::node& node);

std::string tomlTableToJson(const toml::table& table) {
  std::string out = "{";
  bool first = true;
  for (const auto& [key, value] : table) {
    if (!first) out += ',';
    first = false;
    out += quoted(key.str()) + ":";
    out += isSecretKey(key.str()) ? std::string("\"<redacted>\"") : tomlToJson(value);
  }
  return out + "}";
}

std::string tomlToJson(const toml::node& node) {
  if (const auto* t = node.as_table()) return tomlTableToJson(*t);
  if (const auto* a = node.as_array()) {
    std::string out = "[";
    for (size_t i = 0; i < a->size(); ++i) out += (i ? "," : "") + tomlToJson(*a->get(i));
    return out + "]";
  }
  if (const auto* s = node.as_string()) return str(s->get());
  if (const auto* i = node.as_integer()) return std::to_string(i->get());
  if (const auto* f = node.as_floating_point()) return std::to_string(f->get());
  if (const auto* b = node.as_boolean()) return boolean(b->get());
  std::ostringstream os;  // dates and times, as TOML writes them
  node.visit([&os](const auto& v) { os << v; });
  return quoted(os.str());
}
}  // namespace

std::string renderConfigJson(const config::Config& c) {
  std::string out = "{\"source\":" + str(c.source);
  out += ",\"runtime\":{\"workers\":" + std::to_string(c.runtime.workers) +
         ",\"log_level\":" + str(c.runtime.log_level) + ",\"log_format\":" +
         (c.runtime.log_format == config::LogFormat::Json ? "\"json\"" : "\"text\"") +
         ",\"drain_timeout\":" + duration(c.runtime.drain_timeout) + "}";
  out += ",\"admin\":{\"address\":" +
         (c.admin.address ? str(c.admin.address->str()) : std::string("null")) +
         ",\"token\":" + secret(c.admin.token) +
         ",\"allow_remote\":" + boolean(c.admin.allow_remote) + "}";
  out += ",\"listeners\":[";
  for (size_t i = 0; i < c.listeners.size(); ++i) {
    const auto& l = c.listeners[i];
    out += std::string(i ? "," : "") + "{\"name\":" + str(l.name) +
           ",\"address\":" + str(l.address.str()) + ",\"tls_cert\":" + str(l.tls_cert) +
           ",\"tls_key\":" + str(l.tls_key) +
           ",\"max_handshakes_per_ip\":" + std::to_string(l.max_handshakes_per_ip) + "}";
  }
  out += "],\"routes\":[";
  for (size_t i = 0; i < c.routes.size(); ++i) {
    const auto& r = c.routes[i];
    out += std::string(i ? "," : "") + "{\"listener\":" + str(r.listener) +
           ",\"path\":" + str(r.path) + ",\"host\":" + (r.host ? str(*r.host) : "null") +
           ",\"downstream\":" + protocol(r.downstream) + ",\"cluster\":" + str(r.cluster) +
           ",\"filters\":" + strings(r.filters) +
           ",\"max_message\":" + std::to_string(r.max_message) +
           ",\"namespace\":" + str(r.namespace_) +
           ",\"envelope\":" + (r.envelope == config::Envelope::Array ? "\"array\"" : "\"json\"") +
           ",\"binary_event\":" + str(r.binary_event) + ",\"text_event\":" + str(r.text_event) +
           ",\"upstream_auth\":{";
    bool first = true;
    // Every value: a template ("{query.token}") or a static credential, whatever its key.
    for (const auto& [k, v] : r.upstream_auth) {
      out += std::string(first ? "" : ",") + str(k) + ":" + secret(v);  // every value
      first = false;
    }
    out += "},\"reconnect\":" + boolean(r.reconnect.enabled) +
           ",\"ping_interval\":" + duration(r.ping_interval) +
           ",\"ping_timeout\":" + duration(r.ping_timeout) +
           ",\"max_payload\":" + std::to_string(r.max_payload) +
           ",\"allow_eio3\":" + boolean(r.allow_eio3) +
           ",\"cors_origins\":" + strings(r.cors_origins) + ",\"sid_key\":" + secret(r.sid_key) +
           "}";
  }
  out += "],\"clusters\":{";
  bool first = true;
  for (const auto& [name, cl] : c.clusters) {
    out += std::string(first ? "" : ",") + str(name) + ":{\"protocol\":" + protocol(cl.protocol) +
           ",\"endpoints\":[";
    first = false;
    for (size_t i = 0; i < cl.endpoints.size(); ++i) {
      out += (i ? "," : "") + str(cl.endpoints[i].str());
    }
    static constexpr const char* kLb[] = {"round_robin", "least_conn", "hash_ip", "hash_sub"};
    out += "],\"path\":" + (cl.path ? str(*cl.path) : "null") +
           ",\"lb\":" + quoted(kLb[static_cast<int>(cl.lb)]) +
           ",\"connect_timeout\":" + duration(cl.connect_timeout) +
           ",\"handshake_timeout\":" + duration(cl.handshake_timeout) +
           ",\"tls\":" + boolean(cl.tls) + "}";
  }
  out += "},\"filters\":{";
  first = true;
  for (const auto& [name, spec] : c.filters) {
    out += std::string(first ? "" : ",") + str(name) + ":" +
           (spec.table ? tomlTableToJson(*spec.table) : "{\"type\":" + str(spec.type) + "}");
    first = false;
  }
  return out + "}}";
}

// ---- the listener ----

struct AdminListener::Probe {
  std::string cluster;
  std::string endpoint;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  Duration timeout{1000};
  int fd = -1;
  event* ev = nullptr;
  EndpointHealth health;

  ~Probe() { finish(false); }
  bool inFlight() const { return ev != nullptr; }
  void finish(bool reachable) {
    if (ev != nullptr) event_free(ev);
    ev = nullptr;
    if (fd >= 0) ::close(fd);
    fd = -1;
    health.probed = true;
    health.reachable = reachable;
  }
  static void onReady(evutil_socket_t fd, short what, void* self) {
    auto* p = static_cast<Probe*>(self);
    int err = 0;
    socklen_t len = sizeof err;
    bool ok = (what & EV_WRITE) && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    p->finish(ok);
  }
};

// A request answered once every worker has reported (or the deadline passed).
struct AdminListener::Gather {
  evhttp_request* req = nullptr;  // null once the client went away
  const char* type = "application/json";
  Render render;
  WorkerReport merged;
  std::vector<bool> replied;
  size_t pending = 0;
  std::unique_ptr<Timer> deadline;
};

AdminListener::AdminListener(std::vector<WorkerHandle> workers, AdminActions actions)
    : workers_(std::move(workers)), actions_(std::move(actions)) {}

AdminListener::~AdminListener() {
  stop();
  probe_timer_.reset();
  probes_.clear();
  gathers_.clear();
  if (http_ != nullptr) evhttp_free(http_);
}

bool AdminListener::start(SnapshotPtr snapshot, std::string* error) {
  snapshot_ = std::move(snapshot);
  const config::Config& config = snapshot_->config();
  const config::Admin& admin = config.admin;
  if (!admin.address) {
    *error = "admin: no address";
    return false;
  }
  const config::Address& address = *admin.address;
  bound_ = address.str();
  loopback_ = isLoopbackHost(address.host);
  std::string host = address.host;
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "*") host = "0.0.0.0";
  http_ = evhttp_new(dispatcher_.base());
  evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
  evhttp_set_gencb(http_, &AdminListener::onRequest, this);
  evhttp_bound_socket* bound = evhttp_bind_socket_with_handle(http_, host.c_str(), address.port);
  if (bound == nullptr) {
    *error = config.source + ": [admin] cannot listen on " + address.str() + ": " +
             std::strerror(errno);
    return false;
  }
  sockaddr_storage local;
  socklen_t len = sizeof local;
  char ip[INET6_ADDRSTRLEN] = {};
  if (getsockname(evhttp_bound_socket_get_fd(bound), reinterpret_cast<sockaddr*>(&local), &len) ==
      0) {
    bool v6 = local.ss_family == AF_INET6;
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&local);
    auto* in4 = reinterpret_cast<sockaddr_in*>(&local);
    port_ = ntohs(v6 ? in6->sin6_port : in4->sin_port);
    inet_ntop(local.ss_family, v6 ? static_cast<void*>(&in6->sin6_addr) : &in4->sin_addr, ip,
              sizeof ip);
  }
  access_ = AdminAccess(address.host, port_, ip);
  probe_timer_ = std::make_unique<Timer>(dispatcher_, [this] { probeAll(); });
  probe_timer_->arm(Duration(0));
  thread_ = std::thread([this] { dispatcher_.run(); });
  spdlog::info("admin listening on http://{}", address.str());
  return true;
}

void AdminListener::stop() {
  if (!thread_.joinable()) return;
  dispatcher_.exit();
  thread_.join();
}

bool AdminListener::canServe(const config::Config& next, std::string* error) const {
  if (loopback_ || !next.admin.token.empty()) return true;
  *error = next.source + ": [admin] token cannot be removed while the admin listener is bound to " +
           bound_ + ", which is not a loopback address (restart to change the admin address)";
  return false;
}

void AdminListener::setSnapshot(SnapshotPtr snapshot) {
  dispatcher_.post([this, snapshot = std::move(snapshot)]() mutable {
    snapshot_ = std::move(snapshot);
  });
}

// ---- gathering from workers ----

namespace {
// A worker that has not answered by then has ended its loop (after a drain) or is stuck.
constexpr Duration kGatherDeadline{1000};

const char* reasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

// Sends `body` with `status` and the content type.
void sendReply(evhttp_request* req, int status, const char* type, const std::string& body) {
  evkeyvalq* headers = evhttp_request_get_output_headers(req);
  evhttp_add_header(headers, "Content-Type", type);
  evhttp_add_header(headers, "Cache-Control", "no-store");
  evhttp_add_header(headers, "X-Content-Type-Options", "nosniff");
  evhttp_add_header(headers, "X-Frame-Options", "DENY");  // the dashboard's token form
  evbuffer* out = evbuffer_new();
  evbuffer_add(out, body.data(), body.size());
  evhttp_send_reply(req, status, reasonPhrase(status), out);
  evbuffer_free(out);
}

void onConnectionClosed(evhttp_connection*, void* gather_req) {
  *static_cast<evhttp_request**>(gather_req) = nullptr;  // the request is freed with it
}
}  // namespace

void AdminListener::gather(evhttp_request* req, const char* type, Render render) {
  uint64_t id = next_gather_++;
  auto g = std::make_unique<Gather>();
  g->req = req;
  g->type = type;
  g->render = std::move(render);
  g->replied.assign(workers_.size(), false);
  g->pending = workers_.size();
  g->deadline = std::make_unique<Timer>(dispatcher_, [this, id] { finishGather(id); });
  g->deadline->arm(kGatherDeadline);
  evhttp_connection_set_closecb(evhttp_request_get_connection(req), &onConnectionClosed, &g->req);
  gathers_[id] = std::move(g);
  for (size_t i = 0; i < workers_.size(); ++i) {
    workers_[i].report([this, id, i](WorkerReport report) {
      dispatcher_.post([this, id, i, report = std::move(report)]() mutable {
        onReport(id, i, std::move(report));
      });
    });
  }
  if (workers_.empty()) finishGather(id);
}

void AdminListener::onReport(uint64_t id, size_t worker, WorkerReport report) {
  auto it = gathers_.find(id);
  if (it == gathers_.end()) return;  // answered at the deadline already
  Gather& g = *it->second;
  g.merged.totals.merge(report.totals);
  for (auto& c : report.connections) g.merged.connections.push_back(std::move(c));
  g.replied[worker] = true;
  if (--g.pending == 0) finishGather(id);
}

std::unique_ptr<AdminListener::Gather> AdminListener::takeGather(uint64_t id) {
  auto it = gathers_.find(id);
  if (it == gathers_.end()) return nullptr;
  std::unique_ptr<Gather> g = std::move(it->second);
  gathers_.erase(it);
  if (g->req == nullptr) return nullptr;  // the client left
  evhttp_connection_set_closecb(evhttp_request_get_connection(g->req), nullptr, nullptr);
  return g;
}

void AdminListener::finishGather(uint64_t id) {
  std::unique_ptr<Gather> g = takeGather(id);
  if (!g) return;
  // Workers that did not answer write no more: their counters are read directly.
  for (size_t i = 0; i < workers_.size(); ++i) {
    if (!g->replied[i] && workers_[i].stats != nullptr) g->merged.totals.add(*workers_[i].stats);
  }
  for (const auto& [key, probe] : probes_) g->merged.totals.health[key] = probe->health;
  auto [status, body] = g->render(g->merged.totals, g->merged.connections);
  sendReply(g->req, status, g->type, body);
}

std::string renderConnectionsJson(std::vector<ConnectionInfo> connections, size_t limit) {
  std::sort(connections.begin(), connections.end(),
            [](const ConnectionInfo& a, const ConnectionInfo& b) { return a.age_us > b.age_us; });
  std::string out = "{\"total\":" + std::to_string(connections.size()) + ",\"connections\":[";
  for (size_t i = 0; i < connections.size() && i < limit; ++i) {
    const ConnectionInfo& c = connections[i];
    out += std::string(i ? "," : "") + "{\"route\":" + quoted(c.route) +
           ",\"cluster\":" + quoted(c.cluster) + ",\"client\":" + quoted(c.client) +
           ",\"user\":" + (c.user.empty() ? std::string("null") : quoted(c.user)) +
           ",\"age_ms\":" + std::to_string(c.age_us / 1000) +
           ",\"messages\":{\"to_upstream\":" + std::to_string(c.messages[0]) +
           ",\"to_client\":" + std::to_string(c.messages[1]) +
           "},\"bytes\":{\"to_upstream\":" + std::to_string(c.bytes[0]) +
           ",\"to_client\":" + std::to_string(c.bytes[1]) + "}}";
  }
  return out + "]}\n";
}

std::pair<int, std::string> AdminListener::readiness() const {
  std::vector<std::string> reasons;
  if (draining_.load()) reasons.push_back("draining");
  if (!accepting_.load()) reasons.push_back("listeners not accepting yet");
  for (const auto& [name, cluster] : snapshot_->config().clusters) {
    bool probed = false, reachable = false;
    for (const auto& ep : cluster.endpoints) {
      auto it = probes_.find({name, ep.str()});
      if (it == probes_.end()) continue;
      probed |= it->second->health.probed;
      reachable |= it->second->health.reachable;
    }
    if (!reachable) {
      reasons.push_back("cluster '" + name + "': " +
                        (probed ? "no endpoint reachable" : "endpoints not probed yet"));
    }
  }
  if (reasons.empty()) return {200, "{\"ready\":true}\n"};
  std::string body = "{\"ready\":false,\"reasons\":[";
  for (size_t i = 0; i < reasons.size(); ++i) body += (i ? "," : "") + quoted(reasons[i]);
  return {503, body + "]}\n"};
}

void AdminListener::probeAll() {
  probe_timer_->arm(kProbeInterval);
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Probe>> kept;
  for (const auto& [name, cluster] : snapshot_->config().clusters) {
    const ClusterRuntime* runtime = snapshot_->cluster(name);
    if (runtime == nullptr) continue;
    for (const Endpoint& ep : runtime->endpoints) {
      std::pair<std::string, std::string> key{name, ep.address.str()};
      auto it = probes_.find(key);
      std::unique_ptr<Probe> probe;
      if (it != probes_.end()) {
        probe = std::move(it->second);
      } else {
        probe = std::make_unique<Probe>();
        probe->cluster = name;
        probe->endpoint = key.second;
      }
      probe->addr = ep.sockaddr;
      probe->addr_len = ep.sockaddr_len;
      probe->timeout = std::min(cluster.connect_timeout, kProbeTimeoutMax);
      if (!probe->inFlight()) startProbe(*probe);
      kept[key] = std::move(probe);
    }
  }
  probes_ = std::move(kept);  // endpoints gone from the config go with their probes
}

void AdminListener::startProbe(Probe& probe) {
  probe.fd = socket(probe.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (probe.fd < 0) {
    probe.finish(false);
    return;
  }
  int rc = connect(probe.fd, reinterpret_cast<const sockaddr*>(&probe.addr), probe.addr_len);
  if (rc == 0) {
    probe.finish(true);
    return;
  }
  if (errno != EINPROGRESS) {
    probe.finish(false);
    return;
  }
  probe.ev = event_new(dispatcher_.base(), probe.fd, EV_WRITE, &Probe::onReady, &probe);
  timeval tv{static_cast<time_t>(probe.timeout.count() / 1000),
             static_cast<suseconds_t>((probe.timeout.count() % 1000) * 1000)};
  event_add(probe.ev, &tv);
}

// ---- requests ----

void AdminListener::onRequest(evhttp_request* req, void* self) {
  static_cast<AdminListener*>(self)->handle(req);
}

namespace {
constexpr const char* kJson = "application/json";
constexpr const char* kEndpoints =
    "[\"/\",\"/healthz\",\"/ready\",\"/stats\",\"/metrics\",\"/config\",\"/connections\","
    "\"POST /drain\",\"POST /reload\"]";

// ?limit=N, 100 by default.
size_t limitOf(evhttp_request* req) {
  const char* query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
  if (query == nullptr) return 100;
  evkeyvalq params;
  if (evhttp_parse_query_str(query, &params) != 0) return 100;
  size_t limit = 100;
  if (const char* v = evhttp_find_header(&params, "limit")) {
    char* end = nullptr;
    unsigned long n = std::strtoul(v, &end, 10);
    if (end != v && *end == '\0') limit = n;
  }
  evhttp_clear_headers(&params);
  return limit;
}
}  // namespace

void AdminListener::handle(evhttp_request* req) {
  const char* raw_path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
  std::string_view path = raw_path != nullptr ? raw_path : "/";
  bool dashboard = path == "/" || path == "/index.html";

  AdminAccess::Request request;
  request.http11 = req->major > 1 || (req->major == 1 && req->minor >= 1);
  const evkeyvalq* in = evhttp_request_get_input_headers(req);
  for (const evkeyval* h = in->tqh_first; h != nullptr; h = h->next.tqe_next) {
    if (evutil_ascii_strcasecmp(h->key, "Host") != 0) continue;
    if (request.host_headers++ == 0) request.host = h->value;
  }
  request.origin = evhttp_find_header(in, "Origin");
  request.authorization = evhttp_find_header(in, "Authorization");
  bool open = path == "/healthz" || path == "/ready";
  AdminAccess::Verdict verdict = access_.check(request, snapshot_->config().admin.token, open);
  if (verdict.status == 401) {
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                      "Bearer realm=\"wsbridge admin\"");
    spdlog::debug("admin {}: 401, missing or wrong bearer token", path);
    // The page holds no figures; it asks for the token and sends it with its own fetches.
    if (dashboard) {
      sendReply(req, 401, "text/html; charset=utf-8", std::string(kDashboardHtml));
    } else {
      sendReply(req, 401, kJson, "{\"error\":\"unauthorized\"}\n");
    }
    return;
  }
  if (verdict.status != 0) {
    spdlog::debug("admin {}: {}, {}", path, verdict.status, verdict.error);
    sendReply(req, verdict.status, kJson, "{\"error\":" + quoted(verdict.error) + "}\n");
    return;
  }

  bool post = evhttp_request_get_command(req) == EVHTTP_REQ_POST;
  bool post_path = path == "/drain" || path == "/reload";
  if (post != post_path) {
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", post ? "GET, HEAD" : "POST");
    sendReply(req, 405, kJson, "{\"error\":\"method not allowed\"}\n");
    return;
  }
  if (path == "/healthz") {
    sendReply(req, 200, "text/plain; charset=utf-8", "ok\n");
  } else if (path == "/ready") {
    auto [status, body] = readiness();
    // Open for probes; the reasons name clusters, so only the token holder reads them.
    if (!verdict.authorized) body = status == 200 ? "{\"ready\":true}\n" : "{\"ready\":false}\n";
    sendReply(req, status, kJson, body);
  } else if (path == "/stats") {
    gather(req, kJson, [](StatsTotals& totals, std::vector<ConnectionInfo>&) {
      return std::pair{200, renderStatsJson(totals) + "\n"};
    });
  } else if (path == "/metrics") {
    gather(req, "text/plain; version=0.0.4; charset=utf-8",
           [](StatsTotals& totals, std::vector<ConnectionInfo>&) {
             return std::pair{200, renderPrometheus(totals)};
           });
  } else if (path == "/connections") {
    size_t limit = limitOf(req);
    gather(req, kJson, [limit](StatsTotals&, std::vector<ConnectionInfo>& connections) {
      return std::pair{200, renderConnectionsJson(std::move(connections), limit)};
    });
  } else if (path == "/config") {
    sendReply(req, 200, kJson, renderConfigJson(snapshot_->config()) + "\n");
  } else if (dashboard) {
    sendReply(req, 200, "text/html; charset=utf-8", std::string(kDashboardHtml));
  } else if (path == "/drain") {
    spdlog::info("POST /drain: draining connections");
    draining_.store(true);
    actions_.drain();
    sendReply(req, 200, kJson, "{\"draining\":true}\n");
  } else if (path == "/reload") {
    postReload(req);
  } else {
    sendReply(req, 404, kJson,
              std::string("{\"error\":\"not found\",\"endpoints\":") + kEndpoints + "}\n");
  }
}

void AdminListener::postReload(evhttp_request* req) {
  if (draining_.load()) {
    sendReply(req, 503, kJson, "{\"reloaded\":false,\"errors\":[\"draining\"]}\n");
    return;
  }
  // Answered through a gather-like slot so a client that leaves does not leave a dangling request.
  uint64_t id = next_gather_++;
  auto g = std::make_unique<Gather>();
  g->req = req;
  evhttp_connection_set_closecb(evhttp_request_get_connection(req), &onConnectionClosed, &g->req);
  gathers_[id] = std::move(g);
  actions_.reload([this, id](std::vector<std::string> errors) {
    dispatcher_.post([this, id, errors = std::move(errors)] {
      std::unique_ptr<Gather> g = takeGather(id);
      if (!g) return;
      if (errors.empty()) {
        sendReply(g->req, 200, kJson, "{\"reloaded\":true}\n");
        return;
      }
      std::string body = "{\"reloaded\":false,\"errors\":[";
      for (size_t i = 0; i < errors.size(); ++i) body += (i ? "," : "") + quoted(errors[i]);
      sendReply(g->req, 400, kJson, body + "]}\n");
    });
  });
}

}  // namespace wsb::proxy
