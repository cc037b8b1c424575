// Shared by the fuzz targets: a private temporary directory that lives for the process.
#pragma once

#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace dm::fuzz {

// mkdtemp under $TMPDIR (or /tmp); removed at normal exit. libFuzzer leaves through exit(), so
// only a crash leaves the directory behind, next to the crashing input, for a look.
inline std::filesystem::path TempDir(const char* prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/" + prefix + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  static std::filesystem::path* dirs[8] = {};
  static int n = 0;
  if (n < 8) {
    dirs[n++] = new std::filesystem::path(tmpl);
    if (n == 1) {
      std::atexit([] {
        for (int i = 0; i < n; ++i) {
          std::error_code ec;
          std::filesystem::remove_all(*dirs[i], ec);
          delete dirs[i];
        }
      });
    }
  }
  return tmpl;
}

// Dies with a message: fuzz set-up that fails is a broken harness, not a finding.
[[noreturn]] inline void SetupFailed(const std::string& what) {
  std::fprintf(stderr, "fuzz set-up failed: %s\n", what.c_str());
  std::abort();
}

}  // namespace dm::fuzz
