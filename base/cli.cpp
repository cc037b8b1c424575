#include "base/cli.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <vector>

#include "base/exit_code.h"
#include "base/version.h"

namespace dm {
namespace {

// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
// neighbours ("stauts") each cost one.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The innermost subcommand the parser got to: where a stray word was meant as a subcommand.
const CLI::App* Innermost(const CLI::App& app) {
  const CLI::App* at = &app;
  for (;;) {
    auto parsed = at->get_subcommands();
    if (parsed.empty()) return at;
    at = parsed.back();
  }
}

std::vector<std::string> SubcommandNames(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    names.push_back(sub->get_name());
  }
  return names;
}

std::string CommandPath(const CLI::App& app, std::string_view program) {
  std::vector<std::string> parts;
  for (const CLI::App* at = &app; at->get_parent() != nullptr; at = at->get_parent()) {
    parts.push_back(at->get_name());
  }
  std::string path(program);
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) path += " " + *it;
  return path;
}

}  // namespace

void ConfigureCli(CLI::App& app, std::string_view program, std::string config_default) {
  app.set_version_flag("--version", VersionLine(program), "print the version and git revision");
  app.set_config("--config", std::move(config_default),
                 "configuration file: `key = value` lines for the global options, a [command] "
                 "section for a command's");
  app.option_defaults()->always_capture_default();
}

void AddLoggingOptions(CLI::App& app, LogOptions& options, std::string_view level_variable) {
  app.add_option("--log-level", options.level,
                 "least severe level logged ($" + std::string(level_variable) + ")")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  const std::map<std::string, LogFormat> formats = {{"auto", LogFormat::kAuto},
                                                    {"text", LogFormat::kText},
                                                    {"json", LogFormat::kJson},
                                                    {"journal", LogFormat::kJournal}};
  app.add_option("--log-format", options.format, "auto: the journal under systemd, else text")
      ->type_name("TEXT")
      ->transform(CLI::CheckedTransformer(formats).description("{auto,text,json,journal}"))
      ->default_str("auto")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--log-file", options.file,
                 "also log to this file (0600); SIGHUP reopens it after rotation")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

std::vector<std::string> ArgsWithEnvironment(int argc, const char* const* argv,
                                             std::span<const EnvOption> env) {
  std::vector<std::string> args;
  if (argc > 0) args.emplace_back(argv[0]);
  for (const EnvOption& e : env) {
    const char* value = std::getenv(e.variable);
    if (value != nullptr && *value != '\0') args.push_back(std::string(e.flag) + "=" + value);
  }
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return args;
}

void ParseWithEnvironment(CLI::App& app, int argc, const char* const* argv,
                          std::span<const EnvOption> env) {
  std::vector<std::string> args = ArgsWithEnvironment(argc, argv, env);
  // CLI11 takes the arguments without the program name, last first.
  std::vector<std::string> reversed(args.rbegin(), args.rend() - (args.empty() ? 0 : 1));
  app.parse(reversed);
}

std::optional<std::string> NearestWord(std::string_view word,
                                       std::span<const std::string> candidates) {
  std::optional<std::string> best;
  size_t best_distance = 0;
  for (const std::string& c : candidates) {
    const size_t d = EditDistance(word, c);
    if (!best || d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  // A typo, not another word: at most 2 edits, and fewer than half the word.
  if (!best || best_distance > 2 || best_distance * 2 >= std::max<size_t>(word.size(), 2)) {
    return std::nullopt;
  }
  return best;
}

int ExitForParseError(CLI::App& app, const CLI::ParseError& error, std::string_view program) {
  if (error.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
    return app.exit(error);  // --help, --version
  }
  const CLI::App* at = Innermost(app);
  const std::string where = CommandPath(*at, program);
  const std::vector<std::string> names = SubcommandNames(*at);
  std::string names_text;
  for (const std::string& n : names) names_text += (names_text.empty() ? "" : ", ") + n;

  const bool extras = dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr;
  const bool required = dynamic_cast<const CLI::RequiredError*>(&error) != nullptr;
  if ((extras || required) && !names.empty()) {
    // remaining() holds the words the parser could not place, in order: a mistyped command is
    // the first that is not an option.
    for (const std::string& word : at->remaining()) {
      if (word.empty() || word[0] == '-') continue;
      std::cerr << where << ": unknown command '" << word << "'";
      if (auto near = NearestWord(word, names)) std::cerr << "; did you mean '" << *near << "'?";
      std::cerr << "\n" << where << " commands: " << names_text << "\n";
      return kExitUsage;
    }
  }
  if (required && !names.empty() &&
      std::string_view(error.what()).find("ubcommand") != std::string_view::npos) {
    std::cerr << where << ": a command is required: " << names_text << "\n"
              << "see '" << where << " --help'\n";
    return kExitUsage;
  }
  std::cerr << where << ": " << error.what() << "\nsee '" << where << " --help'\n";
  return kExitUsage;
}

}  // namespace dm
