// Identity: home-realm discovery and the sign-in pages (password + TOTP).
//
// GET|POST /federation/login?upn=U -> {"upn", "federated", "login_url", "login_host"}
//   Home-realm discovery by the UPN's domain, never by the user: an unknown user of a domain
//   gets exactly the answer a known one gets, so the endpoint tells nobody who exists.
//   A federated tenant's users sign in at the IdP host (https://<idp host>:<port>/adfs/ls/),
//   the others at https://<public host>:<port>/login. A device's web sign-in must allow-list
//   the IdP host (Policy Authentication/ConfigureWebSignInAllowedUrls) or the PIN reset flow
//   cannot reach the page.
// GET /login, GET /adfs/ls/ (IdP host only): an HTML form (username, password, otp).
// POST the same path, application/x-www-form-urlencoded: 200 HTML "Signed in as U" or 401.
// MS-MDE2 Federated enrollment: GET /adfs/ls/?appru=ms-app://...&login_hint=UPN carries appru
// in a hidden field; a successful POST answers with a form for appru whose hidden `wresult` is
// a signed user token (user_token.h) the enrollment service accepts once.
#include <spdlog/spdlog.h>

#include <cctype>

#include "samples/server/server_internal.h"
#include "samples/server/user_token.h"

namespace dm::server {
namespace {

using nlohmann::json;

std::string HostOf(const std::string& url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  size_t end = url.find_first_of(":/", start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// Where the IdP may hand a token back: Windows' enrollment app callbacks only, never a web
// URL that could carry the token elsewhere.
bool AllowedCallback(std::string_view appru) {
  constexpr std::string_view kScheme = "ms-app://";
  if (appru.size() <= kScheme.size() || appru.size() > 256 ||
      appru.substr(0, kScheme.size()) != kScheme) {
    return false;
  }
  for (char c : appru.substr(kScheme.size())) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_' &&
        c != '/') {
      return false;
    }
  }
  return true;
}

std::string TokenPage(std::string_view appru, std::string_view token) {
  return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Signed in</title></head>"
         "<body>\n<form method=\"post\" action=\"" +
         HtmlEscape(appru) + "\">\n<input type=\"hidden\" name=\"wresult\" value=\"" +
         HtmlEscape(token) +
         "\">\n<button type=\"submit\">Continue</button>\n</form>\n</body></html>\n";
}

std::string SignInPage(std::string_view title, std::string_view action, std::string_view user,
                       std::string_view message, std::string_view appru = {}) {
  std::string page = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" +
                     HtmlEscape(title) + "</title></head><body>\n<h1>" + HtmlEscape(title) +
                     "</h1>\n";
  if (!message.empty()) page += "<p role=\"alert\">" + HtmlEscape(message) + "</p>\n";
  page += "<form method=\"post\" action=\"" + HtmlEscape(action) +
          "\">\n<label>User name <input name=\"username\" autocomplete=\"username\" value=\"" +
          HtmlEscape(user) +
          "\"></label>\n<label>Password <input name=\"password\" type=\"password\" "
          "autocomplete=\"current-password\"></label>\n<label>Verification code <input "
          "name=\"otp\" inputmode=\"numeric\" autocomplete=\"one-time-code\"></label>\n"
          "<button type=\"submit\">Sign in</button>\n";
  if (!appru.empty()) {
    page += "<input type=\"hidden\" name=\"appru\" value=\"" + HtmlEscape(appru) + "\">\n";
  }
  page += "</form>\n</body></html>\n";
  return page;
}

}  // namespace

transport::HttpResponse HandleFederationLogin(ServerContext& ctx, std::string_view query) {
  auto params = ParseForm(query);
  const std::string upn = params["upn"];
  bool federated = false;
  const size_t at = upn.rfind('@');
  if (at != std::string::npos && at + 1 < upn.size()) {
    auto lock = ctx.store.Lock();
    auto realm = ctx.store.DomainIsFederated(upn.substr(at + 1));
    if (!realm.ok()) return StatusError(realm.error());
    federated = *realm;
  }
  std::string login_url = federated ? ctx.idp_base_url + "/adfs/ls/" : ctx.base_url + "/login";
  if (!upn.empty()) login_url += "?username=" + UrlEncode(upn);
  return JsonResponse(200, json{{"upn", upn},
                                {"federated", federated},
                                {"login_url", login_url},
                                {"login_host", HostOf(login_url)}});
}

transport::HttpResponse HandleSignIn(ServerContext& ctx, const transport::HttpRequest& request,
                                     const transport::PeerInfo& peer, std::string_view query,
                                     bool federated) {
  const std::string title = federated ? "Fabrikam federated sign-in" : "Sign in";
  const std::string action = federated ? "/adfs/ls/" : "/login";
  if (request.method == "GET") {
    auto params = ParseForm(query);
    const std::string appru = federated ? params["appru"] : "";
    if (!appru.empty() && !AllowedCallback(appru)) {
      return HtmlResponse(400, SignInPage(title, action, "", "this callback is not allowed"));
    }
    const std::string user = params.count("login_hint") ? params["login_hint"] : params["username"];
    return HtmlResponse(200, SignInPage(title, action, user, "", appru));
  }
  auto form = ParseForm(request.body);
  const std::string appru = federated ? form["appru"] : "";
  if (!appru.empty() && !AllowedCallback(appru)) {
    return HtmlResponse(400, SignInPage(title, action, "", "this callback is not allowed"));
  }
  const std::string upn = form["username"];
  SecretBytes password(form["password"]);
  std::string& password_field = form["password"];
  std::fill(password_field.begin(), password_field.end(), '\0');
  // A user signs in at their own tenant's page: federated tenants at the IdP only.
  Result<User> user = NotFound("no user");
  bool right_page = false;
  {
    auto lock = ctx.store.Lock();
    user = ctx.store.FindUser(upn);
    if (user.ok()) {
      auto tenant = ctx.store.TenantById(user->tenant_id);
      right_page = tenant.ok() && tenant->federated == federated;
    }
  }
  Status s = ctx.store.VerifyUser(right_page ? upn : std::string_view(), password, form["otp"],
                                  {.upn = upn, .address = peer.remote_address});
  if (!s.ok()) {
    if (s.code() == Code::kResourceExhausted) {
      return HtmlResponse(429, SignInPage(title, action, upn, s.message(), appru));
    }
    if (s.code() != Code::kUnauthenticated) return StatusError(s);
    return HtmlResponse(401, SignInPage(title, action, upn, s.message(), appru));
  }
  if (!appru.empty()) {
    auto lock = ctx.store.Lock();  // the store's Random is not thread-safe
    auto token = ctx.user_tokens.Issue(user->tenant_id, user->upn, ctx.store.Now(),
                                       std::chrono::minutes(10), ctx.store.random());
    if (!token.ok()) return StatusError(token.error());
    spdlog::info("{} signed in at the IdP for enrollment", user->upn);
    return HtmlResponse(200, TokenPage(appru, *token));
  }
  spdlog::info("{} signed in at the {} page", user->upn, federated ? "IdP" : "managed");
  return HtmlResponse(200, "<!DOCTYPE html>\n<html><body><p>Signed in as " + HtmlEscape(user->upn) +
                               "</p></body></html>\n");
}

}  // namespace dm::server
