// The little HTML a Federated sign-in needs: the first <form> of a page (action and inputs),
// form encoding and URL resolution. Not a general HTML parser: sign-in pages are simple forms.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/secret.h"
#include "base/status.h"

namespace dm::enroll {

struct HtmlForm {
  std::string action;
  std::vector<std::pair<std::string, std::string>> fields;  // input name -> value, in order
};

// InvalidArgument when the page has no <form>. Attribute values are entity-decoded.
Result<HtmlForm> ParseHtmlForm(std::string_view html, size_t max_bytes = 256 * 1024);

// Percent-encoding of everything but RFC 3986 unreserved characters.
std::string UrlEncode(std::string_view s);

// `action` against `base`: an https:// URL, an absolute path or empty (= base).
Result<std::string> ResolveUrl(std::string_view base, std::string_view action);

// application/x-www-form-urlencoded: the form's fields, with username, password and otp filled
// in (added when the form lacks them; otp only when given).
SecretBytes EncodeForm(const HtmlForm& form, std::string_view username, const SecretBytes& password,
                       const SecretBytes& otp);

}  // namespace dm::enroll
