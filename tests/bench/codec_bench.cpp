// SyncML decode and encode of realistic server messages, each against its floor measured in
// the same iterations on the same bytes: tinyxml2 parsing them (decode) and tinyxml2's
// XMLPrinter printing the parsed document (encode). The two runs alternate which goes first,
// so neither always finds the caches warmed by the other. Counters: floor_us (the floor's mean
// time), ratio (ours / floor), bytes, commands.
#include <benchmark/benchmark.h>
#include <tinyxml2.h>

#include <string>

#include "agent/syncml/codec.h"
#include "tests/bench/bench_util.h"
#include "tests/bench/messages.h"

namespace dm::bench {
namespace {

const std::string& Profile20() {
  static const std::string xml = ProfileMessage(HelloProfile20());
  return xml;
}

const std::string& Package1000() {
  static const std::string xml = LargePackage();
  return xml;
}

using Corpus = const std::string& (*)();

// Runs `floor` and `ours` once each per iteration, alternating the order; the iteration's time
// is ours (manual time), the floor's total goes into the counters.
template <typename Floor, typename Ours>
void Compare(benchmark::State& state, Floor floor, Ours ours, size_t bytes, size_t commands) {
  double floor_total = 0, ours_total = 0;
  bool floor_first = false;
  for (auto _ : state) {
    floor_first = !floor_first;
    double t_floor = 0, t_ours = 0;
    auto time = [](auto& f) {
      const auto t0 = SteadyClock::now();
      f();
      return Seconds(SteadyClock::now() - t0);
    };
    if (floor_first) {
      t_floor = time(floor);
      t_ours = time(ours);
    } else {
      t_ours = time(ours);
      t_floor = time(floor);
    }
    floor_total += t_floor;
    ours_total += t_ours;
    state.SetIterationTime(t_ours);
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["floor_us"] = floor_total / n * 1e6;
  state.counters["ratio"] = floor_total > 0 ? ours_total / floor_total : 0;
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["commands"] = static_cast<double>(commands);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes));
}

void BM_Decode(benchmark::State& state, Corpus corpus) {
  const std::string& xml = corpus();
  Result<syncml::Message> check = syncml::Decode(xml);
  if (!check.ok()) {
    state.SkipWithError(check.status().ToString().c_str());
    return;
  }
  auto floor = [&] {
    tinyxml2::XMLDocument doc;
    doc.Parse(xml.data(), xml.size());
    benchmark::DoNotOptimize(doc.RootElement());
  };
  auto ours = [&] {
    Result<syncml::Message> m = syncml::Decode(xml);
    benchmark::DoNotOptimize(m);
  };
  Compare(state, floor, ours, xml.size(), check->commands.size());
}

void BM_Encode(benchmark::State& state, Corpus corpus) {
  const std::string& xml = corpus();
  Result<syncml::Message> message = syncml::Decode(xml);
  if (!message.ok()) {
    state.SkipWithError(message.status().ToString().c_str());
    return;
  }
  tinyxml2::XMLDocument doc;
  if (doc.Parse(xml.data(), xml.size()) != tinyxml2::XML_SUCCESS) {
    state.SkipWithError("tinyxml2 does not parse the corpus");
    return;
  }
  // Both print compactly: what the agent and dmserver send (EncodeOptions defaults).
  auto floor = [&] {
    tinyxml2::XMLPrinter printer(nullptr, /*compact=*/true);
    doc.Print(&printer);
    benchmark::DoNotOptimize(printer.CStr());
  };
  auto ours = [&] {
    std::string out = syncml::Encode(*message);
    benchmark::DoNotOptimize(out.data());
  };
  Compare(state, floor, ours, xml.size(), message->commands.size());
}

BENCHMARK_CAPTURE(BM_Decode, profile20, &Profile20)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Decode, package1000, &Package1000)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Encode, profile20, &Profile20)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Encode, package1000, &Package1000)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace dm::bench
