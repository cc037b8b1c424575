// What dmagent and dmserver share on the command line: --version, defaults shown in --help,
// and one way of reporting a parse error (a suggestion for a mistyped subcommand, the list of
// subcommands when one is missing, exit status kExitUsage).
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/log.h"

namespace dm {

// Before any option is added: --version prints VersionLine(program); every option's default
// is shown in --help; --config names a configuration file (TOML-style `key = value`, a
// `[command]` section for a command's options), `config_default` when not given, which may be
// missing.
void ConfigureCli(CLI::App& app, std::string_view program, std::string config_default);

// --log-level (checked; `level_variable` may set it, as an EnvOption), --log-format and
// --log-file, into `options`, whose values are the defaults shown.
void AddLoggingOptions(CLI::App& app, LogOptions& options, std::string_view level_variable);

// An option that an environment variable can set, e.g. {"--state-dir", "DMAGENT_STATE_DIR"}.
// The option must take its last value (CLI::MultiOptionPolicy::TakeLast).
struct EnvOption {
  const char* flag;
  const char* variable;
};

// The arguments to parse, so that precedence is flags, then environment, then file, then
// defaults. CLI11 reads the configuration file only for options the command line did not
// give, so each variable that is set goes on the command line before the user's arguments,
// where the user's own flag, coming later, still wins.
std::vector<std::string> ArgsWithEnvironment(int argc, const char* const* argv,
                                             std::span<const EnvOption> env);

// app.parse of ArgsWithEnvironment (throws CLI::ParseError as app.parse does).
void ParseWithEnvironment(CLI::App& app, int argc, const char* const* argv,
                          std::span<const EnvOption> env);

// The exit status for a parse error, after printing it to stderr (help and version to stdout,
// status 0).
int ExitForParseError(CLI::App& app, const CLI::ParseError& error, std::string_view program);

// The candidate nearest to `word` by edit distance, when it is close enough to be a typo.
std::optional<std::string> NearestWord(std::string_view word,
                                       std::span<const std::string> candidates);

}  // namespace dm
