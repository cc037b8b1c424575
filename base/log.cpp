#include "base/log.h"

#include <fcntl.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/log_sinks.h"

namespace dm {
namespace {

// Length of the valid UTF-8 sequence at s[i] (a code point >= U+00A0, so C1 controls do not
// count), or 0.
size_t Utf8Printable(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  uint32_t cp = c & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(k) & 0x3F);
  }
  const bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
  if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp < 0xA0) return 0;
  return n;
}

// Escapes every message before the real sinks format it.
class PrintableSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit PrintableSink(std::vector<spdlog::sink_ptr> sinks) : sinks_(std::move(sinks)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string text = Printable(std::string_view(msg.payload.data(), msg.payload.size()));
    spdlog::details::log_msg copy = msg;
    copy.payload = text;
    for (auto& s : sinks_) {
      if (s->should_log(copy.level)) s->log(copy);
    }
  }
  void flush_() override {
    for (auto& s : sinks_) s->flush();
  }

 private:
  std::vector<spdlog::sink_ptr> sinks_;
};

// A log file that SIGHUP can open again after logrotate moved it (spdlog's file sink cannot).
class ReopenableFileSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit ReopenableFileSink(std::filesystem::path path) : path_(std::move(path)) {}
  ~ReopenableFileSink() override {
    if (fd_ >= 0) ::close(fd_);
  }

  // Created private (0600) if missing; a kept file is made private too.
  Status Reopen() {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
      return IoError("cannot open log file " + path_.string() + ": " + std::strerror(errno));
    ::fchmod(fd, 0600);
    std::lock_guard lock(mutex_);
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
    return Status::Ok();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t text;
    formatter_->format(msg, text);
    // O_APPEND: one write per record, so lines of two processes never interleave.
    if (fd_ >= 0) (void)!::write(fd_, text.data(), text.size());
  }
  void flush_() override {}

 private:
  const std::filesystem::path path_;
  int fd_ = -1;
};

// Standard error, shared by the log records and the progress line.
class Terminal {
 public:
  static Terminal& Get() {
    static Terminal* t = new Terminal();  // never destroyed: used until the very end
    return *t;
  }

  void WriteRecord(std::string_view text) {
    std::lock_guard lock(mutex_);
    if (!progress_.empty()) Write("\r\033[K");
    Write(text);
    if (!progress_.empty()) Write(progress_);
  }
  void ShowProgress(std::string_view line) {
    std::lock_guard lock(mutex_);
    if (!tty_) {
      Write(std::string(line) + "\n");
      return;
    }
    progress_ = line;
    Write("\r\033[K" + progress_);
  }
  // Whether standard error is a terminal, looked at again (InitLogging).
  void Reset() {
    std::lock_guard lock(mutex_);
    tty_ = ::isatty(STDERR_FILENO) != 0;
    progress_.clear();
  }
  void EndProgress() {
    std::lock_guard lock(mutex_);
    if (!progress_.empty()) Write("\n");
    progress_.clear();
  }

 private:
  Terminal() : tty_(::isatty(STDERR_FILENO) != 0) {}
  static void Write(std::string_view text) {
    while (!text.empty()) {
      const ssize_t n = ::write(STDERR_FILENO, text.data(), text.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      text.remove_prefix(static_cast<size_t>(n));
    }
  }

  std::mutex mutex_;
  bool tty_;
  std::string progress_;
};

class StderrSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t text;
    formatter_->format(msg, text);
    Terminal::Get().WriteRecord(std::string_view(text.data(), text.size()));
  }
  void flush_() override {}
};

std::mutex log_file_mutex;
std::shared_ptr<ReopenableFileSink> log_file;

}  // namespace

std::string Printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
      ++i;
    } else if (c == '\\') {
      out += "\\\\";
      ++i;
    } else if (c == '\n') {
      out += "\\n";
      ++i;
    } else if (c == '\t') {
      out += "\\t";
      ++i;
    } else if (size_t n = c >= 0x80 ? Utf8Printable(text, i) : 0; n > 0) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
      ++i;
    }
  }
  return out;
}

bool StderrIsJournal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  unsigned long long dev = 0, ino = 0;
  char end = 0;
  if (std::sscanf(stream, "%llu:%llu%c", &dev, &ino, &end) != 2) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

Status InitLogging(const LogOptions& options) {
  auto lvl = spdlog::level::from_str(options.level);
  if (lvl == spdlog::level::off && options.level != "off") {
    return InvalidArgument("unknown log level '" + options.level +
                           "' (trace, debug, info, warn, error, off)");
  }
  LogFormat format = options.format;
  if (format == LogFormat::kAuto)
    format = StderrIsJournal() ? LogFormat::kJournal : LogFormat::kText;
  auto make_formatter = [&] {
    return format == LogFormat::kJson ? log_internal::MakeJsonFormatter()
                                      : log_internal::MakeTextFormatter();
  };
  Terminal::Get().Reset();
  std::vector<spdlog::sink_ptr> sinks;
  if (format == LogFormat::kJournal) {
    sinks.push_back(log_internal::MakeJournalSink(options.program));
  } else {
    sinks.push_back(std::make_shared<StderrSink>());
    sinks.back()->set_formatter(make_formatter());
  }
  std::shared_ptr<ReopenableFileSink> file_sink;
  if (options.file) {
    file_sink = std::make_shared<ReopenableFileSink>(*options.file);
    DM_RETURN_IF_ERROR(file_sink->Reopen());
    file_sink->set_formatter(make_formatter());
    sinks.push_back(file_sink);
  }
  auto logger = std::make_shared<spdlog::logger>(options.program,
                                                 std::make_shared<PrintableSink>(std::move(sinks)));
  logger->set_level(lvl);
  spdlog::set_default_logger(logger);
  std::lock_guard lock(log_file_mutex);
  log_file = std::move(file_sink);
  return Status::Ok();
}

void ShowProgress(std::string_view line) { Terminal::Get().ShowProgress(line); }

void EndProgress() { Terminal::Get().EndProgress(); }

Status ReopenLogFile() {
  std::shared_ptr<ReopenableFileSink> sink;
  {
    std::lock_guard lock(log_file_mutex);
    sink = log_file;
  }
  return sink ? sink->Reopen() : Status::Ok();
}

}  // namespace dm
