// Fuzzes envelope parsing in both shapes, re-rendering what parsed, and the attachment rewrites.
//
// An envelope is always one whole message (never fed in pieces), so instead of chunking the
// input, its first byte picks the options and the attachment count; the rest is the text.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "codec/envelope.h"

namespace {

namespace env = wsb::envelope;

void check(bool ok) {
  if (!ok) std::abort();
}

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// The elements of an argument array without brackets or outer whitespace: rendering may
// re-bracket them ("args":[ 5 ] becomes "data":5) but never changes an element's bytes.
std::string_view elements(std::string_view args) {
  check(args.size() >= 2 && args.front() == '[' && args.back() == ']');
  args = args.substr(1, args.size() - 2);
  while (!args.empty() && isSpace(args.front())) args.remove_prefix(1);
  while (!args.empty() && isSpace(args.back())) args.remove_suffix(1);
  return args;
}

std::string render(const env::Message& m, env::Shape shape) {
  if (m.kind == env::Message::Kind::AckAnswer) {
    return env::renderAckAnswer(shape, *m.ack, m.args, m.nsp);
  }
  return env::renderEvent(shape, m.event, m.args, m.ack, m.nsp);
}

// What parsed re-renders to an envelope that parses to the same message, and rendering that
// again is a fixed point.
void checkRoundTrip(const env::Message& m, env::Shape shape) {
  const std::string text = render(m, shape);
  env::Message again;
  std::string error;
  check(env::parse(text, {shape, true}, &again, &error) == env::ParseStatus::Ok);
  check(again.kind == m.kind);
  check(again.event == m.event);
  check(elements(again.args) == elements(m.args));
  if (shape == env::Shape::Json) {
    check(again.ack == m.ack);
    check(again.nsp == m.nsp);
  }
  check(render(again, shape) == text);
}

// Extracting base64 objects and inlining them back is stable, and inlining always yields a
// valid argument array.
void checkAttachments(const std::string& args, size_t attachment_count) {
  std::string placeholders, inlined, error;
  std::vector<std::string> attachments;
  if (env::extractAttachments(args, &placeholders, &attachments, &error)) {
    check(env::inlineAttachments(placeholders, attachments, &inlined, &error));
    std::string placeholders_again;
    std::vector<std::string> attachments_again;
    check(env::extractAttachments(inlined, &placeholders_again, &attachments_again, &error));
    check(placeholders_again == placeholders);
    check(attachments_again == attachments);
  }
  std::vector<std::string> given;
  for (size_t i = 0; i < attachment_count; ++i) given.emplace_back(i, static_cast<char>(0xF0 + i));
  if (env::inlineAttachments(args, given, &inlined, &error)) {
    env::Message m;
    check(env::parse(env::renderEvent(env::Shape::Array, "e", inlined), {env::Shape::Array, false},
                     &m, &error) == env::ParseStatus::Ok);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t options = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool allow_nsp = (options & 1) != 0;
  const size_t attachment_count = (options >> 1) & 3;

  for (const env::Shape shape : {env::Shape::Json, env::Shape::Array}) {
    env::Message m;
    std::string error;
    const env::ParseStatus status = env::parse(text, {shape, allow_nsp}, &m, &error);
    check(status == env::ParseStatus::Ok || !error.empty());
    if (status != env::ParseStatus::Ok) continue;
    check(m.kind == env::Message::Kind::Event || m.ack.has_value());
    check(allow_nsp || m.nsp.empty());
    checkRoundTrip(m, shape);
    checkAttachments(m.args, attachment_count);
  }

  // Any valid UTF-8 survives as an event name and as text_event's string argument.
  if (simdjson::validate_utf8(text.data(), text.size())) {
    env::Message m;
    std::string error;
    check(env::parse(env::renderEvent(env::Shape::Json, text, "[]"), {}, &m, &error) ==
          env::ParseStatus::Ok);
    check(m.event == text);
    check(env::parse(env::textAsArgs(text), {env::Shape::Array, false}, &m, &error) ==
          env::ParseStatus::Ok);
    check(m.event == text && m.args == "[]");
  }
  return 0;
}
