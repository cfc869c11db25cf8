// The Engine.IO v3 pass-through adapter: socket.io-client 2.x (polling first, then the upgrade)
// on a socket.io 3/4 server that does not allow EIO3. wsbridge is the Engine.IO v3 server toward
// the client (polling, websocket, the upgrade, the client-driven heartbeat) and a Socket.IO v5
// client upstream over one websocket (answering the server's pings); Socket.IO packets pass
// through, adapted where v4 and v5 differ (the implicit default namespace, CONNECT auth in the
// namespace query, CONNECT replies and errors). Websocket-only v3 clients need none of this:
// EioRelay adapts them frame by frame.
//
// The session lives in this process (the sid is wsbridge's own, served to any worker through
// the Engine.IO registry), so a polling v3 client must come back to the same wsbridge instance.
#pragma once

#include <memory>
#include <string>

#include "codec/http1.h"
#include "proxy/eio_server_app.h"
#include "proxy/snapshot.h"

namespace wsb::proxy {

class Worker;

// For EioConnection: the app for an EIO=3 handshake on a pass-through route.
std::unique_ptr<EioServerApp> makeEio3Passthrough(Worker& worker, SnapshotPtr snapshot,
                                                  const config::Route& route,
                                                  const ListenerRuntime& listener,
                                                  http::Request handshake, std::string client_ip);

}  // namespace wsb::proxy
