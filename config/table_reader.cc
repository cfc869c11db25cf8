// Typed, position-aware reads of one TOML table, shared by the loader and the filter factories.
#include "config/table_reader.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <tuple>

#include "config/loader.h"

namespace wsb::config {

namespace {

std::string inQuotes(std::string_view key) { return "'" + std::string(key) + "'"; }

// Levenshtein distance, for "did you mean" hints on short keys.
size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Splits "file:line:col: message" into its position; false when there is none.
bool splitPosition(std::string_view error, std::string_view* file, uint64_t* line,
                   uint64_t* column) {
  for (size_t end = error.find(": "); end != std::string_view::npos;
       end = error.find(": ", end + 1)) {
    size_t column_begin = end;
    while (column_begin > 0 && isDigit(error[column_begin - 1])) --column_begin;
    if (column_begin == end || column_begin < 2 || error[column_begin - 1] != ':') continue;
    size_t line_end = column_begin - 1;
    size_t line_begin = line_end;
    while (line_begin > 0 && isDigit(error[line_begin - 1])) --line_begin;
    if (line_begin == line_end || line_begin < 1 || error[line_begin - 1] != ':') continue;
    *line = 0;
    *column = 0;
    std::from_chars(error.data() + line_begin, error.data() + line_end, *line);
    std::from_chars(error.data() + column_begin, error.data() + end, *column);
    *file = error.substr(0, line_begin - 1);
    return true;
  }
  return false;
}

}  // namespace

SourcePos positionOf(const toml::source_region& source, const std::string& fallback_file) {
  SourcePos pos;
  pos.file = source.path && !source.path->empty() ? *source.path : fallback_file;
  pos.line = source.begin.line;
  pos.column = source.begin.column;
  return pos;
}

std::string formatError(const SourcePos& pos, std::string_view message) {
  std::string text = pos.str();
  text += ": ";
  text += message;
  return text;
}

void sortByPosition(std::vector<std::string>& errors) {
  struct Keyed {
    bool positioned;
    std::string_view file;
    uint64_t line = 0;
    uint64_t column = 0;
    std::string* text;
  };
  std::vector<Keyed> keyed;
  keyed.reserve(errors.size());
  for (auto& error : errors) {
    Keyed entry{false, {}, 0, 0, &error};
    entry.positioned = splitPosition(error, &entry.file, &entry.line, &entry.column);
    keyed.push_back(entry);
  }
  std::stable_sort(keyed.begin(), keyed.end(), [](const Keyed& a, const Keyed& b) {
    if (a.positioned != b.positioned) return a.positioned;
    return std::tie(a.file, a.line, a.column) < std::tie(b.file, b.line, b.column);
  });
  std::vector<std::string> sorted;
  sorted.reserve(errors.size());
  for (auto& entry : keyed) sorted.push_back(std::move(*entry.text));
  errors = std::move(sorted);
}

std::optional<std::string> expandEnvironment(std::string_view text, std::string* problem) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      *problem = "unterminated '${' (write '$${' for a literal '${')";
      return std::nullopt;
    }
    std::string name(text.substr(i + 2, close - i - 2));
    bool valid =
        !name.empty() && !isDigit(name[0]) && std::all_of(name.begin(), name.end(), [](char c) {
          return isDigit(c) || c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        });
    if (!valid) {
      *problem = "invalid environment variable name '" + name + "'";
      return std::nullopt;
    }
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) {
      *problem = "environment variable '" + name + "' is not set";
      return std::nullopt;
    }
    out += value;
    i = close + 1;
  }
  return out;
}

TableReader::TableReader(const toml::table& table, std::string context, std::string file,
                         std::vector<std::string>* errors)
    : table_(table), context_(std::move(context)), file_(std::move(file)), errors_(errors) {}

const toml::node* TableReader::lookup(std::string_view key) {
  asked_.emplace_back(key);
  return table_.get(key);
}

void TableReader::error(const toml::node* at, std::string_view message) {
  errors_->push_back(formatError(position(at), message));
}

SourcePos TableReader::position(const toml::node* at) const {
  return positionOf(at != nullptr ? at->source() : table_.source(), file_);
}

void TableReader::typeError(const toml::node* at, std::string_view key, std::string_view expected) {
  error(at, inQuotes(key) + " must be " + std::string(expected));
}

std::optional<std::string> TableReader::expanded(const toml::node& at, std::string_view key,
                                                 std::string_view text) {
  if (text.find('$') == std::string_view::npos) return std::string(text);
  std::string problem;
  std::optional<std::string> out = expandEnvironment(text, &problem);
  if (!out) error(&at, problem + " (in " + inQuotes(key) + ")");
  return out;
}

std::optional<std::string> TableReader::string(std::string_view key, bool required) {
  const toml::node* node = lookup(key);
  if (node == nullptr) {
    if (required) error(nullptr, "missing required key " + inQuotes(key) + " in " + context_);
    return std::nullopt;
  }
  const auto* value = node->as_string();
  if (value == nullptr) {
    typeError(node, key, "a string");
    return std::nullopt;
  }
  return expanded(*node, key, value->get());
}

std::string TableReader::string(std::string_view key, std::string fallback) {
  std::optional<std::string> value = string(key, false);
  return value ? std::move(*value) : std::move(fallback);
}

bool TableReader::boolean(std::string_view key, bool fallback) {
  const toml::node* node = lookup(key);
  if (node == nullptr) return fallback;
  if (const auto* value = node->as_boolean()) return value->get();
  typeError(node, key, "true or false");
  return fallback;
}

int64_t TableReader::integer(std::string_view key, int64_t fallback, int64_t min, int64_t max) {
  const toml::node* node = lookup(key);
  if (node == nullptr) return fallback;
  const auto* value = node->as_integer();
  if (value == nullptr) {
    typeError(node, key, "an integer");
    return fallback;
  }
  int64_t n = value->get();
  if (n >= min && n <= max) return n;
  constexpr int64_t kLowest = std::numeric_limits<int64_t>::min();
  constexpr int64_t kHighest = std::numeric_limits<int64_t>::max();
  if (max == kHighest) {
    typeError(node, key, "at least " + std::to_string(min));
  } else if (min == kLowest) {
    typeError(node, key, "at most " + std::to_string(max));
  } else {
    typeError(node, key, "between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return fallback;
}

double TableReader::number(std::string_view key, double fallback, double min, double max) {
  const toml::node* node = lookup(key);
  if (node == nullptr) return fallback;
  std::optional<double> value = node->is_number() ? node->value<double>() : std::nullopt;
  if (!value) {
    typeError(node, key, "a number");
    return fallback;
  }
  if (*value >= min && *value <= max) return *value;  // also false for NaN
  typeError(node, key, "a number between " + std::to_string(min) + " and " + std::to_string(max));
  return fallback;
}

Duration TableReader::duration(std::string_view key, Duration fallback) {
  const toml::node* node = lookup(key);
  if (node == nullptr) return fallback;
  if (const auto* integer = node->as_integer(); integer != nullptr && integer->get() == 0)
    return Duration{0};
  const auto* text = node->as_string();
  if (text == nullptr) {
    typeError(node, key, "a duration string such as \"250ms\", \"30s\" or \"5m\"");
    return fallback;
  }
  std::optional<std::string> value = expanded(*node, key, text->get());
  if (!value) return fallback;
  if (std::optional<Duration> parsed = parseDuration(*value)) return *parsed;
  typeError(node, key, "a duration such as \"250ms\", \"30s\" or \"5m\", not '" + *value + "'");
  return fallback;
}

uint64_t TableReader::size(std::string_view key, uint64_t fallback) {
  const toml::node* node = lookup(key);
  if (node == nullptr) return fallback;
  if (const auto* integer = node->as_integer()) {
    if (integer->get() >= 0) return static_cast<uint64_t>(integer->get());
    typeError(node, key, "a size of at least 0");
    return fallback;
  }
  const auto* text = node->as_string();
  if (text == nullptr) {
    typeError(node, key, "a size: an integer or a string such as \"64KiB\"");
    return fallback;
  }
  std::optional<std::string> value = expanded(*node, key, text->get());
  if (!value) return fallback;
  if (std::optional<uint64_t> parsed = parseSize(*value)) return *parsed;
  typeError(node, key, "a size such as 65536, \"64KiB\" or \"1MiB\", not '" + *value + "'");
  return fallback;
}

std::vector<std::string> TableReader::strings(std::string_view key,
                                              std::vector<const toml::node*>* nodes) {
  std::vector<std::string> out;
  const toml::node* node = lookup(key);
  if (node == nullptr) return out;
  const auto* array = node->as_array();
  if (array == nullptr) {
    typeError(node, key, "an array of strings");
    return out;
  }
  out.reserve(array->size());
  for (const toml::node& element : *array) {
    const auto* text = element.as_string();
    if (text == nullptr) {
      typeError(&element, key, "an array of strings");
      continue;
    }
    if (std::optional<std::string> value = expanded(element, key, text->get())) {
      out.push_back(std::move(*value));
      if (nodes != nullptr) nodes->push_back(&element);
    }
  }
  return out;
}

std::map<std::string, std::string> TableReader::stringMap(
    std::string_view key, std::map<std::string, const toml::node*>* nodes) {
  std::map<std::string, std::string> out;
  const toml::table* sub = table(key);
  if (sub == nullptr) return out;
  for (auto&& [name, node] : *sub) {
    const auto* text = node.as_string();
    if (text == nullptr) {
      typeError(&node, std::string(key) + "." + std::string(name.str()), "a string");
      continue;
    }
    if (std::optional<std::string> value = expanded(node, key, text->get())) {
      out.emplace(name.str(), std::move(*value));
      if (nodes != nullptr) nodes->emplace(name.str(), &node);
    }
  }
  return out;
}

std::optional<std::string> TableReader::filePath(std::string_view key, bool required) {
  std::optional<std::string> value = string(key, required);
  if (!value) return std::nullopt;
  const toml::node* node = table_.get(key);
  if (value->empty()) {
    typeError(node, key, "a file path, not empty");
    return std::nullopt;
  }
  std::filesystem::path path(*value);
  if (path.is_relative()) path = std::filesystem::path(file_).parent_path() / path;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    error(node, inQuotes(key) + " file not found: " + path.string());
    return std::nullopt;
  }
  if (!std::filesystem::is_regular_file(path, ec)) {
    error(node, inQuotes(key) + " is not a regular file: " + path.string());
    return std::nullopt;
  }
  return path.string();
}

std::optional<size_t> TableReader::oneOf(std::string_view key,
                                         std::span<const std::string_view> names) {
  const toml::node* node = lookup(key);
  if (node == nullptr) return std::nullopt;
  if (const auto* text = node->as_string()) {
    std::optional<std::string> value = expanded(*node, key, text->get());
    if (!value) return std::nullopt;
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == *value) return i;
  }
  std::string allowed;
  for (std::string_view name : names) {
    if (!allowed.empty()) allowed += ", ";
    allowed += name;
  }
  typeError(node, key, "one of: " + allowed);
  return std::nullopt;
}

const toml::table* TableReader::table(std::string_view key) {
  const toml::node* node = lookup(key);
  if (node == nullptr) return nullptr;
  if (const auto* sub = node->as_table()) return sub;
  typeError(node, key, "a table");
  return nullptr;
}

const toml::node* TableReader::node(std::string_view key) { return lookup(key); }

void TableReader::finish() {
  for (auto&& [key, value] : table_) {
    std::string_view name = key.str();
    if (std::find(asked_.begin(), asked_.end(), name) != asked_.end()) continue;
    std::string message = "unknown key " + inQuotes(name) + " in " + context_;
    // Suggest only close, real alternatives: a known key one or two edits away.
    const std::string* best = nullptr;
    size_t best_distance = 3;
    for (const std::string& candidate : asked_) {
      size_t distance = editDistance(name, candidate);
      if (distance < best_distance && distance < candidate.size() && !has(candidate)) {
        best = &candidate;
        best_distance = distance;
      }
    }
    if (best != nullptr) message += " (did you mean " + inQuotes(*best) + "?)";
    SourcePos pos = positionOf(key.source(), file_);
    if (pos.line == 0) pos = position(&value);
    errors_->push_back(formatError(pos, message));
  }
}

}  // namespace wsb::config
