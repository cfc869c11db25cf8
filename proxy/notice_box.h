// Engine.IO messages waiting for a polling client's next GET (filter notices and ack errors):
// over polling there is no open connection to push them on. Shared by every worker of the process
// because a session's polling requests may be accepted by any of them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace wsb::proxy {

// Adds one Engine.IO packet text (e.g. `42["rate-limit-exceeded",...]`) for session `sid`.
void postNotice(std::string_view sid, std::string packet);
// Takes every packet waiting for `sid`.
std::vector<std::string> takeNotices(std::string_view sid);

}  // namespace wsb::proxy
