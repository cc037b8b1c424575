// What dmagent and dmserver share on the command line: --version, defaults shown in --help,
// and one way of reporting a parse error (a suggestion for a mistyped subcommand, the list of
// subcommands when one is missing, exit status kExitUsage).
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace dm {

// Before any option is added: --version prints VersionLine(program); every option's default
// is shown in --help.
void ConfigureCli(CLI::App& app, std::string_view program);

// The exit status for a parse error, after printing it to stderr (help and version to stdout,
// status 0).
int ExitForParseError(CLI::App& app, const CLI::ParseError& error, std::string_view program);

// The candidate nearest to `word` by edit distance, when it is close enough to be a typo.
std::optional<std::string> NearestWord(std::string_view word,
                                       std::span<const std::string> candidates);

}  // namespace dm
