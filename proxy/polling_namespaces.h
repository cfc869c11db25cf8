// Namespaces each polling pass-through session has asked for, so that `max_namespaces` holds
// across the session's requests. Shared by every worker of the process, as its requests may be
// accepted by any of them (a session polling through several wsbridge instances is counted by
// each); a small mutex-protected map, touched only by CONNECT and DISCONNECT packets and by the
// end of a session, pruned by age so abandoned sessions do not leak.
#pragma once

#include <cstddef>
#include <string_view>

namespace wsb::proxy {

// True when `nsp` is joined already or the session `sid` has fewer than `max` namespaces (then
// `nsp` counts); false: refuse the CONNECT.
bool admitNamespace(std::string_view sid, std::string_view nsp, size_t max);
// A DISCONNECT, or the server's CONNECT_ERROR: the namespace no longer counts.
void leaveNamespace(std::string_view sid, std::string_view nsp);
// The session ended (close packet, unknown sid).
void forgetNamespaces(std::string_view sid);

}  // namespace wsb::proxy
