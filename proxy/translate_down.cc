// Translate down: placeholder until the Engine.IO server role lands; answers 501.
#include "proxy/translate_down.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

namespace wsb::proxy {

namespace {
void closeWhenWritten(bufferevent* bev, void*) {
  if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) bufferevent_free(bev);
}
void closeOnEvent(bufferevent* bev, short, void*) { bufferevent_free(bev); }
}  // namespace

void startTranslateDown(Worker&, SnapshotPtr, const config::Route&, const ListenerRuntime&,
                        bufferevent* client, http::Request, std::string, uint16_t) {
  std::string response = http::errorResponse(
      501, "{\"error\":\"translate down (socketio clients on a websocket cluster) is not built yet\"}");
  bufferevent_setcb(client, nullptr, &closeWhenWritten, &closeOnEvent, nullptr);
  bufferevent_disable(client, EV_READ);
  bufferevent_write(client, response.data(), response.size());
}

}  // namespace wsb::proxy
