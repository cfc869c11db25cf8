// Hands the Socket.IO packets inside Engine.IO messages to the filter chain, one direction at a
// time, and renders what filters send back (notices, ack errors) as Engine.IO message text.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "codec/socketio.h"
#include "filters/chain.h"
#include "proxy/stats.h"

namespace wsb::proxy {

class SioInspector {
 public:
  explicit SioInspector(filters::Direction direction, sio::Version version = sio::Version::V5)
      : direction_(direction), version_(version) {}

  enum class Verdict {
    Forward,
    Drop,     // a filter refused it (and answered through its callbacks)
    Invalid,  // it does not decode: never forward it; close the connection ("parse error")
  };

  // `packet` is the Engine.IO message data (the Socket.IO packet text), decoded with
  // socket.io-parser's rules, stricter where those are lenient by accident (sio::decodePacket):
  // what wsbridge lets through means to the server what it meant to the filters. `chain` may be
  // null: the packet is still checked.
  Verdict onText(std::string_view packet, filters::FilterChain* chain);
  // A binary Engine.IO message: an attachment of the last BINARY_* packet, dropped with it.
  // Invalid when no attachment is pending, unless the transport can split a packet from its
  // attachments (polling: each request is inspected on its own), see setLooseAttachments.
  Verdict onBinary();
  void setLooseAttachments() { loose_attachments_ = true; }
  // After Invalid: socket.io-parser's words for what was wrong, for the log.
  const char* error() const { return sio::describe(error_); }

  // Set during onText for the packet being judged: what filters need to answer it.
  const sio::Packet& current() const { return current_; }

  // Judges a client's CONNECT (namespace, auth payload): nullopt admits it, a message refuses.
  using ConnectCheck =
      std::function<std::optional<std::string>(std::string_view nsp, std::string_view auth)>;
  void setConnectCheck(ConnectCheck check) { connect_check_ = std::move(check); }
  // After onText dropped a refused CONNECT: the CONNECT_ERROR packet for the client (once).
  std::string takeReply() { return std::move(reply_); }

 private:
  filters::Direction direction_;
  sio::Version version_;
  sio::JsonReader reader_;
  sio::Packet current_;
  std::string args_;  // the args as a JSON array, made when a filter asks
  ConnectCheck connect_check_;
  std::string reply_;
  uint32_t attachments_left_ = 0;
  bool dropping_attachments_ = false;
  bool loose_attachments_ = false;
  sio::DecodeError error_ = sio::DecodeError::None;
};

// Counts `packet` (Engine.IO message data) under its event name when it is a Socket.IO EVENT or
// BINARY_EVENT; other packets are not decoded.
void countEventPacket(std::string_view packet, RouteEvents& events, sio::JsonReader& reader);
// The same for every message packet of an Engine.IO v4 text polling payload.
void countPayloadEvents(std::string_view payload, RouteEvents& events);

// The Engine.IO message text (`4` + the Socket.IO EVENT) a notice stands for: an envelope {"event":E,"data":D} becomes
// 42<nsp,>[E,D]; any other text becomes 42<nsp,>["message","<text>"].
std::string renderNoticeMessage(std::string_view notice, std::string_view nsp);
// The Engine.IO message text `4` + ACK <nsp,><id><args_json>.
std::string renderAckMessage(std::string_view nsp, uint64_t id, std::string_view args_json);

// Socket.IO v4 clients (socket.io-client 2.x) on v5 servers, packets without the Engine.IO `4`:
// A v5 server's CONNECT reply or CONNECT_ERROR as a v4 client expects it: `0[/nsp,]` without the
// sid, `4[/nsp,]"message"`. Other packets are identical in v4 and v5 and come back empty.
std::string toSioV4(std::string_view packet);
// A v4 client's CONNECT (`0/admin?token=1,`) as a v5 server expects it (`0/admin,{"token":"1"}`).
// Empty for the default namespace, which v4 connects implicitly; nullopt when it does not
// decode as a v4 CONNECT (the connection is to be closed, as for any packet that does not decode).
std::optional<std::string> connectToSioV5(std::string_view packet);

}  // namespace wsb::proxy
