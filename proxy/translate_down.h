// Translate down: standard Socket.IO clients on a legacy raw-WebSocket server. wsbridge is a
// complete Engine.IO v4 / Socket.IO v5 server to the client (websocket and polling transports,
// upgrade, heartbeat, namespaces) and opens one raw WebSocket to the cluster per namespace the
// client connects; events become envelope messages upstream and upstream messages become events.
#pragma once

#include <cstdint>
#include <string>

#include "codec/http1.h"
#include "proxy/snapshot.h"

struct bufferevent;

namespace wsb::proxy {

class Worker;

// Takes over a client connection whose request `request` (already parsed, for a route with
// downstream socketio and a websocket cluster) starts or continues an Engine.IO session. From
// here on the connection belongs to the translate-down machinery (later keep-alive requests
// included); the calling Session forgets it.
void startTranslateDown(Worker& worker, SnapshotPtr snapshot, const config::Route& route,
                        const ListenerRuntime& listener, bufferevent* client,
                        http::Request request, std::string client_ip, uint16_t client_port);

}  // namespace wsb::proxy
