// Eio3Passthrough: an Engine.IO v3 session toward the client, one Socket.IO v5 websocket upstream.
#include "proxy/eio3_passthrough.h"

#include <event2/buffer.h>
#include <spdlog/spdlog.h>

#include "codec/engineio.h"
#include "codec/socketio.h"
#include "proxy/evbuffer_view.h"
#include "proxy/sio_inspector.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"
#include "proxy/ws_endpoint.h"

namespace wsb::proxy {

namespace {

class Eio3Passthrough final : public EioServerApp, public WsEndpointOwner {
 public:
  using EioServerApp::EioServerApp;

  ~Eio3Passthrough() override {
    upstream_.reset();
    eio_.reset();
  }

  EioSession& eio() override { return *eio_; }

  // ---- EioApp: the client ----

  void onEioMessage(std::string_view data, bool binary) override {
    if (upstream_ == nullptr || upstream_->finished() || failed_) return;
    if (binary) {
      switch (to_upstream_.onBinary()) {
        case SioInspector::Verdict::Invalid:
          parseError(false, to_upstream_.error());
          return;
        case SioInspector::Verdict::Drop:
          return;
        case SioInspector::Verdict::Forward:
          upstream_->sendMessage(ws::Opcode::Binary, data);
          break;
      }
    } else {
      std::string_view packet = data;
      std::optional<std::string> connect;  // only a CONNECT is rewritten, others pass as they are
      if (!packet.empty() && packet[0] == '0') {
        connect = connectToSioV5(packet);
        if (!connect) {
          parseError(false, "invalid CONNECT packet");
          return;
        }
        if (connect->empty()) return;  // "/" is connected already
        packet = *connect;
      }
      if (!inspectFromClient(packet)) return;
      std::string message;
      message.reserve(packet.size() + 1);
      message.push_back('4');
      message.append(packet);
      upstream_->sendMessage(ws::Opcode::Text, message);
    }
    if (upstream_->congested()) eio_->pauseReading();
  }

  void onEioClose(std::string_view reason) override {
    if (close_info_.closed_by.empty()) {
      close_info_ = {ws::close_code::kNormal, std::string(reason), "client"};
    }
    if (upstream_ && !upstream_->finished() && !upstream_->closeSent()) {
      upstream_->sendClose(ws::close_code::kNormal, "client disconnected");
    }
    countClosed();
    if (chain_) chain_->onClose(close_info_);
    maybeDelete();
  }

  void onEioFinished() override {
    eio_finished_ = true;
    maybeDelete();
  }

  void onEioDrained() override {
    if (upstream_) upstream_->resumeReading(WsEndpoint::kBackpressure);
  }

  // ---- filters::FilterCallbacks (the rest is EioServerApp's) ----

  void notify(filters::Side toward, std::string_view notice) override {
    countFilterAction("notify");
    std::string message = renderNoticeMessage(notice, "/");  // "42[...]"
    if (toward == filters::Side::Client) {
      if (eio_) eio_->send(std::string_view(message).substr(1));
    } else if (upstream_ && !upstream_->finished()) {
      upstream_->sendMessage(ws::Opcode::Text, message);
    }
  }

  void ackError(filters::Side toward, const filters::Event& event,
                std::string_view args_json) override {
    if (!event.ack) return;
    std::string message = renderAckMessage(event.nsp, *event.ack, args_json);  // "43..."
    if (toward == filters::Side::Client) {
      if (eio_) eio_->send(std::string_view(message).substr(1));
    } else if (upstream_ && !upstream_->finished()) {
      upstream_->sendMessage(ws::Opcode::Text, message);
    }
  }

  void closeSession(uint16_t code, std::string_view reason) override {
    if (close_info_.closed_by.empty()) close_info_ = {code, std::string(reason), "wsbridge"};
    if (eio_) eio_->close(reason);
    if (upstream_ && !upstream_->finished() && !upstream_->closeSent()) {
      upstream_->sendClose(ws::close_code::kGoingAway, reason);
    }
  }

  bool ping(filters::Side side) override {
    if (side == filters::Side::Client || !upstream_ || upstream_->finished()) return false;
    upstream_->sendPing();
    return true;
  }

  void pauseReading(filters::Side side, Duration delay) override {
    if (side != filters::Side::Upstream || !upstream_) return;  // polling cannot be paused
    countFilterAction("shape");
    upstream_->pauseReading(WsEndpoint::kShaping);
    if (!shape_timer_) {
      shape_timer_ = std::make_unique<proxy::Timer>(worker_.dispatcher(), [this] {
        if (upstream_) upstream_->resumeReading(WsEndpoint::kShaping);
      });
    }
    shape_timer_->arm(delay);
  }

  // ---- WsEndpointOwner: the upstream ----

  void onWsMessage(WsEndpoint&, ws::Opcode opcode, evbuffer* payload) override {
    if (failed_) return;
    if (opcode == ws::Opcode::Binary) {
      if (eio_ == nullptr) return;
      switch (to_client_.onBinary()) {
        case SioInspector::Verdict::Invalid:
          parseError(true, to_client_.error());
          return;
        case SioInspector::Verdict::Drop:
          return;
        case SioInspector::Verdict::Forward:
          break;
      }
      eio_->sendBinary(viewOf(payload));
    } else {
      onUpstreamText(viewOf(payload));
    }
    // A client slower than its upstream: stop reading the upstream until it drains.
    if (eio_ && eio_->congested()) upstream_->pauseReading(WsEndpoint::kBackpressure);
  }

  void onWsCloseFrame(WsEndpoint& from, uint16_t code, std::string_view reason) override {
    from.sendClose(code == ws::close_code::kNoStatus ? ws::close_code::kNormal : code, "");
    upstreamLost(reason);
  }

  void onWsGone(WsEndpoint&, uint16_t, std::string_view reason) override { upstreamLost(reason); }

  void onWsDrained(WsEndpoint&) override {
    if (eio_) eio_->resumeReading();
  }

  void onWsPong(WsEndpoint&, std::string_view) override {
    if (chain_) chain_->onPong(filters::Side::Upstream);
  }

  void onWsClosed(WsEndpoint&) override {
    upstreamLost("upstream closed");
    maybeDelete();
  }

 private:
  // After the handshake filters: the upstream session comes first, so the client's OPEN can
  // carry the server's heartbeat and a dead server is a 502, as for every pass-through.
  void ready() override {
    if (cluster_ == nullptr || cluster_->endpoints.empty()) {
      refuse(502, "cluster '" + route_.cluster + "': no endpoint");
      return;
    }
    std::string target = cluster_->config->path ? *cluster_->config->path
                                                : handshake_request_.path;
    target += "?EIO=4&transport=websocket";
    const std::string query = appQuery(handshake_request_.query);
    if (!query.empty()) target += "&" + query;
    connector_ = std::make_unique<UpstreamConnector>(
        worker_, *cluster_,
        endpointOrder(worker_, route_, *cluster_, client_ip_, attributes_), std::move(target),
        forwardedHeaders(handshake_request_, client_ip_, listener_.tls != nullptr,
                         upstream_headers_, snapshot_->ownedHeadersOf(route_)),
        [this](bufferevent* bev, size_t endpoint, std::string error) {
          const bool timed_out = connector_->handshakeTimedOut();
          worker_.dispatcher().deferDelete(std::move(connector_));
          if (bev == nullptr) {
            refuse(timed_out ? 504 : 502, "cluster '" + route_.cluster + "': " + error);
            return;
          }
          endpoint_ = endpoint;
          WsEndpointOptions options;
          options.max_message = route_.max_message;
          options.upstream_label = &cluster_->endpoints[endpoint].label;
          upstream_ = std::make_unique<WsEndpoint>(worker_.dispatcher(), bev,
                                                   WsEndpoint::Side::Upstream, options,
                                                   worker_.masks(), *this);
          // A server that upgrades and never sends its OPEN must not hold the client's request.
          open_deadline_ = std::make_unique<proxy::Timer>(worker_.dispatcher(), [this] {
            if (eio_ == nullptr) refuse(504, upstreamLabel() + ": no OPEN packet in time");
          });
          open_deadline_->arm(cluster_->config->handshake_timeout);
          upstream_->start();  // its OPEN opens the client's session
        });
    connector_->start();
  }

  const std::string& upstreamLabel() const { return cluster_->endpoints[endpoint_].label; }

  // The session never opened: the client's handshake is refused as Session refuses one (502,
  // or 504 for an upstream that did not answer in time), naming the cluster; the log has the
  // details (which endpoint is none of the client's business).
  void refuse(int status, std::string_view why) {
    if (discarded_) return;  // refused already (the deadline, then the upstream's close)
    if (open_deadline_) open_deadline_->cancel();
    spdlog::warn("{}: Engine.IO v3 pass-through: {}", client_ip_, why);
    const char* error = status == 504 ? "upstream handshake timeout" : "no upstream available";
    decide(http::errorResponse(status, "{\"error\":\"" + std::string(error) +
                                           "\",\"cluster\":\"" +
                                           http::jsonEscape(route_.cluster) + "\"}"));
  }

  void onUpstreamText(std::string_view text) {
    if (text.empty()) return;
    switch (text[0]) {
      case '0':
        if (eio_ == nullptr) serverOpened(text.substr(1));
        return;
      case '2':  // the server pings; v3 clients never answer pings, wsbridge does
        upstream_->sendMessage(ws::Opcode::Text, "3" + std::string(text.substr(1)));
        return;
      case '1':
        if (eio_) eio_->close("server closed the session");
        return;
      case '4':
        break;
      default:
        return;  // noop
    }
    if (eio_ == nullptr) return;
    const std::string_view packet = text.substr(1);
    SioInspector::Verdict verdict = to_client_.onText(packet, chain_.get());
    if (verdict == SioInspector::Verdict::Invalid) {
      parseError(true, to_client_.error());
      return;
    }
    countEvent(to_client_.current());
    if (verdict == SioInspector::Verdict::Drop) return;
    const std::string v4 = toSioV4(packet);
    eio_->send(v4.empty() ? packet : std::string_view(v4));
  }

  // The server's OPEN: the client's session starts with the server's heartbeat, and wsbridge
  // connects the default namespace, which v4 clients never ask for.
  void serverOpened(std::string_view open_json) {
    eio::Handshake handshake;
    if (!eio::parseHandshake(open_json, &handshake)) {
      refuse(502, upstreamLabel() + ": invalid OPEN packet");
      return;
    }
    open_deadline_.reset();
    EioSessionOptions options = sessionOptions();
    options.ping_interval = Duration(handshake.ping_interval);
    options.ping_timeout = Duration(handshake.ping_timeout);
    eio_ = std::make_unique<EioSession>(worker_.dispatcher(), worker_.masks(), makeBase64Id(),
                                        options, *this);
    upstream_->sendMessage(ws::Opcode::Text, "40");
    decide({});
  }

  // A client's packet through the filters; a refused CONNECT is answered here.
  bool inspectFromClient(std::string_view packet) {
    SioInspector::Verdict verdict = to_upstream_.onText(packet, chain_.get());
    if (verdict == SioInspector::Verdict::Invalid) {
      parseError(false, to_upstream_.error());
      return false;
    }
    countEvent(to_upstream_.current());
    if (verdict == SioInspector::Verdict::Forward) return true;
    std::string reply = to_upstream_.takeReply();
    if (!reply.empty()) {
      const std::string v4 = toSioV4(reply);
      eio_->send(v4.empty() ? reply : v4);
    }
    return false;
  }

  void countEvent(const sio::Packet& packet) {
    if (packet.type != sio::PacketType::Event && packet.type != sio::PacketType::BinaryEvent) return;
    if (auto name = sio::eventName(packet, reader_)) events_.count(*name);
  }

  // A packet that does not decode is never forwarded: the session ends on both sides, as a
  // Socket.IO server ends it on a parse error.
  void parseError(bool from_upstream, std::string_view why) {
    failed_ = true;
    noteParseError(from_upstream, why);
    closeSession(from_upstream ? ws::close_code::kInternalError : ws::close_code::kProtocolError,
                 from_upstream ? "upstream sent an invalid packet" : "parse error");
  }

  void upstreamLost(std::string_view why) {
    if (eio_ == nullptr) {
      refuse(502, upstreamLabel() + ": closed before the session opened");
    } else if (!eio_->closed()) {
      spdlog::debug("Engine.IO v3 pass-through {}: upstream lost: {}", eio_->sid(), why);
      if (close_info_.closed_by.empty()) {
        close_info_ = {ws::close_code::kGoingAway, std::string(why), "upstream"};
      }
      eio_->close("upstream closed");
    }
  }

  void maybeDelete() {
    if (discarded_ || !eio_finished_ || (upstream_ && !upstream_->finished())) return;
    if (endpoint_ != SIZE_MAX) {
      auto& active = worker_.balance(route_.cluster).active;
      if (endpoint_ < active.size() && active[endpoint_] > 0) active[endpoint_]--;
      endpoint_ = SIZE_MAX;
    }
    discarded_ = true;
    worker_.dispatcher().deferDelete(std::unique_ptr<Deletable>(this));
  }

  std::unique_ptr<UpstreamConnector> connector_;
  std::unique_ptr<WsEndpoint> upstream_;
  std::unique_ptr<EioSession> eio_;  // once the server's OPEN arrived
  std::unique_ptr<proxy::Timer> shape_timer_;
  std::unique_ptr<proxy::Timer> open_deadline_;  // from the upgrade to the server's OPEN
  SioInspector to_upstream_{filters::Direction::ToUpstream};
  SioInspector to_client_{filters::Direction::ToClient};
  sio::JsonReader reader_;  // event names with escapes
  size_t endpoint_ = SIZE_MAX;
  bool eio_finished_ = false;
  bool failed_ = false;  // after a parse error nothing more is forwarded
};

}  // namespace

std::unique_ptr<EioServerApp> makeEio3Passthrough(Worker& worker, SnapshotPtr snapshot,
                                                  const config::Route& route,
                                                  const ListenerRuntime& listener,
                                                  http::Request handshake, std::string client_ip) {
  return std::make_unique<Eio3Passthrough>(worker, std::move(snapshot), route, listener,
                                           std::move(handshake), std::move(client_ip));
}

}  // namespace wsb::proxy
