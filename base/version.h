// The project's version (CMake's project(VERSION)) and the git revision it was built from, for
// `--version` and the logs.
#pragma once

#include <string>
#include <string_view>

namespace dm {

std::string_view ProjectVersion();  // "0.1.0"
std::string_view GitRevision();     // "ba98a5f1c2d3", "...-dirty", or "unknown"

// "<program> 0.1.0 (git ba98a5f1c2d3)": the first line of `--version`.
std::string VersionLine(std::string_view program);

}  // namespace dm
