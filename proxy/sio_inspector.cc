// SioInspector: Socket.IO events and acks to the filter chain.
#include "proxy/sio_inspector.h"

#include "codec/envelope.h"

namespace wsb::proxy {

SioInspector::Verdict SioInspector::onText(std::string_view packet, filters::FilterChain* chain) {
  if (attachments_left_ > 0 && !loose_attachments_) {
    error_ = sio::DecodeError::UnexpectedText;
    return Verdict::Invalid;
  }
  sio::DecodeOptions options;
  options.version = version_;
  error_ = sio::decodePacket(packet, &current_, options);
  if (error_ != sio::DecodeError::None) return Verdict::Invalid;
  attachments_left_ = sio::isBinary(current_.type) ? current_.attachments : 0;
  dropping_attachments_ = false;
  if (chain == nullptr) return Verdict::Forward;
  if (current_.type == sio::PacketType::Connect && connect_check_) {
    if (auto refusal = connect_check_(current_.nsp, current_.data)) {
      reply_.clear();
      sio::appendConnectError(reply_, version_, current_.nsp, *refusal);
      return Verdict::Drop;
    }
    return Verdict::Forward;
  }
  bool is_event = current_.type == sio::PacketType::Event ||
                  current_.type == sio::PacketType::BinaryEvent;
  bool is_ack = current_.type == sio::PacketType::Ack || current_.type == sio::PacketType::BinaryAck;
  if (!is_event && !is_ack) return Verdict::Forward;

  filters::Event event;
  event.direction = direction_;
  event.nsp = current_.nsp;
  if (is_event) {
    auto name = sio::eventName(current_, reader_);
    if (!name) {  // decodePacket vouched for it; never let a name the filters cannot see pass
      error_ = sio::DecodeError::InvalidPayload;
      return Verdict::Invalid;
    }
    event.name = *name;
  }
  event.ack = current_.id;
  event.size = packet.size();
  event.args = [this]() -> std::string_view {
    args_.resize(current_.args_json.size() + 2);
    args_.front() = '[';
    current_.args_json.copy(args_.data() + 1, current_.args_json.size());
    args_.back() = ']';
    return args_;
  };
  if (chain->onEvent(event) == filters::Status::Continue) return Verdict::Forward;
  dropping_attachments_ = attachments_left_ > 0;
  return Verdict::Drop;
}

SioInspector::Verdict SioInspector::onBinary() {
  if (attachments_left_ == 0) {
    if (loose_attachments_) return Verdict::Forward;
    error_ = sio::DecodeError::UnexpectedBinary;
    return Verdict::Invalid;
  }
  --attachments_left_;
  return dropping_attachments_ ? Verdict::Drop : Verdict::Forward;
}

void countEventPacket(std::string_view packet, RouteEvents& events, sio::JsonReader& reader) {
  if (packet.empty() || (packet[0] != '2' && packet[0] != '5')) return;
  sio::Packet decoded;
  if (sio::decodePacket(packet, &decoded) != sio::DecodeError::None) return;
  if (auto name = sio::eventName(decoded, reader)) events.count(*name);
}

void countPayloadEvents(std::string_view payload, RouteEvents& events) {
  sio::JsonReader reader;  // allocates only for a name with escapes
  while (!payload.empty()) {
    size_t end = payload.find('\x1e');
    std::string_view packet = payload.substr(0, end);
    if (!packet.empty() && packet[0] == '4') countEventPacket(packet.substr(1), events, reader);
    payload = end == std::string_view::npos ? std::string_view() : payload.substr(end + 1);
  }
}

namespace {
void appendNsp(std::string& out, std::string_view nsp) {
  if (!nsp.empty() && nsp != "/") {
    out.append(nsp);
    out += ',';
  }
}
}  // namespace

std::string renderNoticeMessage(std::string_view notice, std::string_view nsp) {
  envelope::Message message;
  std::string error;
  std::string out = "42";
  appendNsp(out, nsp);
  if (envelope::parse(notice, {}, &message, &error) == envelope::ParseStatus::Ok &&
      message.kind == envelope::Message::Kind::Event) {
    out += '[';
    sio::appendJsonString(out, message.event);
    if (message.args.size() > 2) {  // "[...]" with at least one argument
      out += ',';
      out.append(message.args, 1, message.args.size() - 1);
    } else {
      out += ']';
    }
    return out;
  }
  out += "[\"message\",";
  sio::appendJsonString(out, notice);
  out += ']';
  return out;
}

std::string renderAckMessage(std::string_view nsp, uint64_t id, std::string_view args_json) {
  std::string out = "43";
  appendNsp(out, nsp);
  out += std::to_string(id);
  out.append(args_json);
  return out;
}

std::string toSioV4(std::string_view packet) {
  if (packet.empty() || (packet[0] != '0' && packet[0] != '4')) return {};
  sio::Packet decoded;
  if (sio::decodePacket(packet, &decoded) != sio::DecodeError::None) return {};
  std::string out;
  if (decoded.type == sio::PacketType::Connect) {
    sio::appendConnectReply(out, sio::Version::V4, decoded.nsp, {});
  } else {
    sio::JsonReader reader;
    const std::string_view message = sio::connectErrorMessage(decoded, reader).value_or("");
    sio::appendConnectError(out, sio::Version::V4, decoded.nsp, message);
  }
  return out;
}

std::optional<std::string> connectToSioV5(std::string_view packet) {
  sio::Packet connect;
  if (sio::decodePacket(packet, &connect, {sio::Version::V4}) != sio::DecodeError::None ||
      connect.type != sio::PacketType::Connect) {
    return std::nullopt;
  }
  std::string_view nsp, query;
  sio::splitNamespace(connect.nsp, &nsp, &query);
  if (nsp == "/") return std::string();
  std::string auth;
  if (!query.empty()) sio::appendQueryAsJson(auth, query);
  std::string out;
  sio::appendConnect(out, nsp, auth);
  return out;
}

}  // namespace wsb::proxy
