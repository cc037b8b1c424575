#include "base/log_sinks.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/ascii.h"
#include "base/log_fields.h"

namespace dm::log_internal {
namespace {

// Quoted when a value would not read back as one word; values are Printable already.
void AppendValue(spdlog::memory_buf_t& dest, const std::string& value) {
  const bool quote = value.empty() || value.find_first_of(" \"=") != std::string::npos;
  if (!quote) {
    dest.append(value.data(), value.data() + value.size());
    return;
  }
  dest.push_back('"');
  for (char c : value) {
    if (c == '"') dest.push_back('\\');
    dest.push_back(c);
  }
  dest.push_back('"');
}

class FieldsFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    for (const auto& [name, value] : CurrentLogFields()) {
      dest.push_back(' ');
      dest.append(name.data(), name.data() + name.size());
      dest.push_back('=');
      AppendValue(dest, value);
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<FieldsFlag>();
  }
};

std::string UtcTimestamp(spdlog::log_clock::time_point t) {
  const auto since = t.time_since_epoch();
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since - secs).count();
  const std::time_t tt = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

class JsonFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    nlohmann::ordered_json line;
    line["time"] = UtcTimestamp(msg.time);
    const auto level = spdlog::level::to_string_view(msg.level);
    line["level"] = std::string(level.data(), level.size());
    line["message"] = std::string(msg.payload.data(), msg.payload.size());
    for (const auto& [name, value] : CurrentLogFields()) line[name] = value;
    // Replace, never throw: a log call must not fail on a byte the escaping let through.
    const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(text.data(), text.data() + text.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

int SyslogPriority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return 7;  // LOG_DEBUG
    case spdlog::level::info:
      return 6;  // LOG_INFO
    case spdlog::level::warn:
      return 4;  // LOG_WARNING
    case spdlog::level::err:
      return 3;  // LOG_ERR
    case spdlog::level::critical:
      return 2;  // LOG_CRIT
    default:
      return 6;
  }
}

class JournalSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit JournalSink(std::string identifier) : identifier_(std::move(identifier)) {
    set_formatter_(MakeTextFormatter());
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::vector<std::string> entries;
    entries.push_back("MESSAGE=" + std::string(msg.payload.data(), msg.payload.size()));
    entries.push_back("PRIORITY=" + std::to_string(SyslogPriority(msg.level)));
    entries.push_back("SYSLOG_IDENTIFIER=" + identifier_);
    for (const auto& [name, value] : CurrentLogFields()) {
      entries.push_back(AsciiUpper(name) + "=" + value);
    }
    std::vector<iovec> iov;
    iov.reserve(entries.size());
    for (std::string& e : entries) iov.push_back({e.data(), e.size()});
    if (sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) >= 0) return;
    // journald is gone (stopped, or never there): the record is not lost.
    spdlog::memory_buf_t text;
    formatter_->format(msg, text);
    (void)!::write(STDERR_FILENO, text.data(), text.size());
  }
  void flush_() override {}

 private:
  const std::string identifier_;
};

}  // namespace

std::unique_ptr<spdlog::formatter> MakeTextFormatter() {
  auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  f->add_flag<FieldsFlag>('&').set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v%&");
  return f;
}

std::unique_ptr<spdlog::formatter> MakeJsonFormatter() { return std::make_unique<JsonFormatter>(); }

spdlog::sink_ptr MakeJournalSink(std::string identifier) {
  return std::make_shared<JournalSink>(std::move(identifier));
}

}  // namespace dm::log_internal
