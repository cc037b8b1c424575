// Test support: routes spdlog's default logger into a string for the life of the object, so a
// test can assert what was (and was not) logged.
#pragma once

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>
#include <string>

#include "base/log_sinks.h"

namespace dm::testing {

class LogCapture {
 public:
  explicit LogCapture(spdlog::level::level_enum level = spdlog::level::debug)
      : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    sink->set_formatter(log_internal::MakeTextFormatter());  // with the fields, as logged
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(level);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::string text() const { return out_.str(); }
  // How often `needle` occurs in what was logged so far.
  size_t Count(const std::string& needle) const {
    const std::string all = text();
    size_t n = 0;
    for (size_t p = all.find(needle); p != std::string::npos; p = all.find(needle, p + 1)) ++n;
    return n;
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

}  // namespace dm::testing
