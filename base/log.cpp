#include "base/log.h"

#include <fcntl.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace dm {

Status InitLogging(std::string_view level, const std::optional<std::filesystem::path>& file) {
  auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") {
    return InvalidArgument("unknown log level '" + std::string(level) +
                           "' (trace, debug, info, warn, error, off)");
  }
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (file) {
    // Create it private before spdlog opens it for appending.
    int fd = ::open(file->c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
      return IoError("cannot open log file " + file->string() + ": " + std::strerror(errno));
    ::fchmod(fd, 0600);
    ::close(fd);
    sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(file->string()));
  }
  auto logger = std::make_shared<spdlog::logger>("dmagent", sinks.begin(), sinks.end());
  logger->set_level(lvl);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  spdlog::set_default_logger(logger);
  return Status::Ok();
}

}  // namespace dm
