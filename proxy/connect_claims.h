// What a Socket.IO pass-through session's CONNECT earned from the filters (the attributes
// auth.jwt sets, such as jwt.sub), kept for the session's later requests: over polling, and after
// the upgrade, events arrive on other HTTP requests than the CONNECT did, and per-user rate
// limits need the user there too. Shared by every worker of the process, like the notice box.
#pragma once

#include <string_view>

#include "filters/filter.h"

namespace wsb::proxy {

// Records `attributes` for the Engine.IO session `sid` (the signed sid the client sends).
void rememberConnectAttributes(std::string_view sid, const filters::Attributes& attributes);
// The attributes recorded for `sid` (empty if none), refreshing their age.
filters::Attributes recallConnectAttributes(std::string_view sid);

}  // namespace wsb::proxy
