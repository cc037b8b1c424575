// ./Vendor/MSFT/CertificateStore, read-only: what the enrollment's provisioning document
// installed, as Windows shows it (CertificateStore CSP): Root/System/{Thumbprint} for the
// management trust anchors and My/User or My/System/{Thumbprint} for the device certificate,
// each with EncodedCertificate (base64 DER), IssuedBy, IssuedTo, ValidFrom and ValidTo.
// Device scope only. The certificates live in the settings table under the keys below
// (agent/runtime/enrollment.cpp writes them).
#pragma once

namespace dm::csp {

inline constexpr char kEnrollmentDeviceCertKey[] = "enrollment.device_cert_pem";
inline constexpr char kEnrollmentAnchorKey[] = "enrollment.anchor_pem";  // PEMs, concatenated
inline constexpr char kEnrollmentTypeKey[] = "enrollment.type";          // Full | Device

}  // namespace dm::csp
