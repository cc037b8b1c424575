#include "base/log_fields.h"

#include <algorithm>

#include "base/log.h"

namespace dm {
namespace {

// Sinks run on the logging thread (the loggers are synchronous), so thread-local is exact.
thread_local std::vector<std::pair<std::string, std::string>> fields;

}  // namespace

LogField::LogField(std::string_view name, std::string_view value) {
  fields.emplace_back(std::string(name), Printable(value));
}

LogField::~LogField() { fields.pop_back(); }

std::vector<std::pair<std::string, std::string>> CurrentLogFields() {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto it = fields.rbegin(); it != fields.rend(); ++it) {
    const bool hidden =
        std::any_of(out.begin(), out.end(), [&](const auto& f) { return f.first == it->first; });
    if (!hidden) out.push_back(*it);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace dm
