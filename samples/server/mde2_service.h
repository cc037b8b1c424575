// dmserver's MS-MDE2 enrollment service (internal): Discovery.svc, Policy.svc (MS-XCEP) and
// Enrollment.svc (MS-WSTEP), and who an enrollment request proves to be.
//
// Credentials, as the tenant's AuthPolicy says (the Discover answer names it):
//   OnPremise  wsse:UsernameToken: a user of the tenant and their password;
//   Federated  wsse:BinarySecurityToken (DeviceEnrollmentUserToken or JWT ValueType) holding
//              a user token from dmserver's IdP (user_token.h): single use, at most an hour;
//   either     the same BinarySecurityToken holding the tenant's bulk enrollment token
//              (expires, rotated and revoked by the admin, stored hashed): a device without a
//              user.
// Every malformed, hostile or unauthenticated request gets a SOAP fault, never a crash.
#pragma once

#include <optional>
#include <string>

#include "agent/enroll/soap.h"
#include "agent/transport/http_types.h"
#include "agent/transport/https_server.h"
#include "samples/server/server_internal.h"

namespace dm::server {

struct EnrollCaller {
  Tenant tenant;
  std::string upn;  // empty for the bulk token
  std::string how;  // "password", "user token", "bulk token"
  std::string jti;  // user token: spent by the enrollment
  int64_t token_expires_at = 0;
};

// Reads the wsse:Security header. Unauthenticated for anything that does not prove a user of a
// tenant (or the tenant's bulk token).
// `address`: the request's source, for sign-in throttling of passwords (store.h). Takes the
// store lock itself (not held while a password is checked): callers must not hold it.
Result<EnrollCaller> AuthenticateEnrollment(ServerContext& ctx, const soap::Message& message,
                                            std::string_view address);

// An MS-MDE2 request: the envelope, checked for `action` and for exactly one `ns`:`local` in
// its body, with the MessageID its answers relate to (bounded); or, for anything else, the
// s:messageformat fault to answer with.
struct SoapRequest {
  std::optional<soap::Message> message;
  std::string relates_to;
  std::optional<transport::HttpResponse> fault;
};
SoapRequest ReadSoapRequest(const transport::HttpRequest& request, const soap::Limits& limits,
                            std::string_view action, std::string_view ns, std::string_view local);

// An s:Fault answer; `subcode` is one of MS-MDE2's ("s:authentication", ...).
transport::HttpResponse SoapFault(int http_status, std::string_view subcode,
                                  std::string_view reason, std::string_view relates_to = {});
transport::HttpResponse SoapAnswer(std::string body);
// The addressing header of an answer.
soap::Addressing AnswerAddressing(std::string_view action, std::string_view relates_to);

transport::HttpResponse HandleDiscovery(ServerContext& ctx, const transport::HttpRequest& request);
transport::HttpResponse HandlePolicy(ServerContext& ctx, const transport::HttpRequest& request,
                                     const transport::PeerInfo& peer);
transport::HttpResponse HandleEnrollment(ServerContext& ctx, const transport::HttpRequest& request,
                                         const transport::PeerInfo& peer);

}  // namespace dm::server
