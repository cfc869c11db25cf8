// The event_acl filter: allow or deny lists of Socket.IO event names per direction.
//
// `allow_in` / `deny_in` act on client -> upstream events, `allow_out` / `deny_out` on
// upstream -> client (one list of each pair at most). A refused event is dropped and, when its
// sender asked for an ack, acked with [{"error":"forbidden"}]; with `action = "close"` the
// connection is closed with 1008 instead. Raw messages are not events and are not checked.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "filters/filter.h"

namespace wsb::filters {

// Reads [filter.NAME] with type = "event_acl".
FactoryPtr buildEventAclFactory(const config::FilterSpec& spec, std::vector<std::string>* errors);

}  // namespace wsb::filters
