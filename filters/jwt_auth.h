// The auth.jwt filter: finds the client's token, verifies it (filters/jwt), exposes its claims
// as attributes and forwards chosen claims to the upstream as headers.
//
// `token_from` sources, tried in order; the first that has a token decides:
// * "query:NAME"          the query parameter NAME.
// * "header:NAME"         the header NAME; "Bearer " is taken off. An Authorization header
//                         without "Bearer " (Basic ...) holds no token.
// * "cookie:NAME"         the cookie NAME.
// * "protocol"            a Sec-WebSocket-Protocol entry: the one after an entry "access_token"
//                         or "bearer" (["access_token", "<jwt>"]), or one written
//                         "access_token.<jwt>" or "bearer.<jwt>". Those entries go to
//                         FilterCallbacks::consumeProtocols: the proxy keeps them out of the
//                         upstream request and answers with the first (the marker) unless the
//                         upstream selected one of the other offered subprotocols.
// * "socketio_auth:FIELD" a string field of the Socket.IO CONNECT auth payload (dots walk into
//                         objects: "data.token").
// * "first_message:FIELD" a string field of the client's first message, a JSON object
//                         ({"event":"start","data":{"token":"..."}} with "data.token"). Only
//                         when no earlier source had a token: the handshake then passes, and the
//                         first client message must carry a valid token (else close 1008
//                         within `first_message_timeout`). The message is dropped unless
//                         `forward_first_message = true`; messages toward the client are held
//                         back (dropped) until then. Claims become attributes but are not
//                         forwarded as headers: the upstream handshake is already done.
// Default: ["header:authorization", "query:token", "socketio_auth:token"].
//
// No token: 401 "missing token"; a bad one: 403 "invalid token" (both "unauthorized" for a
// Socket.IO client, which receives it as CONNECT_ERROR). Attributes: "jwt.<claim>" for each
// top-level string, number or boolean claim. `forward_claims = { "x-user-id" = "sub" }` adds
// the header when the claim is there; a claim value with control characters fails the token.
// A client's own header of a forwarded name never reaches the upstream, claim or not
// (FilterFactory::ownedUpstreamHeaders).
// With a JWKS or PEM file, a token whose kid is unknown makes the file be read again (at most
// every 10 s), so rotated keys are picked up.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "filters/filter.h"

namespace wsb::filters {

// Reads [filter.NAME] with type = "auth.jwt"; loads the keys now, so a bad key is a config
// error.
FactoryPtr buildJwtAuthFactory(const config::FilterSpec& spec, std::vector<std::string>* errors);

}  // namespace wsb::filters
