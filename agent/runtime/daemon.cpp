#include "agent/runtime/daemon.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <ctime>

#include "agent/runtime/enrollment.h"
#include "agent/runtime/sync.h"
#include "csp/dmclient.h"

namespace dm::agent {
namespace {

// Sleeps up to `d`; true when SIGTERM/SIGINT arrived. The signals are blocked for the whole
// daemon and collected here, so a signal during a session is only seen between sessions and
// a session is never cut in half.
bool WaitForSignal(const sigset_t& set, std::chrono::milliseconds d) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(d.count() / 1000);
  ts.tv_nsec = static_cast<long>((d.count() % 1000) * 1'000'000);
  for (;;) {
    int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig == SIGTERM || sig == SIGINT) {
      spdlog::info("received {}, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      return true;
    }
    if (sig < 0 && errno == EINTR) continue;
    return false;  // timed out
  }
}

Result<csp::PollSchedule> Schedule(Device& device) {
  DM_ASSIGN_OR_RETURN(auto providers, csp::ListProviders(device.db()));
  if (providers.empty()) return csp::BuildPollSchedule(csp::PollSettings{});
  return csp::ReadPollSchedule(device.db(), providers.front());
}

}  // namespace

Status RunDaemon(Device& device, const DaemonOptions& options) {
  DM_ASSIGN_OR_RETURN(EnrollmentState enrollment, LoadEnrollment(device.db()));
  if (!enrollment.enrolled()) {
    return FailedPrecondition("the device is not enrolled: run `dmagent enroll` first");
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  spdlog::info("dmagent daemon started; management server {}", enrollment.management_url);
  int attempts = 0;
  int64_t polls = 0;
  int failures = 0;
  for (;;) {
    ++attempts;
    auto result = RunSession(device);
    std::chrono::milliseconds wait{0};
    DM_ASSIGN_OR_RETURN(csp::PollSchedule schedule, Schedule(device));
    std::chrono::milliseconds regular =
        options.poll_override_seconds > 0
            ? std::chrono::milliseconds(std::chrono::seconds(options.poll_override_seconds))
            : std::chrono::milliseconds(schedule.IntervalBefore(polls));
    if (result.ok()) {
      failures = 0;
      ++polls;
      wait = regular;
    } else {
      const Status& st = result.error();
      if (st.code() == Code::kIoError || st.code() == Code::kCorruption) return st;
      ++failures;
      auto backoff = options.initial_backoff * (1 << std::min(failures - 1, 16));
      wait = std::min<std::chrono::milliseconds>(
          std::min<std::chrono::milliseconds>(backoff, options.max_backoff), regular);
      spdlog::warn("session failed ({}); retrying in {} s", st.ToString(),
                   std::chrono::duration_cast<std::chrono::seconds>(wait).count());
    }
    if (options.max_sessions > 0 && attempts >= options.max_sessions) break;
    if (WaitForSignal(set, wait)) break;
  }
  return Status::Ok();
}

}  // namespace dm::agent
