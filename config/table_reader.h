// Reads one TOML table into typed values, reporting every problem as `file:line:col: message`.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "config/config.h"

namespace wsb::config {

// The position of a node; `fallback_file` names the source when the node carries no path.
SourcePos positionOf(const toml::source_region& source, const std::string& fallback_file);

// "file:line:col: message".
std::string formatError(const SourcePos& pos, std::string_view message);

// Orders `file:line:col: message` strings by file, then line and column numerically (a plain
// string sort would put line 10 before line 9); messages without a position keep their order.
void sortByPosition(std::vector<std::string>& errors);

// Replaces each `${NAME}` with the environment variable NAME; `$${` stands for a literal `${`.
// On failure returns nullopt and sets *problem (a missing variable is named in it).
std::optional<std::string> expandEnvironment(std::string_view text, std::string* problem);

// One table's reader. Getters mark the key as read; finish() reports every key never asked
// for as unknown, so a typo never passes silently. Wrong types, values out of range and
// missing required keys are reported at the offending node and the fallback is returned, so
// one pass collects every error. The reader borrows the table and the error list.
class TableReader {
 public:
  // `context` names the table in messages ("[filter.jwt]"); `file` is used for nodes that
  // carry no source path.
  TableReader(const toml::table& table, std::string context, std::string file,
              std::vector<std::string>* errors);

  // Strings are `${ENV}`-expanded. The bool form reports a missing key when `required`.
  std::optional<std::string> string(std::string_view key, bool required = false);
  std::string string(std::string_view key, std::string fallback);
  std::string string(std::string_view key, const char* fallback) {
    return string(key, std::string(fallback));  // a literal would otherwise pick the bool form
  }

  bool boolean(std::string_view key, bool fallback);
  int64_t integer(std::string_view key, int64_t fallback,
                  int64_t min = std::numeric_limits<int64_t>::min(),
                  int64_t max = std::numeric_limits<int64_t>::max());
  // Accepts integers and floats.
  double number(std::string_view key, double fallback,
                double min = std::numeric_limits<double>::lowest(),
                double max = std::numeric_limits<double>::max());
  // A duration string ("250ms", "1.5s", "1m30s") or the integer 0.
  Duration duration(std::string_view key, Duration fallback);
  // A size string ("64KiB", "10KB") or a non-negative integer of bytes.
  uint64_t size(std::string_view key, uint64_t fallback);
  // An array of strings (each `${ENV}`-expanded); empty when absent. `nodes`, when given,
  // receives each element's node, for errors about one element.
  std::vector<std::string> strings(std::string_view key,
                                   std::vector<const toml::node*>* nodes = nullptr);
  // A table whose values are all strings (`${ENV}`-expanded); empty when absent. `nodes`, when
  // given, receives each value's node by key.
  std::map<std::string, std::string> stringMap(
      std::string_view key, std::map<std::string, const toml::node*>* nodes = nullptr);
  // A path to a file that must exist; relative paths are taken from the directory of the
  // config file and returned resolved against it.
  std::optional<std::string> filePath(std::string_view key, bool required = false);

  // One of `names`: returns its index, or nullopt when absent or invalid (reported).
  std::optional<size_t> oneOf(std::string_view key, std::span<const std::string_view> names);
  std::optional<size_t> oneOf(std::string_view key, std::initializer_list<std::string_view> names) {
    return oneOf(key, std::span<const std::string_view>(names.begin(), names.size()));
  }
  // One of the options' names, mapped to its value ("lb" -> LoadBalance::HashIp).
  template <typename T>
  T choice(std::string_view key, T fallback,
           std::initializer_list<std::pair<std::string_view, T>> options);

  // Raw access: a sub-table (nullptr when absent or not a table, the latter reported) or any
  // node (nullptr when absent). Both mark the key as read.
  const toml::table* table(std::string_view key);
  const toml::node* node(std::string_view key);
  // Whether the key is present; does not mark it as read.
  bool has(std::string_view key) const { return table_.contains(key); }
  // Marks a key as read without reading it (one the caller's caller already consumed, such as
  // a filter table's `type`).
  void markRead(std::string_view key) { asked_.emplace_back(key); }

  // Reports `message` at `at`, or at the table itself when `at` is null.
  void error(const toml::node* at, std::string_view message);
  SourcePos position(const toml::node* at = nullptr) const;
  const std::string& context() const { return context_; }
  const std::string& file() const { return file_; }

  // Reports every key no getter asked for: "unknown key 'foo' in [filter.jwt]".
  void finish();

 private:
  const toml::node* lookup(std::string_view key);
  void typeError(const toml::node* at, std::string_view key, std::string_view expected);
  std::optional<std::string> expanded(const toml::node& at, std::string_view key,
                                      std::string_view text);

  const toml::table& table_;
  std::string context_;
  std::string file_;
  std::vector<std::string>* errors_;
  std::vector<std::string> asked_;  // every key a getter looked up, present or not
};

template <typename T>
T TableReader::choice(std::string_view key, T fallback,
                      std::initializer_list<std::pair<std::string_view, T>> options) {
  std::vector<std::string_view> names;
  names.reserve(options.size());
  for (const auto& option : options) names.push_back(option.first);
  std::optional<size_t> picked = oneOf(key, names);
  return picked ? (options.begin() + *picked)->second : fallback;
}

}  // namespace wsb::config
