// The C++ side of the differential test (parity.js): decodes each case with wsbridge's codecs
// and prints one canonical line, which parity.js compares with what the JS parsers make of it.
//
// Input, one case per line: `<mode> <hex bytes>`; modes sio5, sio4 (a Socket.IO packet, v5 or
// v4 rules), eio4pkt (an Engine.IO v4 text packet), eio4payload, eio3payload (a text polling
// body). Output, one line per case:
//   sio:  ok <type> <hex nsp> <id|-> <s|n> <hex name or number text|-> <argc|-> <attachments>
//   eio:  ok <type>:<b|t>:<hex data> ...          (one field per packet)
//   any:  err
#include <iostream>
#include <string>

#include "codec/engineio.h"
#include "codec/socketio.h"

namespace {

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out.empty() ? "-" : out;
}

bool unhex(std::string_view text, std::string* out) {
  auto value = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  if (text.size() % 2) return false;
  out->clear();
  for (size_t i = 0; i < text.size(); i += 2) {
    int hi = value(text[i]), lo = value(text[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi << 4 | lo));
  }
  return true;
}

std::string socketIo(std::string_view text, wsb::sio::Version version,
                     wsb::sio::JsonReader& reader) {
  using wsb::sio::PacketType;
  wsb::sio::Packet packet;
  if (wsb::sio::decodePacket(text, &packet, {version}) != wsb::sio::DecodeError::None) return "err";
  std::string out = "ok " + std::to_string(static_cast<int>(packet.type)) + " " + hex(packet.nsp) +
                    " " + (packet.id ? std::to_string(*packet.id) : "-");
  bool event = packet.type == PacketType::Event || packet.type == PacketType::BinaryEvent;
  bool ack = packet.type == PacketType::Ack || packet.type == PacketType::BinaryAck;
  if (event) {
    auto name = wsb::sio::eventName(packet, reader);
    if (!name) return "err";  // the proxy closes the connection then too
    bool number = packet.name_kind == wsb::sio::JsonKind::Number;
    out += number ? " n " + std::string(*name) : " s " + hex(*name);
  } else {
    out += " - -";
  }
  out += event || ack ? " " + std::to_string(packet.arg_count) : " -";
  out += " " + std::to_string(packet.attachments);
  return out;
}

std::string engineIo(std::string_view mode, std::string_view text) {
  using wsb::eio::Version;
  std::string storage;
  std::vector<wsb::eio::Packet> packets;
  if (mode == "eio4pkt") {
    wsb::eio::Packet packet;
    if (wsb::eio::decodeText(Version::V4, text, &packet, &storage) != wsb::eio::DecodeError::None)
      return "err";
    packets.push_back(packet);
  } else {
    Version version = mode == "eio3payload" ? Version::V3 : Version::V4;
    if (wsb::eio::decodePayload(version, wsb::eio::PayloadFormat::Text, text, SIZE_MAX, packets,
                                storage) != wsb::eio::DecodeError::None)
      return "err";
  }
  std::string out = "ok";
  for (const auto& p : packets) {
    out += " " + std::to_string(static_cast<int>(p.type)) + ":" + (p.binary ? "b" : "t") + ":" +
           hex(p.data);
  }
  return out;
}

}  // namespace

int main() {
  std::ios::sync_with_stdio(false);
  wsb::sio::JsonReader reader;
  std::string line, bytes;
  while (std::getline(std::cin, line)) {
    size_t space = line.find(' ');
    std::string_view mode = std::string_view(line).substr(0, space);
    std::string_view data =
        space == std::string::npos ? std::string_view() : std::string_view(line).substr(space + 1);
    if (!unhex(data, &bytes)) {
      std::cout << "bad-input\n";
      continue;
    }
    if (mode == "sio5" || mode == "sio4") {
      std::cout << socketIo(bytes, mode == "sio5" ? wsb::sio::Version::V5 : wsb::sio::Version::V4,
                            reader)
                << '\n';
    } else {
      std::cout << engineIo(mode, bytes) << '\n';
    }
  }
  return 0;
}
