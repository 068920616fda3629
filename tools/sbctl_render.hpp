// sbctl's human-readable output: the admin interface's JSON as tables.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace sbctl {

// The text for `command`'s successful answer `body`.
std::string render(const std::string& command, const nlohmann::json& body);

}  // namespace sbctl
