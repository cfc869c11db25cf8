// What a session needs from the bridge that carries its messages once both handshakes are done
// (relay, translate up, translate down, pass-through): the filter actions and shutdown.
#pragma once

#include <cstdint>
#include <string_view>

#include "filters/filter.h"

namespace wsb::proxy {

class Bridge {
 public:
  virtual ~Bridge() = default;

  // Graceful shutdown (SIGTERM, drain): 1001 / Socket.IO DISCONNECT to the client.
  virtual void drain(std::string_view reason) = 0;
  // How the connection ended (valid once it has).
  virtual const filters::CloseInfo& closeInfo() const = 0;

  // Filter actions (see filters::FilterCallbacks).
  virtual void notify(filters::Side toward, std::string_view notice) = 0;
  virtual void ackError(filters::Side toward, const filters::Event& event,
                        std::string_view args_json) = 0;
  virtual void close(uint16_t code, std::string_view reason) = 0;
  virtual bool ping(filters::Side side) = 0;  // see filters::FilterCallbacks::ping
  virtual void pauseReading(filters::Side side) = 0;   // shaping
  virtual void resumeReading(filters::Side side) = 0;
};

}  // namespace wsb::proxy
