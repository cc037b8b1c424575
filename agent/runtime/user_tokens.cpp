#include "agent/runtime/user_tokens.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "agent/enroll/form.h"
#include "agent/runtime/enrollment.h"
#include "agent/runtime/machine_key.h"
#include "base/ascii.h"
#include "base/crypto.h"
#include "base/jws.h"
#include "base/log.h"
#include "base/pki.h"
#include "csp/dmagent_csp.h"
#include "storage/database.h"

namespace dm::agent {
namespace {

using nlohmann::json;

// Renewed this long before it expires, so a session never sends a token about to lapse.
constexpr int64_t kRenewBefore = 120;

std::string KeyOf(std::string_view upn) { return "user_tokens." + AsciiLower(upn); }
std::string PurposeOf(std::string_view upn) { return "user-tokens:" + AsciiLower(upn); }

struct Tokens {
  std::string access_token;
  int64_t access_expires_at = 0;
  std::string refresh_token;
  int64_t refresh_expires_at = 0;
};

Status Save(storage::Database& db, const std::filesystem::path& state_dir, std::string_view upn,
            const Tokens& t) {
  DM_ASSIGN_OR_RETURN(MachineKey mk, MachineKey::LoadOrCreate(state_dir));
  const json j{{"access_token", t.access_token},
               {"access_expires_at", t.access_expires_at},
               {"refresh_token", t.refresh_token},
               {"refresh_expires_at", t.refresh_expires_at}};
  DM_ASSIGN_OR_RETURN(Bytes sealed, mk.Seal(SecretBytes(j.dump()), PurposeOf(upn)));
  return db.Run(
      "INSERT INTO settings (key, value) VALUES (?, ?) "
      "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      KeyOf(upn), crypto::HexEncode(sealed));
}

Result<std::optional<Tokens>> Load(storage::Database& db, const std::filesystem::path& state_dir,
                                   std::string_view upn) {
  DM_ASSIGN_OR_RETURN(auto st, db.Prepare("SELECT value FROM settings WHERE key = ?"));
  st.Bind(1, KeyOf(upn));
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<Tokens>();
  DM_ASSIGN_OR_RETURN(Bytes sealed, crypto::HexDecode(st.Text(0)));
  DM_ASSIGN_OR_RETURN(MachineKey mk, MachineKey::LoadOrCreate(state_dir));
  DM_ASSIGN_OR_RETURN(SecretBytes plain, mk.Open(sealed, PurposeOf(upn)));
  json j = json::parse(plain.view(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Corruption("the stored user tokens are not JSON");
  Tokens t;
  t.access_token = j.value("access_token", "");
  t.access_expires_at = j.value("access_expires_at", int64_t{0});
  t.refresh_token = j.value("refresh_token", "");
  t.refresh_expires_at = j.value("refresh_expires_at", int64_t{0});
  return std::optional<Tokens>(std::move(t));
}

// One POST to the token endpoint; the answer's tokens, with `keep_refresh` kept when the
// answer brings no new refresh token (a renewal).
Result<Tokens> Exchange(storage::Database& db, const std::filesystem::path& state_dir,
                        TimePoint now, const SecretBytes& body, const Tokens* keep_refresh) {
  DM_ASSIGN_OR_RETURN(EnrollmentState e, LoadEnrollment(db));
  if (e.user_token_url.empty()) {
    return FailedPrecondition("the management server issues no user tokens");
  }
  DM_ASSIGN_OR_RETURN(transport::HttpsClientOptions opts,
                      ServiceClientOptions(db, state_dir, e, e.user_token_url));
  opts.step_timeout = std::chrono::seconds(30);
  DM_ASSIGN_OR_RETURN(auto client, transport::HttpsClient::Create(std::move(opts)));
  // Sent once, never retried: a password grant's one-time code is spent by the first try.
  DM_ASSIGN_OR_RETURN(transport::HttpResponse resp,
                      client->PostOnce("", body.view(), "application/x-www-form-urlencoded"));
  json answer = json::parse(resp.body, nullptr, /*allow_exceptions=*/false);
  if (resp.status != 200) {
    std::string why = answer.is_object() ? answer.value("message", "") : "";
    return transport::HttpStatusToStatus(resp).WithContext("user sign-in at the server" +
                                                           (why.empty() ? "" : ": " + why));
  }
  if (!answer.is_object() || !answer.contains("access_token") ||
      !answer["access_token"].is_string() || !answer.contains("expires_in") ||
      !answer["expires_in"].is_number_integer()) {
    return InvalidArgument("the token endpoint's answer has no access_token and expires_in");
  }
  const int64_t at = ToUnixSeconds(now);
  Tokens t;
  t.access_token = answer["access_token"];
  t.access_expires_at = at + answer["expires_in"].get<int64_t>();
  if (answer.contains("refresh_token") && answer["refresh_token"].is_string()) {
    t.refresh_token = answer["refresh_token"];
    t.refresh_expires_at = at + answer.value("refresh_token_expires_in", int64_t{0});
  } else if (keep_refresh) {
    t.refresh_token = keep_refresh->refresh_token;
    t.refresh_expires_at = keep_refresh->refresh_expires_at;
  }
  return t;
}

SecretBytes FormOf(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  std::string body;
  for (const auto& [k, v] : fields) {
    if (!body.empty()) body += '&';
    body += enroll::UrlEncode(k) + "=" + enroll::UrlEncode(v);
  }
  SecretBytes out(body);
  OPENSSL_cleanse(body.data(), body.size());
  return out;
}

}  // namespace

Result<bool> UserTokensOffered(storage::Database& db) {
  DM_ASSIGN_OR_RETURN(EnrollmentState e, LoadEnrollment(db));
  return e.enrolled() && !e.user_token_url.empty();
}

Status SignInWithPassword(Device& device, std::string_view upn, const SecretBytes& password,
                          const SecretBytes& otp) {
  enroll::HtmlForm form;
  form.fields = {{"grant_type", "password"}};
  SecretBytes body = enroll::EncodeForm(form, upn, password, otp);
  DM_ASSIGN_OR_RETURN(
      Tokens t, Exchange(device.db(), device.state_dir(), device.clock().Now(), body, nullptr));
  return Save(device.db(), device.state_dir(), upn, t);
}

Status SignInWithHelloKey(Device& device, std::string_view upn, const SecretBytes& pin) {
  DM_ASSIGN_OR_RETURN(EnrollmentState e, LoadEnrollment(device.db()));
  DM_ASSIGN_OR_RETURN(container::ContainerInfo info, device.containers().Info(upn));
  if (!info.exists) return FailedPrecondition(std::string(upn) + " has no Windows Hello key");
  if (info.self_signed) {
    return FailedPrecondition("the Hello certificate of " + std::string(upn) +
                              " was not issued by the management server");
  }
  const std::string cert_b64 = pki::PemBase64(info.certificate_pem);
  DM_ASSIGN_OR_RETURN(Bytes jti, crypto::OsRandom().Public(16));
  const int64_t now = ToUnixSeconds(device.clock().Now());
  const json header{{"alg", "ES256"}, {"typ", "JWT"}, {"x5c", json::array({cert_b64})}};
  const json claims{{"sub", std::string(upn)},
                    {"aud", e.user_token_url},
                    {"iat", now},
                    {"exp", now + jws::kMaxAssertionLifetime},
                    {"jti", crypto::HexEncode(jti)}};
  const std::string input = jws::SigningInput(header, claims);
  DM_ASSIGN_OR_RETURN(Bytes der, device.containers().Sign(upn, pin, crypto::AsBytes(input)));
  DM_ASSIGN_OR_RETURN(std::string assertion, jws::Assemble(input, der));
  SecretBytes body = FormOf({{"grant_type", jws::kJwtBearerGrantType}, {"assertion", assertion}});
  DM_ASSIGN_OR_RETURN(
      Tokens t, Exchange(device.db(), device.state_dir(), device.clock().Now(), body, nullptr));
  return Save(device.db(), device.state_dir(), upn, t);
}

Result<std::string> CurrentUserToken(storage::Database& db, const std::filesystem::path& state_dir,
                                     TimePoint now, std::string_view upn) {
  DM_ASSIGN_OR_RETURN(std::optional<Tokens> t, Load(db, state_dir, upn));
  if (!t) return std::string();
  const int64_t at = ToUnixSeconds(now);
  if (!t->access_token.empty() && t->access_expires_at - kRenewBefore > at) {
    return t->access_token;
  }
  if (t->refresh_token.empty() || t->refresh_expires_at <= at) {
    DM_RETURN_IF_ERROR(ForgetUserTokens(db, upn));
    return std::string();
  }
  SecretBytes body = FormOf({{"grant_type", "refresh_token"}, {"refresh_token", t->refresh_token}});
  auto renewed = Exchange(db, state_dir, now, body, &*t);
  if (!renewed.ok()) {
    if (renewed.error().code() == Code::kUnavailable ||
        renewed.error().code() == Code::kDeadlineExceeded) {
      return renewed.error();  // offline: try again next time
    }
    spdlog::warn("the user token of {} could not be renewed: {}", Printable(upn),
                 renewed.error().message());
    DM_RETURN_IF_ERROR(ForgetUserTokens(db, upn));
    return std::string();
  }
  DM_RETURN_IF_ERROR(Save(db, state_dir, upn, *renewed));
  return renewed->access_token;
}

Status ForgetUserTokens(storage::Database& db, std::string_view upn) {
  return db.Run("DELETE FROM settings WHERE key = ?", KeyOf(upn));
}

}  // namespace dm::agent
