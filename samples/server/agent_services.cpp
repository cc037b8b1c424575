#include "samples/server/agent_services.h"

#include <utility>

#include "agent/syncml/message.h"
#include "samples/server/command_xml.h"
#include "samples/server/queue.h"

namespace dm::server {
namespace {

syncml::Command ReplaceOf(const std::string& uri, const std::string& format,
                          const std::string& value) {
  syncml::Item item;
  item.target = syncml::Location{uri, std::nullopt};
  syncml::Meta meta;
  meta.format = format;
  item.meta = meta;
  item.data = syncml::Data{value};
  return syncml::MakeCommand(syncml::CommandType::kReplace, "", {std::move(item)});
}

// The value of the last command queued for `uri` on the device, nullopt if none. A failed
// command counts too: re-sending the same value every session would only fail again.
Result<std::optional<std::string>> LastQueuedValue(Store& store, std::string_view dev_id,
                                                   const std::string& uri) {
  DM_ASSIGN_OR_RETURN(
      auto st, store.db().Prepare("SELECT xml FROM commands WHERE dev_id = ? AND loc_uri = ? "
                                  "AND profile_id IS NULL AND state != 'cancelled' "
                                  "ORDER BY created_at DESC, rowid DESC LIMIT 1"));
  st.BindAll(dev_id, uri);
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<std::string>();
  DM_ASSIGN_OR_RETURN(syncml::Command c, DecodeOneCommand(st.Text(0)));
  if (c.items.empty() || !c.items.front().data) return std::optional<std::string>("");
  return std::optional<std::string>(c.items.front().data->text);
}

}  // namespace

AgentServices AgentServicesAt(std::string_view base_url, std::string_view pin_reset_public_key) {
  const std::string base(base_url);
  return {.pin_reset_url = base + "/PinReset/recover",
          .pin_reset_public_key = std::string(pin_reset_public_key),
          .hello_certificate_url = base + "/EnrollmentServer/hello-certificate",
          .federation_login_url = base + "/federation/login",
          .user_token_url = base + "/oauth2/token"};
}

Status QueueAgentServices(Store& store, std::string_view dev_id, const AgentServices& services) {
  const std::pair<const char*, const std::string*> chr[] = {
      {kPinResetUrlNode, &services.pin_reset_url},
      {kPinResetPublicKeyNode, &services.pin_reset_public_key},
      {kHelloCertificateUrlNode, &services.hello_certificate_url},
      {kFederationLoginUrlNode, &services.federation_login_url},
      {kUserTokenUrlNode, &services.user_token_url}};
  auto queue = [&](const std::string& uri, const std::string& format,
                   const std::string& value) -> Status {
    DM_ASSIGN_OR_RETURN(std::optional<std::string> last, LastQueuedValue(store, dev_id, uri));
    if (last && *last == value) return Status::Ok();
    QueuedCommandSpec spec;
    spec.dev_id = std::string(dev_id);
    spec.loc_uri = uri;
    return EnqueueCommand(store, spec, ReplaceOf(uri, format, value)).status();
  };
  DM_RETURN_IF_ERROR(queue(kComplianceAlertNode, "int", "1"));
  for (const auto& [uri, value] : chr) {
    if (value->empty()) continue;  // a service this server does not offer
    DM_RETURN_IF_ERROR(queue(uri, "chr", *value));
  }
  return Status::Ok();
}

}  // namespace dm::server
