// A whole evbuffer as one string_view (made contiguous first): for messages, which are small or
// read as a whole anyway.
#pragma once

#include <event2/buffer.h>

#include <string_view>

namespace wsb::proxy {

inline std::string_view viewOf(evbuffer* buffer) {
  const size_t len = evbuffer_get_length(buffer);
  if (len == 0) return {};
  return {reinterpret_cast<const char*>(evbuffer_pullup(buffer, -1)), len};
}

}  // namespace wsb::proxy
