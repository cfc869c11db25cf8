// The explicit table of filter types: `type = "..."` -> the function that builds its factory.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "filters/filter.h"

namespace wsb::filters {

// Validates a [filter.NAME] table and builds its factory; null with `errors` filled
// (`file:line:col: message`) when the table is wrong or the type unknown.
FactoryPtr buildFactory(const config::FilterSpec& spec, std::vector<std::string>* errors);

// The registered type names, for messages and docs.
std::vector<std::string> filterTypes();

}  // namespace wsb::filters
