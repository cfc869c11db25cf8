// Turns TOML text into a validated, immutable Config, or into `file:line:col: message` errors.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace wsb::config {

struct LoadResult {
  std::shared_ptr<const Config> config;  // null on error
  std::vector<std::string> errors;       // each "file:line:col: message", sorted by position
  bool ok() const { return config != nullptr; }
};

// Relative file paths in the config (tls_cert, tls_ca) are taken from the file's directory.
LoadResult loadFile(const std::string& path);
// `source_name` stands for the file in errors and as the base of relative paths.
LoadResult loadString(std::string_view toml_text, const std::string& source_name);

// The config used when there is no -c and no ./wsbridge.toml (load it as "<embedded default>").
std::string_view embeddedDefaultConfig();

// "250ms" "30s" "5m" "1h" "1.5s" "1m30s" "0"; must come to whole milliseconds.
std::optional<Duration> parseDuration(std::string_view text);
// "512" "10KB" (1000) "64KiB" "1MiB" "1GiB" (1024) "1.5MiB"; must come to whole bytes.
std::optional<uint64_t> parseSize(std::string_view text);
// "127.0.0.1:8080" "[::1]:80" "backend.local:9000"; port 0 is accepted (an ephemeral bind).
std::optional<Address> parseAddress(std::string_view text);

}  // namespace wsb::config
