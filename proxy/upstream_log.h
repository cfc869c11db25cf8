// What went wrong with an upstream connection once it was in use, logged by the upstream's name:
// the client only hears a close code (1011), so the log is where an operator learns which
// endpoint of which cluster broke the protocol or vanished.
#pragma once

#include <string_view>

namespace wsb::proxy {

// Logs `what` (warn) for `upstream` (an Endpoint's label: "cluster 'chat': endpoint
// 127.0.0.1:9000"). One line a second per endpoint and worker thread at most, the lines held
// back counted in the next one: an endpoint that dies under thousands of connections must not
// flood the log.
void logUpstreamFault(std::string_view upstream, std::string_view what);

}  // namespace wsb::proxy
