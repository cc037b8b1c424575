#include "agent/enroll/form.h"

#include <cctype>
#include <cstdio>

#include "base/ascii.h"

namespace dm::enroll {
namespace {

std::string DecodeEntities(std::string_view s) {
  static const std::pair<std::string_view, char> kEntities[] = {{"&amp;", '&'},  {"&quot;", '"'},
                                                                {"&lt;", '<'},   {"&gt;", '>'},
                                                                {"&#39;", '\''}, {"&apos;", '\''}};
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    bool replaced = false;
    if (s[i] == '&') {
      for (const auto& [e, c] : kEntities) {
        if (s.substr(i, e.size()) == e) {
          out.push_back(c);
          i += e.size() - 1;
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out.push_back(s[i]);
  }
  return out;
}

// Attributes of the tag starting at `tag` (just after "<name"), up to '>'.
std::vector<std::pair<std::string, std::string>> Attributes(std::string_view tag) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t i = 0;
  while (i < tag.size()) {
    while (i < tag.size() && (std::isspace(static_cast<unsigned char>(tag[i])) || tag[i] == '/'))
      ++i;
    const size_t n0 = i;
    while (i < tag.size() && tag[i] != '=' && !std::isspace(static_cast<unsigned char>(tag[i])) &&
           tag[i] != '/') {
      ++i;
    }
    std::string name = AsciiLower(tag.substr(n0, i - n0));
    if (name.empty()) {
      ++i;
      continue;
    }
    std::string value;
    if (i < tag.size() && tag[i] == '=') {
      ++i;
      if (i < tag.size() && (tag[i] == '"' || tag[i] == '\'')) {
        const char q = tag[i++];
        const size_t end = tag.find(q, i);
        value =
            std::string(tag.substr(i, end == std::string_view::npos ? tag.size() - i : end - i));
        i = end == std::string_view::npos ? tag.size() : end + 1;
      } else {
        const size_t v0 = i;
        while (i < tag.size() && !std::isspace(static_cast<unsigned char>(tag[i]))) ++i;
        value = std::string(tag.substr(v0, i - v0));
      }
    }
    out.emplace_back(std::move(name), DecodeEntities(value));
  }
  return out;
}

std::string AttrOf(const std::vector<std::pair<std::string, std::string>>& attrs,
                   std::string_view name) {
  for (const auto& [n, v] : attrs) {
    if (n == name) return v;
  }
  return {};
}

void AppendPair(std::string& out, std::string_view name, std::string_view value) {
  if (!out.empty()) out.push_back('&');
  out += UrlEncode(name) + "=" + UrlEncode(value);
}

}  // namespace

Result<HtmlForm> ParseHtmlForm(std::string_view html, size_t max_bytes) {
  if (html.size() > max_bytes) return ResourceExhausted("sign-in page too large");
  const std::string lower = AsciiLower(html);
  const size_t start = lower.find("<form");
  if (start == std::string::npos) return InvalidArgument("the page holds no <form>");
  const size_t end_tag = lower.find('>', start);
  if (end_tag == std::string::npos) return InvalidArgument("unterminated <form> tag");
  size_t end = lower.find("</form", end_tag);
  if (end == std::string::npos) end = lower.size();
  HtmlForm form;
  form.action = AttrOf(Attributes(html.substr(start + 5, end_tag - start - 5)), "action");
  for (size_t i = lower.find("<input", end_tag); i != std::string::npos && i < end;
       i = lower.find("<input", i + 6)) {
    const size_t close = lower.find('>', i);
    if (close == std::string::npos) break;
    auto attrs = Attributes(html.substr(i + 6, close - i - 6));
    std::string name = AttrOf(attrs, "name");
    if (!name.empty()) form.fields.emplace_back(std::move(name), AttrOf(attrs, "value"));
  }
  return form;
}

std::string UrlEncode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

Result<std::string> ResolveUrl(std::string_view base, std::string_view action) {
  if (action.empty()) return std::string(base);
  if (action.rfind("https://", 0) == 0) return std::string(action);
  if (action.front() != '/' || action.rfind("//", 0) == 0) {
    return InvalidArgument("unsupported form action '" + std::string(action) + "'");
  }
  const size_t host_start = base.find("://");
  if (host_start == std::string_view::npos) return InvalidArgument("bad base URL");
  const size_t path = base.find('/', host_start + 3);
  return std::string(base.substr(0, path)) + std::string(action);
}

SecretBytes EncodeForm(const HtmlForm& form, std::string_view username, const SecretBytes& password,
                       const SecretBytes& otp) {
  std::string out;
  bool has_user = false, has_password = false, has_otp = false;
  for (const auto& [n, v] : form.fields) {
    if (n == "username") {
      AppendPair(out, n, username);
      has_user = true;
    } else if (n == "password") {
      AppendPair(out, n, password.view());
      has_password = true;
    } else if (n == "otp") {
      AppendPair(out, n, otp.view());
      has_otp = true;
    } else {
      AppendPair(out, n, v);
    }
  }
  if (!has_user) AppendPair(out, "username", username);
  if (!has_password) AppendPair(out, "password", password.view());
  if (!has_otp && !otp.empty()) AppendPair(out, "otp", otp.view());
  SecretBytes body(out);
  std::fill(out.begin(), out.end(), '\0');
  return body;
}

}  // namespace dm::enroll
