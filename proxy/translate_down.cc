// Translate down: the HTTP front of Engine.IO sessions (handshakes, polling with keep-alive,
// websocket upgrades, requests handed to the worker owning a sid), and the Socket.IO v5 server
// logic that maps each connected namespace to one raw WebSocket on the cluster.
//
// Upstream WebSocket of a namespace: path = the route's namespace_paths[nsp], else the cluster's
// `path`, else the namespace itself ("/", "/admin"); query = the client's handshake query without
// the Engine.IO parameters (EIO, transport, sid, t, b64, j), then each top-level string, number
// or boolean of the CONNECT auth object as `key=value` (percent-encoded). The client's headers
// (hop-by-hop ones excepted), X-Forwarded-For/-Proto and the filters' forwarded claims go along.
#include "proxy/translate_down.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "codec/envelope.h"
#include "codec/socketio.h"
#include "filters/chain.h"
#include "proxy/eio_server.h"
#include "proxy/eio3_passthrough.h"
#include "proxy/eio_server_app.h"
#include "proxy/evbuffer_view.h"
#include "proxy/upstream.h"
#include "proxy/sio_inspector.h"
#include "proxy/worker.h"

namespace wsb::proxy {

namespace {

constexpr Duration kRequestTimeout{10000};
constexpr Duration kKeepAliveTimeout{60000};
constexpr size_t kReadLimit = 2 * 1024 * 1024;

std::atomic<uint64_t> next_poll_id{0};

std::string bracket(std::string_view args_json) {
  std::string out = "[";
  out.append(args_json);
  out += ']';
  return out;
}

std::string jsonError(std::string_view error) {
  return "{\"error\":\"" + http::jsonEscape(error) + "\"}";
}

void appendPercentEncoded(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
}

// `key=value` for each scalar at the top of the CONNECT auth object.
void appendAuthQuery(std::string& query, std::string_view auth_json, sio::JsonReader& reader) {
  if (auth_json.empty()) return;
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  if (reader.iterate(auth_json).get(doc) || doc.get_object().get(object)) return;
  for (auto field_result : object) {
    simdjson::ondemand::field field;
    std::string_view key_view;
    if (std::move(field_result).get(field) || field.unescaped_key().get(key_view)) return;
    std::string key(key_view);
    simdjson::ondemand::value value = field.value();
    simdjson::ondemand::json_type type;
    if (value.type().get(type)) return;
    std::string text;
    if (type == simdjson::ondemand::json_type::string) {
      std::string_view s;
      if (value.get_string().get(s)) return;
      text.assign(s);
    } else if (type == simdjson::ondemand::json_type::number ||
               type == simdjson::ondemand::json_type::boolean) {
      std::string_view token = value.raw_json_token();
      while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) {
        token.remove_suffix(1);
      }
      text.assign(token);
    } else {
      continue;  // objects and arrays have no query form
    }
    if (!query.empty()) query += '&';
    appendPercentEncoded(query, key);
    query += '=';
    appendPercentEncoded(query, text);
  }
}

// ---- the Socket.IO server logic of one Engine.IO session ---------------------------------------

// One namespace the client joined (or is joining) and its raw WebSocket.
struct NamespaceLink final : Deletable {
  std::string nsp;
  std::unique_ptr<UpstreamConnector> connector;
  std::unique_ptr<WsEndpoint> upstream;
  size_t endpoint = SIZE_MAX;
  bool ready = false;
  bool closing = false;          // left the namespace; waiting for the close handshake
  std::set<uint64_t> client_acks;               // ack ids the client asked for
  uint64_t next_ack = 0;                        // our ack ids toward the client
  std::map<uint64_t, uint64_t> upstream_acks;   // our id -> the upstream's envelope ack id
};

class TranslateDownSession final : public EioServerApp, public WsEndpointOwner {
 public:
  TranslateDownSession(Worker& worker, SnapshotPtr snapshot, const config::Route& route,
                       const ListenerRuntime& listener, http::Request handshake,
                       std::string client_ip)
      : EioServerApp(worker, std::move(snapshot), route, listener, std::move(handshake),
                     std::move(client_ip)),
        shape_(route.envelope == config::Envelope::Array ? envelope::Shape::Array
                                                         : envelope::Shape::Json) {
    EioSessionOptions options = sessionOptions();
    // socket.io-client 2.x speaks Socket.IO v4 over Engine.IO v3.
    if (options.version == eio::Version::V3) sio_version_ = sio::Version::V4;
    upstream_options_.max_message = route.max_message;
    eio_ = std::make_unique<EioSession>(worker.dispatcher(), worker.masks(), makeBase64Id(),
                                        options, *this);
  }

  ~TranslateDownSession() override {
    links_.clear();
    eio_.reset();
  }

  EioSession& eio() override { return *eio_; }

  // ---- EioApp ----

  void onEioMessage(std::string_view data, bool binary) override {
    onClientMessage(data, binary);
    // An upstream slower than its client: stop reading the client until it drains.
    for (auto& l : links_) {
      if (l->upstream && l->upstream->congested()) {
        eio_->pauseReading();
        return;
      }
    }
  }

  void onClientMessage(std::string_view data, bool binary) {
    if (binary) {
      switch (reassembler_.addAttachment(data)) {
        case sio::Reassembler::Status::Ready:
          onClientPacket(reassembler_.packet(), &reassembler_.attachments());
          reassembler_.reset();
          return;
        case sio::Reassembler::Status::NeedAttachment:
          return;
        case sio::Reassembler::Status::Error:
          parseError("unexpected binary message");
          return;
      }
      return;
    }
    sio::Packet packet;
    sio::DecodeError error = sio::decodePacket(data, &packet, {sio_version_});
    if (error != sio::DecodeError::None) {
      parseError(sio::describe(error));
      return;
    }
    switch (reassembler_.addPacket(packet)) {
      case sio::Reassembler::Status::Ready:
        onClientPacket(packet, nullptr);
        return;
      case sio::Reassembler::Status::NeedAttachment:
        return;
      case sio::Reassembler::Status::Error:
        parseError(sio::describe(reassembler_.error()));
        return;
    }
  }

  void onEioClose(std::string_view reason) override {
    if (close_info_.closed_by.empty()) {
      close_info_.code = ws::close_code::kNormal;
      close_info_.reason = std::string(reason);
      close_info_.closed_by = reason.find("client") != std::string_view::npos ||
                                      reason.find("transport") != std::string_view::npos ||
                                      reason.find("prematurely") != std::string_view::npos
                                  ? "client"
                                  : "wsbridge";
    }
    // The client is gone: every namespace's upstream closes normally.
    std::vector<NamespaceLink*> open;
    for (auto& link : links_) {
      if (!link->closing) open.push_back(link.get());
    }
    for (NamespaceLink* link : open) leave(*link, ws::close_code::kNormal, "client disconnected");
    countClosed();
    if (chain_) chain_->onClose(close_info_);
    maybeDelete();
  }

  void onEioFinished() override {
    eio_finished_ = true;
    maybeDelete();
  }

  // ---- filters::FilterCallbacks ----

  void notify(filters::Side toward, std::string_view notice) override {
    countFilterAction("notify");
    if (toward == filters::Side::Client) {
      // The rendering is an Engine.IO message ("42[...]"); the session adds the "4" itself.
      eio_->send(std::string_view(renderNoticeMessage(notice, "/")).substr(1));
      return;
    }
    for (auto& link : links_) {
      if (link->ready && !link->closing) link->upstream->sendMessage(ws::Opcode::Text, notice);
    }
  }

  void ackError(filters::Side toward, const filters::Event& event,
                std::string_view args_json) override {
    if (!event.ack) return;
    if (toward == filters::Side::Client) {
      eio_->send(std::string_view(renderAckMessage(event.nsp, *event.ack, args_json)).substr(1));
      return;
    }
    NamespaceLink* link = find(event.nsp);
    if (link == nullptr || !link->ready) return;
    std::string answer = envelope::renderAckAnswer(shape_, *event.ack, args_json);
    if (!answer.empty()) link->upstream->sendMessage(ws::Opcode::Text, answer);
  }

  void closeSession(uint16_t code, std::string_view reason) override {
    if (close_info_.closed_by.empty()) close_info_ = {code, std::string(reason), "wsbridge"};
    eio_->close(reason);
  }

  bool ping(filters::Side side) override {
    if (side != filters::Side::Upstream) return false;  // Engine.IO pings the client already
    bool sent = false;
    for (auto& link : links_) {
      if (link->ready && !link->closing) {
        link->upstream->sendPing();
        sent = true;
      }
    }
    return sent;
  }

  void pauseReading(filters::Side side, Duration delay) override {
    if (side != filters::Side::Upstream) return;  // polling clients cannot be paused
    countFilterAction("shape");
    for (auto& link : links_) {
      if (link->ready) link->upstream->pauseReading(WsEndpoint::kShaping);
    }
    if (!shape_timer_) {
      shape_timer_ = std::make_unique<proxy::Timer>(worker_.dispatcher(), [this] {
        for (auto& link : links_) {
          if (link->ready) link->upstream->resumeReading(WsEndpoint::kShaping);
        }
      });
    }
    shape_timer_->arm(delay);
  }

  // ---- WsEndpointOwner (the namespaces' upstream sockets) ----

  void onWsMessage(WsEndpoint& from, ws::Opcode opcode, evbuffer* payload) override {
    NamespaceLink* link = find(from);
    if (link == nullptr || link->closing || eio_->closed()) return;
    if (opcode == ws::Opcode::Binary) {
      onUpstreamBinary(*link, viewOf(payload));
    } else {
      onUpstreamText(*link, viewOf(payload));
    }
    // A client slower than its upstreams: stop reading them until it drains.
    if (eio_->congested()) {
      for (auto& l : links_) {
        if (l->upstream) l->upstream->pauseReading(WsEndpoint::kBackpressure);
      }
    }
  }

  void onEioDrained() override {
    for (auto& l : links_) {
      if (l->upstream) l->upstream->resumeReading(WsEndpoint::kBackpressure);
    }
  }

  void onWsCloseFrame(WsEndpoint& from, uint16_t code, std::string_view) override {
    NamespaceLink* link = find(from);
    if (link == nullptr) return;
    from.sendClose(code == ws::close_code::kNoStatus ? ws::close_code::kNormal : code, "");
    upstreamLost(*link);
  }

  void onWsGone(WsEndpoint& from, uint16_t, std::string_view reason) override {
    NamespaceLink* link = find(from);
    if (link == nullptr) return;
    spdlog::debug("translate down: upstream of {} lost: {}", link->nsp, reason);
    upstreamLost(*link);
  }

  // An upstream that had stopped taking the client's messages took them: read the client again.
  void onWsDrained(WsEndpoint&) override {
    for (auto& l : links_) {
      if (l->upstream && l->upstream->congested()) return;
    }
    eio_->resumeReading();
  }

  void onWsPong(WsEndpoint&, std::string_view) override {
    if (chain_) chain_->onPong(filters::Side::Upstream);
  }

  void onWsClosed(WsEndpoint& endpoint) override {
    NamespaceLink* link = find(endpoint);
    if (link == nullptr) return;
    upstreamLost(*link);
    release(*link);
  }

 private:
  // Drain: "io server disconnect" for every joined namespace, then the session closes.
  void drainSession() override {
    for (auto& link : links_) {
      if (!link->ready || link->closing) continue;
      std::string packet;
      sio::appendDisconnect(packet, link->nsp);
      eio_->send(packet);
    }
    closeSession(ws::close_code::kGoingAway, "server shutting down");
  }

  // Socket.IO v4 connects every client to "/" unasked.
  void onOpened() override {
    if (sio_version_ == sio::Version::V4) join("/", {});
    // socket.io's connectTimeout: a client that joins no namespace does not hold a session.
    connect_timer_ = std::make_unique<proxy::Timer>(worker_.dispatcher(), [this] {
      const bool joined = std::any_of(links_.begin(), links_.end(),
                                      [](const auto& link) { return link->ready; });
      if (!joined && !eio_->closed()) closeSession(ws::close_code::kPolicy, "connect timeout");
    });
    connect_timer_->arm(route_.connect_timeout);
  }

  // A Socket.IO protocol violation: the ref server closes the whole connection.
  void parseError(std::string_view why) {
    noteParseError(false, why);
    invalid(why);
  }

  void invalid(std::string_view why) {
    spdlog::debug("translate down {}: invalid packet from the client: {}", eio_->sid(), why);
    closeSession(ws::close_code::kProtocolError, why);
  }

  NamespaceLink* find(std::string_view nsp) {
    for (auto& link : links_) {
      if (!link->closing && link->nsp == nsp) return link.get();
    }
    return nullptr;
  }

  NamespaceLink* find(const WsEndpoint& endpoint) {
    for (auto& link : links_) {
      if (link->upstream.get() == &endpoint) return link.get();
    }
    return nullptr;
  }

  void sendPacket(const std::string& packet, const std::vector<std::string_view>& attachments) {
    eio_->send(packet);
    for (std::string_view a : attachments) eio_->sendBinary(a);
  }

  bool passFilters(filters::Direction direction, std::string_view nsp, std::string_view name,
                   std::optional<uint64_t> ack, size_t size, std::string_view args_array) {
    if (!chain_ || chain_->empty()) return true;
    filters::Event event;
    event.direction = direction;
    event.nsp = nsp;
    event.name = name;
    event.ack = ack;
    event.size = size;
    event.args = [args_array]() { return args_array; };
    return chain_->onEvent(event) == filters::Status::Continue;
  }

  // ---- client -> upstream ----

  void onClientPacket(const sio::Packet& packet, const std::vector<std::string>* attachments) {
    NamespaceLink* link = find(packet.nsp);
    switch (packet.type) {
      case sio::PacketType::Connect:
        if (sio_version_ == sio::Version::V4) {
          connectV4(packet.nsp);
          return;
        }
        if (link != nullptr) {
          invalid("CONNECT for a namespace already joined");
          return;
        }
        join(std::string(packet.nsp), packet.data);
        return;
      case sio::PacketType::Disconnect:
        if (link != nullptr) leave(*link, ws::close_code::kNormal, "client disconnected");
        return;
      case sio::PacketType::ConnectError:
        invalid("CONNECT_ERROR from a client");
        return;
      default:
        break;
    }
    if (link == nullptr || !link->ready) {
      invalid("packet for a namespace not joined");
      return;
    }
    std::string args = bracket(packet.args_json);
    if (attachments != nullptr) {
      bool one_binary_arg = attachments->size() == 1 && packet.arg_count == 1 && !packet.id &&
                            packet.type == sio::PacketType::BinaryEvent;
      if (one_binary_arg && !route_.binary_event.empty()) {
        auto name = sio::eventName(packet, reader_);
        if (name && *name == route_.binary_event) {
          events_.count(*name);
          if (!passFilters(filters::Direction::ToUpstream, link->nsp, *name, std::nullopt,
                           (*attachments)[0].size(), args)) {
            return;
          }
          link->upstream->sendMessage(ws::Opcode::Binary, (*attachments)[0]);
          return;
        }
      }
      std::string inlined, error;
      if (!envelope::inlineAttachments(args, *attachments, &inlined, &error)) {
        invalid(error);
        return;
      }
      args = std::move(inlined);
    }
    if (packet.type == sio::PacketType::Event || packet.type == sio::PacketType::BinaryEvent) {
      auto name = sio::eventName(packet, reader_);
      if (!name) {
        invalid("event name");
        return;
      }
      std::string event(*name);
      events_.count(event);
      if (!passFilters(filters::Direction::ToUpstream, link->nsp, event, packet.id,
                       packet.raw.size(), args)) {
        return;
      }
      // The client's ack id travels as is: each namespace has its own upstream socket.
      if (packet.id) link->client_acks.insert(*packet.id);
      link->upstream->sendMessage(ws::Opcode::Text,
                                  envelope::renderEvent(shape_, event, args, packet.id));
      return;
    }
    // ACK / BINARY_ACK: the answer to an event the upstream asked an ack for.
    if (!packet.id) return;
    auto it = link->upstream_acks.find(*packet.id);
    if (it == link->upstream_acks.end()) return;
    uint64_t upstream_id = it->second;
    link->upstream_acks.erase(it);
    std::string answer = envelope::renderAckAnswer(shape_, upstream_id, args);
    if (!answer.empty()) link->upstream->sendMessage(ws::Opcode::Text, answer);
  }

  // A v4 CONNECT carries its auth as the namespace's query ("/admin?token=1"); "/" is joined
  // already.
  void connectV4(std::string_view nsp_and_query) {
    std::string_view nsp, query;
    sio::splitNamespace(nsp_and_query, &nsp, &query);
    if (find(nsp) != nullptr) {
      if (nsp != "/") invalid("CONNECT for a namespace already joined");
      return;
    }
    std::string auth;
    if (!query.empty()) sio::appendQueryAsJson(auth, query);
    join(std::string(nsp), auth);
  }

  std::string upstreamTarget(const std::string& nsp, std::string_view auth_json) {
    std::string target;
    auto path = route_.namespace_paths.find(nsp);
    if (path != route_.namespace_paths.end()) {
      target = path->second;
    } else if (cluster_->config->path) {
      target = *cluster_->config->path;
    } else {
      target = nsp;
    }
    std::string query = appQuery(handshake_request_.query);
    appendAuthQuery(query, auth_json, reader_);
    if (!query.empty()) target += (target.find('?') == std::string::npos ? "?" : "&") + query;
    return target;
  }

  void join(std::string nsp, std::string_view auth_json) {
    size_t open = std::count_if(links_.begin(), links_.end(), [](const auto& l) {
      return !l->closing;
    });
    if (open >= route_.max_namespaces) {
      // Nothing is opened upstream: one request must not fan out into connections.
      if (!too_many_logged_) {
        too_many_logged_ = true;
        spdlog::info("{}: translate down: namespace {} refused: over max_namespaces ({})",
                     client_ip_, nsp, route_.max_namespaces);
      }
      std::string packet;
      sio::appendConnectError(packet, sio_version_, nsp, "too many namespaces");
      eio_->send(packet);
      return;
    }
    auto link = std::make_unique<NamespaceLink>();
    link->nsp = nsp;
    NamespaceLink* l = link.get();
    links_.push_back(std::move(link));
    if (cluster_ == nullptr || cluster_->endpoints.empty()) {
      refuse(*l, "no upstream available");
      return;
    }
    l->connector = std::make_unique<UpstreamConnector>(
        worker_, *cluster_, endpointOrder(worker_, route_, *cluster_, client_ip_, attributes_),
        upstreamTarget(nsp, auth_json),
        forwardedHeaders(handshake_request_, client_ip_, listener_.tls != nullptr, upstream_headers_,
                         snapshot_->ownedHeadersOf(route_)),
        [this, l](bufferevent* bev, size_t endpoint, std::string error) {
          const int refused = l->connector->refusedStatus();
          worker_.dispatcher().deferDelete(std::move(l->connector));
          if (bev == nullptr) {
            // The client hears what a Socket.IO server would say; the log keeps the details
            // (the upstream's address is none of the client's business).
            spdlog::info("{}: translate down: namespace {}: upstream {}", client_ip_,
                         http::redactTarget(l->nsp), error);
            refuse(*l, refused == 404 ? "Invalid namespace" : "upstream unavailable");
            return;
          }
          l->endpoint = endpoint;
          WsEndpointOptions options = upstream_options_;
          options.upstream_label = &cluster_->endpoints[endpoint].label;
          l->upstream = std::make_unique<WsEndpoint>(worker_.dispatcher(), bev,
                                                     WsEndpoint::Side::Upstream, options,
                                                     worker_.masks(), *this);
          l->ready = true;
          std::string reply;
          sio::appendConnectReply(reply, sio_version_, l->nsp, makeBase64Id());
          eio_->send(reply);
          l->upstream->start();
        });
    l->connector->start();
  }

  void refuse(NamespaceLink& link, std::string message) {
    spdlog::info("{}: translate down: namespace {} refused: {}", client_ip_,
                 http::redactTarget(link.nsp), message);
    std::string packet;
    sio::appendConnectError(packet, sio_version_, link.nsp, message);
    eio_->send(packet);
    link.closing = true;
    release(link);
  }

  // The client leaves the namespace (or the session ends): close 1000 upstream.
  void leave(NamespaceLink& link, uint16_t code, std::string_view reason) {
    link.closing = true;
    if (link.upstream) {
      link.upstream->sendClose(code, reason);
      if (link.upstream->finished()) release(link);
    } else {
      release(link);  // still connecting: just drop the attempt
    }
  }

  // The upstream socket of a joined namespace closed or broke: DISCONNECT that namespace.
  void upstreamLost(NamespaceLink& link) {
    if (link.closing) return;
    link.closing = true;
    std::string packet;
    sio::appendDisconnect(packet, link.nsp);
    eio_->send(packet);
  }

  // Frees the link (at the end of this loop iteration: we may be inside its socket's callback).
  void release(NamespaceLink& link) {
    auto it = std::find_if(links_.begin(), links_.end(),
                           [&](const auto& l) { return l.get() == &link; });
    if (it == links_.end()) return;
    if (link.upstream && link.endpoint != SIZE_MAX) {
      auto& active = worker_.balance(route_.cluster).active;
      if (link.endpoint < active.size() && active[link.endpoint] > 0) active[link.endpoint]--;
    }
    worker_.dispatcher().deferDelete(std::move(*it));
    links_.erase(it);
    maybeDelete();
  }

  void maybeDelete() {
    if (!eio_finished_ || !links_.empty() || discarded_) return;
    discarded_ = true;
    worker_.dispatcher().deferDelete(std::unique_ptr<Deletable>(this));
  }

  // ---- upstream -> client ----

  void onUpstreamBinary(NamespaceLink& link, std::string_view bytes) {
    if (route_.binary_event.empty()) {
      spdlog::debug("translate down: binary message dropped (no binary_event on the route)");
      return;
    }
    events_.count(route_.binary_event);
    if (!passFilters(filters::Direction::ToClient, link.nsp, route_.binary_event, std::nullopt,
                     bytes.size(), "[{\"_placeholder\":true,\"num\":0}]")) {
      return;
    }
    std::string packet;
    std::vector<std::string_view> attachments;
    sio::Arg arg{bytes, true};
    sio::appendEvent(packet, link.nsp, route_.binary_event, std::span<const sio::Arg>(&arg, 1),
                     std::nullopt, &attachments);
    sendPacket(packet, attachments);
  }

  void onUpstreamText(NamespaceLink& link, std::string_view text) {
    envelope::ParseOptions options;
    options.shape = shape_;
    envelope::Message message;
    std::string error;
    if (envelope::parse(text, options, &message, &error) != envelope::ParseStatus::Ok) {
      // Not an envelope (plain text, or JSON of another shape): the route's text event.
      message = {};
      message.event = route_.text_event;
      message.args = envelope::textAsArgs(text);
    }
    std::string args;
    std::vector<std::string> attachments;
    if (!envelope::extractAttachments(message.args, &args, &attachments, &error)) {
      spdlog::debug("translate down: upstream message dropped: {}", error);
      return;
    }
    std::vector<std::string_view> views(attachments.begin(), attachments.end());
    std::string packet;
    if (message.kind == envelope::Message::Kind::AckAnswer) {
      if (link.client_acks.erase(*message.ack) == 0) return;  // not asked, or answered already
      if (!passFilters(filters::Direction::ToClient, link.nsp, {}, message.ack, text.size(),
                       args)) {
        return;
      }
      if (!attachments.empty()) packet += '6' + std::to_string(attachments.size()) + '-';
      else packet += '3';
      if (link.nsp != "/") packet += link.nsp + ",";
      packet += std::to_string(*message.ack);
      packet += args;
      sendPacket(packet, views);
      return;
    }
    events_.count(message.event);
    if (!passFilters(filters::Direction::ToClient, link.nsp, message.event, message.ack,
                     text.size(), args)) {
      return;
    }
    std::optional<uint64_t> id;
    if (message.ack) {
      id = link.next_ack++;
      link.upstream_acks[*id] = *message.ack;
    }
    sio::appendEventJson(packet, link.nsp, message.event, args, id);
    if (!attachments.empty()) {
      // EVENT -> BINARY_EVENT with the attachment count: "2..." becomes "5N-...".
      packet = '5' + std::to_string(attachments.size()) + '-' + packet.substr(1);
    }
    sendPacket(packet, views);
  }

  envelope::Shape shape_;
  WsEndpointOptions upstream_options_;
  std::unique_ptr<EioSession> eio_;
  std::vector<std::unique_ptr<NamespaceLink>> links_;
  std::unique_ptr<proxy::Timer> shape_timer_;
  std::unique_ptr<proxy::Timer> connect_timer_;

  sio::Version sio_version_ = sio::Version::V5;
  sio::JsonReader reader_;
  sio::Reassembler reassembler_;
  bool eio_finished_ = false;
  bool too_many_logged_ = false;  // max_namespaces refusals are logged once per session
};

// ---- the HTTP front ----------------------------------------------------------------------------

// One client TCP connection: Engine.IO requests one after another (keep-alive), until one becomes
// a websocket and leaves with the socket. Polling requests of a session owned by another worker
// are posted there, and the answer is posted back.
class EioConnection final : public Deletable {
 public:
  // What a responder on another thread holds: cleared when the connection goes.
  struct Handle {
    EioConnection* connection;
  };

  EioConnection(Worker& worker, SnapshotPtr snapshot, const config::Route& route,
                const ListenerRuntime& listener, bufferevent* bev, std::string client_ip,
                uint16_t client_port)
      : worker_(worker),
        snapshot_(std::move(snapshot)),
        route_(route),
        listener_(listener),
        bev_(bev),
        client_ip_(std::move(client_ip)),
        client_port_(client_port),
        handle_(std::make_shared<Handle>(Handle{this})),
        timer_(worker.dispatcher(), [this] { onTimeout(); }),
        parser_(limits(route)) {
    bufferevent_setcb(bev_, &EioConnection::onRead, &EioConnection::onWrite,
                      &EioConnection::onEvent, this);
    bufferevent_setwatermark(bev_, EV_READ, 0, kReadLimit);
    bufferevent_setwatermark(bev_, EV_WRITE, 0, 0);
    LiveObjects::instance().add(&worker.dispatcher(), this, [this] {
      if (!waiting_) destroy();  // idle keep-alive; a held GET ends with its session
    });
  }

  ~EioConnection() override {
    LiveObjects::instance().remove(this);
    handle_->connection = nullptr;
    if (bev_ != nullptr) bufferevent_free(bev_);
  }

  void handle(http::Request request) {
    request_ = std::move(request);
    dispatch();
  }

 private:
  static http::Limits limits(const config::Route& route) {
    http::Limits l;
    l.max_body = std::max<size_t>(l.max_body, route.max_payload + 1024);
    return l;
  }

  static void onRead(bufferevent*, void* self) { static_cast<EioConnection*>(self)->read(); }

  static void onWrite(bufferevent*, void* self) {
    auto* c = static_cast<EioConnection*>(self);
    if (c->close_after_write_ && evbuffer_get_length(bufferevent_get_output(c->bev_)) == 0) {
      c->destroy();
    }
  }

  static void onEvent(bufferevent*, short what, void* self) {
    auto* c = static_cast<EioConnection*>(self);
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) c->gone();
  }

  void onTimeout() {
    if (waiting_) return;  // a held GET ends with the session's ping at the latest
    destroy();
  }

  void gone() {
    if (waiting_ && !held_sid_.empty()) {
      // A GET aborted by the client closes its session, as the ref server does.
      std::string sid = held_sid_;
      uint64_t id = generation_;
      withSession(sid, [sid, id](EioSession* session) {
        if (session != nullptr) session->pollAborted(id);
      });
    }
    destroy();
  }

  void destroy() {
    if (destroyed_) return;
    destroyed_ = true;
    timer_.cancel();
    if (bev_ != nullptr) {
      bufferevent_free(bev_);
      bev_ = nullptr;
    }
    worker_.dispatcher().deferDelete(std::unique_ptr<Deletable>(this));
  }

  // Runs `fn` with the session on its owner's thread (null when it is unknown there).
  void withSession(const std::string& sid, std::function<void(EioSession*)> fn) {
    Dispatcher* owner = nullptr;
    EioSession* session = nullptr;
    if (!EioRegistry::instance().find(sid, &worker_.dispatcher(), &owner, &session)) {
      fn(nullptr);
      return;
    }
    if (session != nullptr) {
      fn(session);
      return;
    }
    spdlog::debug("eio {}: request handed to the worker owning the session", sid);
    owner->post([sid, owner, fn = std::move(fn)] {
      Dispatcher* again = nullptr;
      EioSession* s = nullptr;
      EioRegistry::instance().find(sid, owner, &again, &s);
      fn(s);
    });
  }

  void read() {
    if (waiting_ || destroyed_) return;
    evbuffer* in = bufferevent_get_input(bev_);
    size_t len = evbuffer_get_length(in);
    if (len == 0) return;
    const char* data = reinterpret_cast<const char*>(evbuffer_pullup(in, -1));
    evbuffer_drain(in, parser_.feed(data, len));
    switch (parser_.state()) {
      case http::ParseState::NeedMore:
        timer_.arm(kRequestTimeout);
        return;
      case http::ParseState::Error: {
        int status = parser_.errorStatus() ? parser_.errorStatus() : 400;
        respond(http::errorResponse(status, jsonError(parser_.errorReason())), false);
        return;
      }
      case http::ParseState::Done:
        request_ = std::move(parser_.request());
        dispatch();
        return;
    }
  }

  void dispatch() {
    timer_.cancel();
    bufferevent_disable(bev_, EV_READ);
    generation_ = next_poll_id.fetch_add(1) + 1;  // unique process-wide: it names held GETs
    waiting_ = true;
    held_sid_.clear();
    const http::Request& req = request_;
    bool keep_alive = req.keep_alive;
    http::Headers cors = corsHeaders(route_.cors_origins, req);
    if (req.method == "OPTIONS") {  // CORS preflight
      if (!cors.empty()) {
        cors.push_back({"Access-Control-Allow-Methods", "GET, POST"});
        const std::string* asked = req.header("access-control-request-headers");
        cors.push_back({"Access-Control-Allow-Headers", asked ? *asked : "Content-Type"});
      }
      http::Response res;
      res.status = 204;
      res.headers = std::move(cors);
      res.headers.push_back({"Connection", keep_alive ? "keep-alive" : "close"});
      respond(http::serializeResponse(res), keep_alive);
      return;
    }
    EioRequest eio = checkEioRequest(req, route_.transports, route_.allow_eio3);
    if (eio.error != nullptr) {
      spdlog::debug("{}:{}: {} {} -> {} {}", client_ip_, client_port_, req.method,
                    http::redactTarget(req.target), eio.error->code, eio.error->message);
      respond(eioErrorResponse(*eio.error, eio.upgrade, keep_alive, cors),
              keep_alive && !eio.upgrade);
      return;
    }
    if (eio.sid.empty()) {
      handshake(eio, std::move(cors));
    } else if (eio.upgrade) {
      upgradeSession(eio);
    } else {
      poll(eio, std::move(cors));
    }
  }

  void handshake(const EioRequest& eio, http::Headers cors) {
    if (eio.upgrade) {
      http::UpgradeCheck check = http::checkWebSocketUpgrade(request_);
      if (!check.ok()) {
        respond(eioErrorResponse(eio::server_error::kBadRequest, true, false), false);
        return;
      }
    }
    const ClusterRuntime* cluster = snapshot_->cluster(route_.cluster);
    const bool passthrough =
        cluster != nullptr && cluster->config->protocol != config::Protocol::WebSocket;
    if (passthrough && cluster->config->protocol == config::Protocol::EngineIO) {
      // The v3 adapter speaks Socket.IO to the upstream; a plain engine.io server has none.
      respond(eioErrorResponse(eio::server_error::kUnsupportedProtocolVersion, eio.upgrade, false),
              false);
      return;
    }
    if (passthrough && eio.version != eio::Version::V3) {
      // Only v3 clients of a pass-through route are served here (see Session).
      respond(eioErrorResponse(eio::server_error::kUnsupportedProtocolVersion, eio.upgrade, false),
              false);
      return;
    }
    EioServerApp* session =
        passthrough ? makeEio3Passthrough(worker_, snapshot_, route_, listener_, request_,
                                          client_ip_).release()
                    : new TranslateDownSession(worker_, snapshot_, route_, listener_, request_,
                                               client_ip_);
    std::weak_ptr<Handle> weak = handle_;
    bool websocket = eio.upgrade;
    session->admit([weak, session, websocket, cors = std::move(cors)](std::string rejection) {
      auto handle = weak.lock();
      EioConnection* self = handle ? handle->connection : nullptr;
      if (self == nullptr || self->destroyed_) {
        session->discard();
        return;
      }
      if (!rejection.empty()) {
        session->discard();
        self->respond(std::move(rejection), false);
        return;
      }
      if (websocket) {
        bufferevent* bev = self->takeOver();
        session->eio().openWebSocket(bev);
      } else {
        self->respond(session->eio().openPolling(self->request_.keep_alive, cors),
                      self->request_.keep_alive);
      }
      session->opened();
    });
  }

  // Writes the 101 and gives the socket away; this connection ends.
  bufferevent* takeOver() {
    http::Response res;
    res.status = 101;
    res.headers.push_back({"Upgrade", "websocket"});
    res.headers.push_back({"Connection", "Upgrade"});
    res.headers.push_back(
        {"Sec-WebSocket-Accept", http::computeAcceptKey(*request_.header("sec-websocket-key"))});
    std::string bytes = http::serializeResponse(res);
    bufferevent_write(bev_, bytes.data(), bytes.size());
    bufferevent* bev = bev_;
    bev_ = nullptr;
    bufferevent_setcb(bev, nullptr, nullptr, nullptr, nullptr);
    destroy();
    return bev;
  }

  void upgradeSession(const EioRequest& eio) {
    Dispatcher* owner = nullptr;
    EioSession* session = nullptr;
    bool known = EioRegistry::instance().find(eio.sid, &worker_.dispatcher(), &owner, &session);
    http::UpgradeCheck check = http::checkWebSocketUpgrade(request_);
    if (!known || !check.ok()) {
      const auto& error = known ? eio::server_error::kBadRequest
                                : eio::server_error::kSessionIdUnknown;
      respond(eioErrorResponse(error, true, false), false);
      return;
    }
    if (session == nullptr) {
      // The session lives on another worker's loop, and a socket cannot follow it there: the
      // client keeps polling (its upgrade probe fails quietly).
      spdlog::debug("{}:{}: upgrade of {} refused: session owned by another worker", client_ip_,
                    client_port_, eio.sid);
      respond(eioErrorResponse(eio::server_error::kBadRequest, true, false), false);
      return;
    }
    session->attachWebSocket(takeOver());
  }

  void poll(const EioRequest& eio, http::Headers cors) {
    if (eio.transport != config::Transport::Polling) {
      respond(eioErrorResponse(eio::server_error::kBadRequest, false, request_.keep_alive, cors),
              request_.keep_alive);
      return;
    }
    held_sid_ = eio.sid;
    // Watch the connection while the poll is held: a client giving up on it (EOF) closes the
    // session, as the ref server does. read() leaves pipelined bytes alone until the answer;
    // the read watermark bounds them.
    bufferevent_enable(bev_, EV_READ);
    std::weak_ptr<Handle> weak = handle_;
    Dispatcher* here = &worker_.dispatcher();
    std::thread::id thread = thread_;
    uint64_t generation = generation_;
    bool keep_alive = request_.keep_alive;
    // Runs on the session's thread; only our own thread touches this connection.
    PollResponder responder = [weak, here, thread, generation, keep_alive](std::string response) {
      auto deliver = [weak, generation, keep_alive, response = std::move(response)]() mutable {
        auto handle = weak.lock();
        if (!handle || handle->connection == nullptr) return;
        handle->connection->answered(generation, std::move(response), keep_alive);
      };
      if (std::this_thread::get_id() == thread) {
        deliver();
      } else {
        here->post(std::move(deliver));
      }
    };
    auto req = std::make_shared<http::Request>(request_);
    auto shared_cors = std::make_shared<http::Headers>(std::move(cors));
    withSession(eio.sid, [req, shared_cors, generation, responder](EioSession* session) {
      if (session == nullptr) {
        responder(eioErrorResponse(eio::server_error::kSessionIdUnknown, false, req->keep_alive,
                                   *shared_cors));
        return;
      }
      session->handlePoll(*req, *shared_cors, generation, responder);
    });
  }

  void answered(uint64_t generation, std::string response, bool keep_alive) {
    if (destroyed_ || generation != generation_ || !waiting_) return;
    respond(std::move(response), keep_alive);
  }

  void respond(std::string bytes, bool keep_alive) {
    if (destroyed_ || bev_ == nullptr) return;
    waiting_ = false;
    held_sid_.clear();
    bufferevent_write(bev_, bytes.data(), bytes.size());
    bufferevent_enable(bev_, EV_WRITE);
    if (!keep_alive) {
      close_after_write_ = true;
      bufferevent_disable(bev_, EV_READ);
      timer_.arm(kRequestTimeout);
      return;
    }
    // Keep-alive: the next request may be in the buffer already. Read it from a fresh loop
    // iteration so a session never sees a request while it is still handling the last one.
    parser_.reset();
    timer_.arm(kKeepAliveTimeout);
    bufferevent_enable(bev_, EV_READ);
    if (evbuffer_get_length(bufferevent_get_input(bev_)) > 0) {
      std::weak_ptr<Handle> weak = handle_;
      worker_.dispatcher().post([weak] {
        auto handle = weak.lock();
        if (handle && handle->connection != nullptr) handle->connection->read();
      });
    }
  }

  Worker& worker_;
  SnapshotPtr snapshot_;
  const config::Route& route_;
  const ListenerRuntime& listener_;
  bufferevent* bev_;
  std::string client_ip_;
  uint16_t client_port_;
  std::shared_ptr<Handle> handle_;
  Timer timer_;
  http::RequestParser parser_;
  http::Request request_;
  std::thread::id thread_ = std::this_thread::get_id();
  uint64_t generation_ = 0;  // the request being answered
  std::string held_sid_;     // the sid of a polling request waiting for its answer
  bool waiting_ = false;     // a request is being answered: read nothing more
  bool close_after_write_ = false;
  bool destroyed_ = false;
};

}  // namespace

void drainTranslateDown(Worker& worker) {
  for (auto& drain : LiveObjects::instance().drainsOf(&worker.dispatcher())) drain();
}

void startTranslateDown(Worker& worker, SnapshotPtr snapshot, const config::Route& route,
                        const ListenerRuntime& listener, bufferevent* client,
                        http::Request request, std::string client_ip, uint16_t client_port) {
  auto* connection = new EioConnection(worker, std::move(snapshot), route, listener, client,
                                       std::move(client_ip), client_port);
  connection->handle(std::move(request));
}

}  // namespace wsb::proxy
