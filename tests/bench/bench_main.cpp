// dm_bench: Google Benchmark's main, with the agent's logging kept quiet (info lines per
// session would drown the output) and the shared worlds torn down before exit.
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include "tests/bench/bench_util.h"

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  dm::bench::RunTeardown();
  return 0;
}
