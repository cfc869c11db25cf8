// Fuzz target for the Socket.IO codec: decodes arbitrary packets and attachments through the
// reassembler, re-encodes what decoded, and cross-checks the JSON scan against simdjson.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "codec/socketio.h"

namespace {

using wsb::sio::DecodeError;
using wsb::sio::Packet;
using wsb::sio::Reassembler;

void check(bool ok) {
  if (!ok) std::abort();
}

bool sameFields(const Packet& a, const Packet& b) {
  return a.type == b.type && a.attachments == b.attachments && a.nsp == b.nsp && a.id == b.id &&
         a.data == b.data && a.data_kind == b.data_kind && a.name_json == b.name_json &&
         a.name_kind == b.name_kind && a.name_escaped == b.name_escaped &&
         a.args_json == b.args_json && a.arg_count == b.arg_count;
}

struct State {
  wsb::sio::DecodeOptions options;
  Reassembler reassembler;
  wsb::sio::JsonReader reader;
  simdjson::dom::parser dom;
};

void fuzzText(State& state, std::string_view text) {
  // What simdjson (strict RFC 8259) accepts, JSON.parse accepts, and so must the scanner. As an
  // ACK payload, unless a leading digit would be read as the ack id.
  if (!text.empty() && !(text[0] >= '0' && text[0] <= '9')) {
    simdjson::dom::element element;
    if (!state.dom.parse(text.data(), text.size()).get(element)) {
      Packet ack;
      check(wsb::sio::decodePacket("3" + std::string(text), &ack, state.options) !=
            DecodeError::InvalidJson);
    }
  }
  Packet packet;
  if (wsb::sio::decodePacket(text, &packet, state.options) != DecodeError::None) return;
  check(packet.raw == text);

  std::string wire;
  wsb::sio::appendPacket(wire, packet);
  Packet again;
  check(wsb::sio::decodePacket(wire, &again, state.options) == DecodeError::None);
  check(sameFields(packet, again));

  auto name = wsb::sio::eventName(packet, state.reader);
  if (name && packet.name_kind == wsb::sio::JsonKind::String && !packet.name_escaped) {
    // The zero-copy name must be what simdjson reads, whenever simdjson takes the document.
    simdjson::ondemand::document doc;
    simdjson::ondemand::array array;
    if (!state.reader.iterate(packet.data).get(doc) && !doc.get_array().get(array)) {
      for (auto element : array) {
        std::string_view parsed;
        if (!element.get_string().get(parsed)) check(parsed == *name);
        break;
      }
    }
  }

  auto status = state.reassembler.addPacket(packet);
  if (status == Reassembler::Status::Error) state.reassembler.reset();
}

void fuzzAttachment(State& state, std::string_view bytes) {
  auto status = state.reassembler.addAttachment(bytes);
  if (status == Reassembler::Status::Error) {
    state.reassembler.reset();
  } else if (status == Reassembler::Status::Ready) {
    const Packet& packet = state.reassembler.packet();
    check(state.reassembler.attachments().size() == packet.attachments);
    Packet again;
    check(wsb::sio::decodePacket(packet.raw, &again, state.options) == DecodeError::None);
    check(sameFields(packet, again));
  }
}

// Builds a binary event from the bytes and checks it reassembles to the same attachments.
void fuzzBuild(State& state, std::string_view bytes) {
  std::string_view name = bytes.substr(0, bytes.size() / 2);
  std::string_view blob = bytes.substr(bytes.size() / 2);
  const wsb::sio::Arg args[] = {{blob, true}, {R"({"k":[1,"x"]})"}, {name, true}};
  std::string wire;
  std::vector<std::string_view> attachments;
  wsb::sio::appendEvent(wire, "/fuzz", name, args, bytes.size(), &attachments);
  Packet packet;
  DecodeError error = wsb::sio::decodePacket(wire, &packet, {});
  // A reserved name, or one that is not UTF-8 (refused: JS peers would read other characters).
  if (error == DecodeError::InvalidPayload || error == DecodeError::InvalidUtf8) return;
  check(error == DecodeError::None);
  Reassembler reassembler;
  check(reassembler.addPacket(packet) == Reassembler::Status::NeedAttachment);
  check(reassembler.addAttachment(attachments[0]) == Reassembler::Status::NeedAttachment);
  check(reassembler.addAttachment(attachments[1]) == Reassembler::Status::Ready);
  check(reassembler.attachments()[0] == blob && reassembler.attachments()[1] == name);
  auto decoded_name = wsb::sio::eventName(reassembler.packet(), state.reader);
  // simdjson rejects names that are not UTF-8; otherwise it must read back the same name.
  if (decoded_name && simdjson::validate_utf8(name)) check(*decoded_name == name);
}

}  // namespace

// Layout: one option byte (bit 0: v4 protocol, bits 1-4: max attachments), then records of
// [kind/length byte][bytes]: the low 7 bits give the record's length (0 or too long = the rest),
// the high bit makes it a binary attachment instead of a text packet. Every 7th record is also
// used to build a binary event. Record sizes, and so the split, come from the input.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  State state;
  state.options.version = (data[0] & 1) ? wsb::sio::Version::V4 : wsb::sio::Version::V5;
  state.options.max_attachments = (data[0] >> 1) & 0x0F;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  for (size_t record = 0; !rest.empty(); ++record) {
    auto header = static_cast<uint8_t>(rest[0]);
    rest.remove_prefix(1);
    size_t length = header & 0x7F;
    if (length == 0 || length > rest.size()) length = rest.size();
    std::string_view chunk = rest.substr(0, length);
    rest.remove_prefix(length);
    if (header & 0x80) {
      fuzzAttachment(state, chunk);
    } else {
      fuzzText(state, chunk);
    }
    if (record % 7 == 6) fuzzBuild(state, chunk);
  }
  return 0;
}
