// Fuzz target for the Engine.IO codec: decodes arbitrary frames, payloads and OPEN JSON, and
// checks that whatever decoded encodes back to the same packets.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "codec/engineio.h"

namespace {

using wsb::eio::DecodeError;
using wsb::eio::Packet;
using wsb::eio::PayloadFormat;
using wsb::eio::Version;

void check(bool ok) {
  if (!ok) std::abort();
}

void fuzzFrame(Version version, bool binary, std::string_view bytes) {
  Packet packet;
  std::string storage;
  if (wsb::eio::decodeFrame(version, binary, bytes, &packet, &storage) != DecodeError::None) return;
  std::string wire;
  bool binary_frame = binary;
  if (!packet.binary) {
    wsb::eio::appendText(wire, packet.type, packet.data);
  } else if (binary) {
    wire.append(wsb::eio::binaryFramePrefix(version, packet.type));
    wire.append(packet.data);
  } else {
    wsb::eio::appendBase64Packet(wire, version, packet);
  }
  Packet again;
  std::string again_storage;
  check(wsb::eio::decodeFrame(version, binary_frame, wire, &again, &again_storage) ==
        DecodeError::None);
  check(again == packet);
}

void fuzzPayload(Version version, PayloadFormat format, std::string_view body, size_t max) {
  std::vector<Packet> packets;
  std::string storage;
  DecodeError error = wsb::eio::decodePayload(version, format, body, max, packets, storage);
  check(error != DecodeError::TooLarge || body.size() > max);
  if (error != DecodeError::None) return;
  std::string wire;
  wsb::eio::encodePayload(version, format, packets, wire);
  std::vector<Packet> again;
  std::string again_storage;
  check(wsb::eio::decodePayload(version, format, wire, SIZE_MAX, again, again_storage) ==
        DecodeError::None);
  check(again == packets);
  if (version == Version::V3 && format == PayloadFormat::Text) {
    for (const Packet& packet : packets)
      if (!packet.binary) check(wsb::eio::utf16Length(packet.data) <= packet.data.size());
  }
}

void fuzzHandshake(std::string_view json) {
  wsb::eio::Handshake handshake;
  bool parsed = wsb::eio::parseHandshake(json, &handshake);
  if (parsed) {
    std::string rendered;
    wsb::eio::appendHandshake(rendered, handshake);
    wsb::eio::Handshake again;
    check(wsb::eio::parseHandshake(rendered, &again));
    check(again.sid == handshake.sid && again.upgrades == handshake.upgrades &&
          again.ping_interval == handshake.ping_interval &&
          again.ping_timeout == handshake.ping_timeout &&
          again.max_payload == handshake.max_payload);
  }
  std::string replaced;
  if (wsb::eio::replaceSid(json, "f\"uzz", &replaced) && parsed) {
    wsb::eio::Handshake again;
    check(wsb::eio::parseHandshake(replaced, &again));
    check(again.sid == "f\"uzz" && again.upgrades == handshake.upgrades &&
          again.ping_interval == handshake.ping_interval);
  }
}

}  // namespace

// Layout: one mode byte, then records of [length byte][that many bytes] (0 or too long = the
// rest). The codec decodes whole messages, so the records are the "chunks": each is one
// frame, body or JSON text, and their sizes come from the input.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // Mode bits: 0 = v3, 1 = binary frames, 2-4 = what to decode, 5-7 = a small max payload.
  uint8_t mode = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  Version version = (mode & 1) ? Version::V3 : Version::V4;
  while (!rest.empty()) {
    size_t length = static_cast<uint8_t>(rest[0]);
    rest.remove_prefix(1);
    if (length == 0 || length > rest.size()) length = rest.size();
    std::string_view chunk = rest.substr(0, length);
    rest.remove_prefix(length);
    switch ((mode >> 2 & 7) % 5) {
      case 0:
        fuzzFrame(version, (mode & 2) != 0, chunk);
        break;
      case 1:
        fuzzPayload(version, PayloadFormat::Text, chunk, SIZE_MAX);
        break;
      case 2:
        fuzzPayload(Version::V3, PayloadFormat::Binary, chunk, SIZE_MAX);
        break;
      case 3:
        fuzzPayload(version, PayloadFormat::Text, chunk, mode >> 5);
        break;
      default:
        fuzzHandshake(chunk);
        break;
    }
  }
  return 0;
}
