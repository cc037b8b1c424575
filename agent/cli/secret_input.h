// PINs, passwords and one-time codes come from standard input, one per line, or from a
// terminal prompt with echo off; never from the command line, where any local user could
// read them in /proc.
#pragma once

#include <string_view>

#include "base/secret.h"
#include "base/status.h"

namespace dm::agent::cli {

// Reads one line (without the newline). On a terminal, prints `prompt` to stderr and turns
// echo off while reading. NotFound at end of input.
Result<SecretBytes> ReadSecretLine(std::string_view prompt);
// Asks twice on a terminal and checks both agree; reads one line otherwise.
Result<SecretBytes> ReadNewSecret(std::string_view prompt);

}  // namespace dm::agent::cli
