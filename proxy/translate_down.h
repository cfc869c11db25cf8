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
//
// Each namespace the client CONNECTs opens its own raw WebSocket: path = the route's
// namespace_paths[nsp], else the cluster's `path`, else the namespace ("/", "/admin"); query =
// the client's handshake query without EIO/transport/sid/t/b64/j, plus each top-level scalar of
// the CONNECT auth object as key=value. A connect the upstream refuses with 404 answers
// CONNECT_ERROR {"message":"Invalid namespace"}, any other failure {"message":"upstream
// unavailable"} (the details go to the log); an upstream close becomes DISCONNECT of that
// namespace; leaving a namespace or the session closes its upstream with 1000.
//
// Any worker may receive a session's polling requests: they are posted to the owning worker and
// the answer posted back. A websocket upgrade accepted by another worker than the session's is
// refused (400), so such a client stays on polling.
void startTranslateDown(Worker& worker, SnapshotPtr snapshot, const config::Route& route,
                        const ListenerRuntime& listener, bufferevent* client,
                        http::Request request, std::string client_ip, uint16_t client_port);

// SIGTERM: every translate-down session of this worker closes (pending GETs get the close
// packet, websockets a close frame, upstreams 1000) and idle keep-alive connections end. Call
// on the worker's thread.
void drainTranslateDown(Worker& worker);

}  // namespace wsb::proxy
