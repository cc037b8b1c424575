// Store: users' sign-ins on devices (refresh tokens, Hello certificates). Caller holds Lock().
#include <openssl/crypto.h>

#include "base/crypto.h"
#include "samples/server/store.h"

namespace dm::server {

Result<std::string> Store::IssueRefreshToken(std::string_view tenant_id, std::string_view upn,
                                             std::string_view dev_id,
                                             std::chrono::seconds lifetime) {
  DM_ASSIGN_OR_RETURN(SecretBytes raw, options_.random->Secret(32));
  std::string token = crypto::Base64UrlEncode(raw.span());
  DM_ASSIGN_OR_RETURN(std::string digest, Sha256Hex(token));
  DM_ASSIGN_OR_RETURN(auto tx, db_->Begin());
  DM_RETURN_IF_ERROR(db_->Run("DELETE FROM refresh_tokens WHERE expires_at <= ?", Now()));
  DM_RETURN_IF_ERROR(db_->Run(
      "INSERT INTO refresh_tokens (token_sha256, tenant_id, upn, dev_id, issued_at, expires_at) "
      "VALUES (?, ?, ?, ?, ?, ?)",
      digest, tenant_id, upn, dev_id, Now(), Now() + lifetime.count()));
  // A device that signs users in again and again keeps only its newest sign-ins.
  DM_RETURN_IF_ERROR(db_->Run(
      "DELETE FROM refresh_tokens WHERE dev_id = ?1 AND token_sha256 NOT IN (SELECT "
      "token_sha256 FROM refresh_tokens WHERE dev_id = ?1 ORDER BY issued_at DESC, rowid DESC "
      "LIMIT ?2)",
      dev_id, kMaxSignInsPerDevice));
  DM_RETURN_IF_ERROR(tx.Commit());
  return token;
}

Result<User> Store::RedeemRefreshToken(std::string_view token, std::string_view dev_id) {
  const Status refused = Unauthenticated("the refresh token is not valid for this device");
  if (token.empty() || token.size() > 128) return refused;
  DM_ASSIGN_OR_RETURN(std::string digest, Sha256Hex(token));
  // Looked up by digest: the index compares digests, never the token itself.
  DM_ASSIGN_OR_RETURN(auto st, db_->Prepare("SELECT upn, dev_id, expires_at FROM refresh_tokens "
                                            "WHERE token_sha256 = ?"));
  st.Bind(1, digest);
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row || st.Text(1) != dev_id || st.Int(2) <= Now()) return refused;
  auto user = FindUser(st.Text(0));
  if (!user.ok()) return user.error().code() == Code::kNotFound ? refused : user.error();
  return user;
}

Status Store::RecordHelloCertificate(std::string_view serial, std::string_view dev_id,
                                     std::string_view upn, int64_t expires_at) {
  DM_ASSIGN_OR_RETURN(auto tx, db_->Begin());
  DM_RETURN_IF_ERROR(db_->Run("DELETE FROM hello_certificates WHERE expires_at <= ?", Now()));
  DM_RETURN_IF_ERROR(
      db_->Run("INSERT OR REPLACE INTO hello_certificates (serial, dev_id, upn, expires_at) "
               "VALUES (?, ?, ?, ?)",
               AsciiLower(serial), dev_id, upn, expires_at));
  DM_RETURN_IF_ERROR(db_->Run(
      "DELETE FROM hello_certificates WHERE dev_id = ?1 AND serial NOT IN (SELECT serial FROM "
      "hello_certificates WHERE dev_id = ?1 ORDER BY rowid DESC LIMIT ?2)",
      dev_id, kMaxSignInsPerDevice));
  return tx.Commit();
}

Result<std::string> Store::HelloCertificateUser(std::string_view serial, std::string_view dev_id) {
  DM_ASSIGN_OR_RETURN(auto st, db_->Prepare("SELECT upn FROM hello_certificates WHERE serial = ? "
                                            "AND dev_id = ? AND expires_at > ?"));
  st.BindAll(AsciiLower(serial), dev_id, Now());
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return Unauthenticated("no Hello certificate of this device has that serial");
  return st.Text(0);
}

Status Store::ForgetDeviceSignIns(std::string_view dev_id) {
  DM_RETURN_IF_ERROR(db_->Run("DELETE FROM refresh_tokens WHERE dev_id = ?", dev_id));
  return db_->Run("DELETE FROM hello_certificates WHERE dev_id = ?", dev_id);
}

}  // namespace dm::server
