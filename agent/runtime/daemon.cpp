#include "agent/runtime/daemon.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>

#include "agent/runtime/enrollment.h"
#include "agent/runtime/sync.h"
#include "csp/dmclient.h"

namespace dm::agent {
namespace {

enum class Wake { kTimeout, kStop, kReload };

// Sleeps until `deadline`, a stop signal or SIGHUP. The signals are blocked for the whole
// daemon (and its session children) and collected here, so a signal during a session is only
// seen between sessions and a session is never cut in half.
Wake WaitForSignal(const sigset_t& set, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Wake::kTimeout;
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(left.count() / 1000);
    ts.tv_nsec = static_cast<long>((left.count() % 1000) * 1'000'000);
    int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig == SIGTERM || sig == SIGINT) {
      spdlog::info("received {}, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      return Wake::kStop;
    }
    if (sig == SIGHUP) return Wake::kReload;
    if (sig < 0 && errno == EINTR) continue;
    if (sig < 0) return Wake::kTimeout;
  }
}

Result<csp::PollSchedule> Schedule(Device& device) {
  DM_ASSIGN_OR_RETURN(auto providers, csp::ListProviders(device.db()));
  if (providers.empty()) return csp::BuildPollSchedule(csp::PollSettings{});
  return csp::ReadPollSchedule(device.db(), providers.front());
}

// One more failure in a row, and the exponential backoff it earns (capped by max_backoff).
std::chrono::milliseconds NextBackoff(const DaemonOptions& options, DaemonCounters& counters) {
  ++counters.failures;
  return std::min<std::chrono::milliseconds>(
      options.initial_backoff * (1 << std::min(counters.failures - 1, 16)), options.max_backoff);
}

// What a session child tells the daemon through a pipe.
struct PassReport {
  int64_t wait_ms = 0;
  DaemonCounters counters;
  int fatal_code = 0;  // Code of an error retrying cannot fix; 0: none
  std::array<char, 480> fatal_message{};
};

bool WriteAll(int fd, const void* data, size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool ReadAll(int fd, void* data, size_t n) {
  auto* p = static_cast<char*>(data);
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// In the child: open the device, run one pass, report it.
[[noreturn]] void RunChild(int fd, const DeviceOpener& open_device, const DaemonOptions& options,
                           DaemonCounters counters) {
  PassReport report;
  Result<std::chrono::milliseconds> wait = [&]() -> Result<std::chrono::milliseconds> {
    auto device = open_device();
    if (!device.ok()) {
      // The database busy with another dmagent command is worth waiting for; a missing,
      // damaged or unreadable one is not.
      const Code code = device.error().code();
      if (code != Code::kUnavailable && code != Code::kDeadlineExceeded) return device.error();
      const auto backoff = NextBackoff(options, counters);
      spdlog::warn("cannot open the device ({}); retrying in {} s", device.error().ToString(),
                   std::chrono::duration_cast<std::chrono::seconds>(backoff).count());
      return backoff;
    }
    return RunDaemonPass(**device, options, counters);
  }();
  if (wait.ok()) {
    report.wait_ms = wait->count();
    report.counters = counters;
  } else {
    report.fatal_code = static_cast<int>(wait.error().code());
    std::snprintf(report.fatal_message.data(), report.fatal_message.size(), "%s",
                  wait.error().message().c_str());
  }
  spdlog::default_logger()->flush();
  _exit(WriteAll(fd, &report, sizeof report) ? 0 : 1);
}

}  // namespace

Result<std::chrono::milliseconds> RunDaemonPass(Device& device, const DaemonOptions& options,
                                                DaemonCounters& counters) {
  DM_ASSIGN_OR_RETURN(EnrollmentState enrollment, LoadEnrollment(device.db()));
  if (!enrollment.enrolled()) {
    return FailedPrecondition("the device is not enrolled: run `dmagent enroll` first");
  }
  auto result = RunSession(device);
  DM_ASSIGN_OR_RETURN(csp::PollSchedule schedule, Schedule(device));
  const std::chrono::milliseconds regular =
      options.poll_override_seconds > 0
          ? std::chrono::milliseconds(std::chrono::seconds(options.poll_override_seconds))
          : std::chrono::milliseconds(schedule.IntervalBefore(counters.polls));
  if (result.ok()) {
    counters.failures = 0;
    ++counters.polls;
    return regular;
  }
  const Status& st = result.error();
  if (st.code() == Code::kIoError || st.code() == Code::kCorruption) return st;
  // Never later than the next regular poll would have been.
  const auto wait = std::min(NextBackoff(options, counters), regular);
  spdlog::warn("session failed ({}); retrying in {} s", st.ToString(),
               std::chrono::duration_cast<std::chrono::seconds>(wait).count());
  return wait;
}

Status RunDaemon(const DeviceOpener& open_device, DaemonOptions options,
                 const ConfigReloader& reload) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  spdlog::info("dmagent daemon started");
  DaemonCounters counters;
  for (int attempts = 1;; ++attempts) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      return Internal(std::string("pipe: ") + std::strerror(errno));
    }
    spdlog::default_logger()->flush();
    const pid_t child = ::fork();
    if (child < 0) {
      ::close(fds[0]);
      ::close(fds[1]);
      return Internal(std::string("fork: ") + std::strerror(errno));
    }
    if (child == 0) {
      ::close(fds[0]);
      RunChild(fds[1], open_device, options, counters);
    }
    ::close(fds[1]);
    PassReport report;
    const bool got = ReadAll(fds[0], &report, sizeof report);
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    std::chrono::milliseconds wait{0};
    if (!got) {
      // The session process died (a crash, or killed): back off as after a failed session.
      wait = NextBackoff(options, counters);
      spdlog::error("the session process ended abnormally ({} {}); retrying in {} s",
                    WIFSIGNALED(status) ? "signal" : "exit status",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
                    std::chrono::duration_cast<std::chrono::seconds>(wait).count());
    } else if (report.fatal_code != 0) {
      report.fatal_message.back() = '\0';
      return Status(static_cast<Code>(report.fatal_code), report.fatal_message.data());
    } else {
      counters = report.counters;
      wait = std::chrono::milliseconds(report.wait_ms);
    }
    if (options.max_sessions > 0 && attempts >= options.max_sessions) break;
    auto deadline = std::chrono::steady_clock::now() + wait;
    Wake wake;
    while ((wake = WaitForSignal(set, deadline)) == Wake::kReload) {
      if (!reload) continue;
      auto reloaded = reload();
      if (!reloaded.ok()) {
        spdlog::error("configuration not reloaded, keeping the running one: {}",
                      reloaded.error().ToString());
        continue;
      }
      options = *reloaded;
      spdlog::info("configuration reloaded (poll-seconds {})", options.poll_override_seconds);
      if (options.poll_override_seconds > 0) {
        deadline = std::min(deadline, std::chrono::steady_clock::now() +
                                          std::chrono::seconds(options.poll_override_seconds));
      }
    }
    if (wake == Wake::kStop) break;
  }
  return Status::Ok();
}

}  // namespace dm::agent
