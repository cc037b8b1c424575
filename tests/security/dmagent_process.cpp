#include "tests/security/dmagent_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

namespace dm::testing {
namespace {

using Clock = std::chrono::steady_clock;

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

ProcessResult RunProcess(const std::filesystem::path& binary, const std::vector<std::string>& args,
                         const ProcessOptions& options) {
  ProcessResult r;
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    r.exit_code = 127;
    r.err = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  std::vector<std::string> argv_s;
  argv_s.push_back(binary.string());
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The environment is built before the fork: the child only calls async-signal-safe code.
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const bool overridden = std::any_of(
        options.env.begin(), options.env.end(),
        [&](const auto& kv) { return entry.substr(0, kv.first.size() + 1) == kv.first + "="; });
    if (!overridden) env_s.emplace_back(entry);
  }
  for (const auto& [name, value] : options.env) env_s.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (std::string& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  const Clock::time_point start = Clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) {
    r.exit_code = 127;
    r.err = std::string("fork: ") + std::strerror(errno);
    return r;
  }
  if (pid == 0) {
    ::dup2(in[0], STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    ::execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  // The input is a few lines: it fits the pipe buffer, so writing it all first cannot block.
  // A process that exits without reading (a refused argument) makes the write raise SIGPIPE,
  // which would kill the test: blocked in this thread for the write, it only fails it with
  // EPIPE, and a SIGPIPE left pending is taken before the mask is restored.
  sigset_t pipe_set, old_mask;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
  size_t done = 0;
  while (done < options.stdin_data.size()) {
    ssize_t n = ::write(in[1], options.stdin_data.data() + done, options.stdin_data.size() - done);
    if (n <= 0) break;  // EPIPE: the process is gone already
    done += static_cast<size_t>(n);
  }
  CloseFd(in[1]);
  sigset_t pending;
  if (::sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
    const timespec zero{0, 0};
    ::sigtimedwait(&pipe_set, nullptr, &zero);
  }
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);

  int fds[2] = {out[0], err[0]};
  std::string* sinks[2] = {&r.out, &r.err};
  const Clock::time_point deadline = start + options.timeout;
  bool kill_pending = options.kill_after.has_value();
  bool reaped = false;
  int status = 0;
  while (fds[0] >= 0 || fds[1] >= 0) {
    const Clock::time_point now = Clock::now();
    Clock::time_point wake = deadline;
    if (kill_pending) wake = std::min(wake, start + *options.kill_after);
    if (now >= wake) {
      if (kill_pending && now >= start + *options.kill_after) {
        kill_pending = false;
        // Only a process that is still running is killed (and counts as killed).
        if (!reaped && ::waitpid(pid, &status, WNOHANG) == pid) reaped = true;
        if (!reaped) {
          ::kill(pid, SIGKILL);
          r.killed = true;
        }
        continue;
      }
      ::kill(pid, SIGKILL);  // past the timeout: a hang is a failure, never a stuck test
      r.timed_out = true;
      break;
    }
    pollfd p[2];
    int n = 0;
    int map[2];
    for (int i = 0; i < 2; ++i) {
      if (fds[i] >= 0) {
        p[n] = {fds[i], POLLIN, 0};
        map[n++] = i;
      }
    }
    const auto wait_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count() + 1;
    // Sub-millisecond kill delays: poll with 0 ms and spin on the clock.
    const int timeout_ms = kill_pending && *options.kill_after < std::chrono::milliseconds(1)
                               ? 0
                               : static_cast<int>(std::min<int64_t>(wait_ms, 1000));
    const int ready = ::poll(p, static_cast<nfds_t>(n), timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    for (int i = 0; i < n && ready > 0; ++i) {
      if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char buf[4096];
      const ssize_t got = ::read(p[i].fd, buf, sizeof buf);
      if (got > 0) {
        sinks[map[i]]->append(buf, static_cast<size_t>(got));
      } else {
        CloseFd(fds[map[i]]);
      }
    }
  }
  for (int& fd : fds) CloseFd(fd);
  while (!reaped && ::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signaled = true;
    r.signal = WTERMSIG(status);
  }
  return r;
}

}  // namespace dm::testing
