#include "agent/cli/key_signin.h"

#include <fstream>
#include <iostream>

#include "agent/cli/secret_input.h"
#include "container/security_key.h"

namespace dm::agent::cli {
namespace {

Status WriteBytes(const std::filesystem::path& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  return out ? Status::Ok() : IoError("cannot write " + path.string());
}

std::string_view View(const Bytes& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace

Status KeySignIn(Device& device, const std::string& user, const std::string& key_arg,
                 const std::string& rp, const std::string& uv_text, const std::string& out_dir) {
  container::SecurityKeyStore ks = device.SecurityKeys();
  DM_ASSIGN_OR_RETURN(
      std::string id,
      ks.ResolveKey(user,
                    key_arg.empty() ? std::nullopt : std::optional<std::string_view>(key_arg)));
  DM_ASSIGN_OR_RETURN(container::UserVerification uv, container::ParseUserVerification(uv_text));
  DM_ASSIGN_OR_RETURN(container::SecurityKeyInfo info, ks.Get(user, id));

  // A fresh challenge, hashed as WebAuthn hashes clientDataJSON.
  DM_ASSIGN_OR_RETURN(Bytes challenge, crypto::OsRandom().Public(32));
  std::string client_data = R"({"type":"webauthn.get","challenge":")" +
                            crypto::Base64Encode(challenge) + R"(","origin":"https://)" + rp +
                            R"("})";
  DM_ASSIGN_OR_RETURN(
      Bytes client_data_hash,
      crypto::Sha256(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(client_data.data()),
                                              client_data.size())));

  SecretBytes pin;
  const SecretBytes* pin_ptr = nullptr;
  if (uv != container::UserVerification::kDiscouraged && info.pin_set) {
    DM_ASSIGN_OR_RETURN(pin, ReadSecretLine("Security key PIN"));
    pin_ptr = &pin;
  }
  // The Windows behaviour since KB5068861: "preferred" (or "required") on a key without a PIN
  // makes the platform ask the user to create one, then the operation goes on with it.
  auto set_up_pin = [&](const std::string& reason) -> Status {
    std::cout << "This security key needs a PIN: " << reason << "\n";
    DM_ASSIGN_OR_RETURN(pin, ReadNewSecret("New security key PIN"));
    DM_RETURN_IF_ERROR(ks.SetPin(user, id, pin));
    pin_ptr = &pin;
    std::cout << "PIN set on the security key\n";
    return Status::Ok();
  };

  DM_ASSIGN_OR_RETURN(auto creds, ks.Credentials(user, id));
  std::string public_key_pem;
  Bytes credential_id;
  for (const auto& c : creds) {
    if (c.rp_id == rp) {
      public_key_pem = c.public_key_pem;
      credential_id = c.credential_id;
    }
  }
  if (credential_id.empty()) {
    container::MakeCredentialRequest mc{.rp_id = rp,
                                        .client_data_hash = client_data_hash,
                                        .user_name = user,
                                        .uv = uv,
                                        .pin = pin_ptr};
    DM_ASSIGN_OR_RETURN(auto made, ks.MakeCredential(user, id, mc));
    if (made.outcome == container::Outcome::kPinSetupRequired) {
      DM_RETURN_IF_ERROR(set_up_pin(made.reason));
      mc.pin = pin_ptr;
      DM_ASSIGN_OR_RETURN(made, ks.MakeCredential(user, id, mc));
    }
    public_key_pem = made.public_key_pem;
    credential_id = made.credential_id;
    std::cout << "registered a credential for " << rp << "\n";
  }
  container::GetAssertionRequest ga{.rp_id = rp,
                                    .client_data_hash = client_data_hash,
                                    .allow_credentials = {credential_id},
                                    .uv = uv,
                                    .pin = pin_ptr};
  DM_ASSIGN_OR_RETURN(auto assertion, ks.GetAssertion(user, id, ga));
  if (assertion.outcome == container::Outcome::kPinSetupRequired) {
    DM_RETURN_IF_ERROR(set_up_pin(assertion.reason));
    ga.pin = pin_ptr;
    DM_ASSIGN_OR_RETURN(assertion, ks.GetAssertion(user, id, ga));
  }
  std::cout << "signed in to " << rp << " with security key " << id
            << " (user verified: " << (assertion.user_verified ? "yes" : "no") << ", signCount "
            << assertion.sign_count << ")\n";
  if (!out_dir.empty()) {
    std::filesystem::path dir(out_dir);
    Bytes signed_data = container::SignedData(assertion.authenticator_data, client_data_hash);
    DM_RETURN_IF_ERROR(WriteBytes(dir / "pub.pem", public_key_pem));
    DM_RETURN_IF_ERROR(WriteBytes(dir / "data.bin", View(signed_data)));
    DM_RETURN_IF_ERROR(WriteBytes(dir / "sig.der", View(assertion.signature)));
    std::cout << "verify: openssl dgst -sha256 -verify " << (dir / "pub.pem").string()
              << " -signature " << (dir / "sig.der").string() << " " << (dir / "data.bin").string()
              << "\n";
  }
  return Status::Ok();
}

}  // namespace dm::agent::cli
