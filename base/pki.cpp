#include "base/pki.h"

#include "base/crypto.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/buffer.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <climits>
#include <ctime>
#include <memory>

namespace dm::pki {
namespace {

template <auto Fn>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Fn(p);
  }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using ReqPtr = std::unique_ptr<X509_REQ, Deleter<X509_REQ_free>>;
using NamePtr = std::unique_ptr<X509_NAME, Deleter<X509_NAME_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;
using GenNamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
using GenNamePtr = std::unique_ptr<GENERAL_NAME, Deleter<GENERAL_NAME_free>>;
using CrlPtr = std::unique_ptr<X509_CRL, Deleter<X509_CRL_free>>;
using RevokedPtr = std::unique_ptr<X509_REVOKED, Deleter<X509_REVOKED_free>>;
using AsnIntPtr = std::unique_ptr<ASN1_INTEGER, Deleter<ASN1_INTEGER_free>>;
using AsnTimePtr = std::unique_ptr<ASN1_TIME, Deleter<ASN1_TIME_free>>;

// Drains OpenSSL's thread-local error queue into a message, so a later call does not report a
// stale error and the caller sees why (e.g. "no start line" for a non-PEM input).
std::string OpenSslErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no OpenSSL error detail" : out;
}

Status SslFailure(Code code, std::string_view what) {
  std::string m(what);
  m += ": ";
  m += OpenSslErrors();
  return {code, std::move(m)};
}

// A read-only memory BIO over the caller's bytes (no copy, so nothing extra to wipe).
BioPtr ReadBio(const void* data, size_t size) {
  if (size > static_cast<size_t>(INT_MAX)) return nullptr;
  return BioPtr(BIO_new_mem_buf(data, static_cast<int>(size)));
}
BioPtr ReadBio(std::string_view s) { return ReadBio(s.data(), s.size()); }

std::string BioToString(BIO* bio) {
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(bio, &mem);
  if (mem == nullptr || mem->data == nullptr) return {};
  return std::string(mem->data, mem->length);
}

// Copies a secret out of a memory BIO and wipes the BIO's buffer. The BIO is a secmem BIO, whose
// buffer grows with cleaning reallocation, so no stale copy is left behind either.
SecretBytes BioToSecret(BIO* bio) {
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(bio, &mem);
  if (mem == nullptr || mem->data == nullptr) return {};
  SecretBytes out(reinterpret_cast<const uint8_t*>(mem->data), mem->length);
  OPENSSL_cleanse(mem->data, mem->max);
  return out;
}

Result<PkeyPtr> LoadPrivateKey(const SecretBytes& private_pem) {
  ERR_clear_error();
  BioPtr bio = ReadBio(private_pem.data(), private_pem.size());
  if (!bio) return InvalidArgument("private key: too large");
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return SslFailure(Code::kInvalidArgument, "private key PEM does not parse");
  return key;
}

Result<PkeyPtr> LoadPublicKey(std::string_view public_pem) {
  ERR_clear_error();
  BioPtr bio = ReadBio(public_pem);
  if (!bio) return InvalidArgument("public key: too large");
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return SslFailure(Code::kInvalidArgument, "public key PEM does not parse");
  return key;
}

Result<X509Ptr> LoadCert(std::string_view cert_pem) {
  ERR_clear_error();
  BioPtr bio = ReadBio(cert_pem);
  if (!bio) return InvalidArgument("certificate: too large");
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return SslFailure(Code::kInvalidArgument, "certificate PEM does not parse");
  return cert;
}

Result<SecretBytes> PrivateKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio) return SslFailure(Code::kInternal, "BIO_new");
  if (PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return SslFailure(Code::kInternal, "write private key");
  }
  return BioToSecret(bio.get());
}

Result<std::string> PublicKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return SslFailure(Code::kInternal, "BIO_new");
  if (PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    return SslFailure(Code::kInternal, "write public key");
  }
  return BioToString(bio.get());
}

Result<std::string> CertPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return SslFailure(Code::kInternal, "BIO_new");
  if (PEM_write_bio_X509(bio.get(), cert) != 1) {
    return SslFailure(Code::kInternal, "write certificate");
  }
  return BioToString(bio.get());
}

// Only key types and sizes we would generate ourselves are certified.
Status CheckAcceptableKey(EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC:
      if (EVP_PKEY_get_bits(key) < 256) return InvalidArgument("EC key shorter than 256 bits");
      return Status::Ok();
    case EVP_PKEY_RSA:
      if (EVP_PKEY_get_bits(key) < 2048) return InvalidArgument("RSA key shorter than 2048 bits");
      return Status::Ok();
    default:
      return InvalidArgument("unsupported key type (expected EC P-256 or RSA >= 2048)");
  }
}

std::string NameCn(const X509_NAME* name) {
  if (name == nullptr) return {};
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return {};
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

Result<NamePtr> MakeName(std::string_view common_name) {
  if (common_name.empty()) return InvalidArgument("certificate common name is empty");
  if (common_name.size() > 64) return InvalidArgument("certificate common name over 64 chars");
  NamePtr name(X509_NAME_new());
  if (!name ||
      X509_NAME_add_entry_by_NID(name.get(), NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.data()),
                                 static_cast<int>(common_name.size()), -1, 0) != 1) {
    return SslFailure(Code::kInvalidArgument, "certificate common name");
  }
  return name;
}

Result<TimePoint> AsnTimeToTimePoint(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return SslFailure(Code::kInvalidArgument, "certificate time does not parse");
  }
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string UpperHex(const unsigned char* p, size_t n) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kHex[p[i] >> 4];
    out += kHex[p[i] & 0xF];
  }
  return out;
}

// A positive, non-zero 128-bit random serial (RFC 5280 4.1.2.2 allows up to 20 octets).
Status SetRandomSerial(X509* cert) {
  unsigned char raw[16];
  do {
    if (RAND_bytes(raw, sizeof raw) != 1) return SslFailure(Code::kInternal, "RAND_bytes");
    raw[0] &= 0x7F;
  } while (raw[0] == 0);  // keeps the encoded length a constant 16 octets
  BnPtr bn(BN_bin2bn(raw, sizeof raw, nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    return SslFailure(Code::kInternal, "set serial");
  }
  return Status::Ok();
}

Status AddExt(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  ExtPtr ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return SslFailure(Code::kInternal, std::string("add extension ") + OBJ_nid2sn(nid));
  }
  return Status::Ok();
}

bool ValidDnsName(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '*';
    if (!ok) return false;
  }
  return true;
}

// subjectAltName is built from GENERAL_NAME objects rather than a config string, so a name
// containing ',' or ':' cannot smuggle in another entry.
Status AddSubjectAltName(X509* cert, const IssueOptions& o) {
  if (o.dns_names.empty() && o.ip_addresses.empty()) return Status::Ok();
  GenNamesPtr names(GENERAL_NAMES_new());
  if (!names) return SslFailure(Code::kInternal, "GENERAL_NAMES_new");
  for (const std::string& dns : o.dns_names) {
    if (!ValidDnsName(dns)) return InvalidArgument("invalid DNS name for subjectAltName: " + dns);
    GenNamePtr gn(GENERAL_NAME_new());
    ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
    if (!gn || ia5 == nullptr ||
        ASN1_STRING_set(ia5, dns.data(), static_cast<int>(dns.size())) != 1) {
      ASN1_IA5STRING_free(ia5);
      return SslFailure(Code::kInternal, "subjectAltName DNS");
    }
    GENERAL_NAME_set0_value(gn.get(), GEN_DNS, ia5);
    if (sk_GENERAL_NAME_push(names.get(), gn.get()) == 0) {
      return SslFailure(Code::kInternal, "subjectAltName push");
    }
    gn.release();
  }
  for (const std::string& ip : o.ip_addresses) {
    ASN1_OCTET_STRING* octets = a2i_IPADDRESS(ip.c_str());
    if (octets == nullptr) {
      ERR_clear_error();
      return InvalidArgument("invalid IP address for subjectAltName: " + ip);
    }
    GenNamePtr gn(GENERAL_NAME_new());
    if (!gn) {
      ASN1_OCTET_STRING_free(octets);
      return SslFailure(Code::kInternal, "GENERAL_NAME_new");
    }
    GENERAL_NAME_set0_value(gn.get(), GEN_IPADD, octets);
    if (sk_GENERAL_NAME_push(names.get(), gn.get()) == 0) {
      return SslFailure(Code::kInternal, "subjectAltName push");
    }
    gn.release();
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return SslFailure(Code::kInternal, "add subjectAltName");
  }
  return Status::Ok();
}

Status SetValidity(X509* cert, TimePoint not_before, std::chrono::seconds validity) {
  if (validity.count() <= 0) return InvalidArgument("certificate validity must be positive");
  std::time_t nb = std::chrono::system_clock::to_time_t(not_before);
  std::time_t na = nb + static_cast<std::time_t>(validity.count());
  // ASN1_TIME_set picks UTCTime or GeneralizedTime (after 2049) as RFC 5280 requires.
  if (ASN1_TIME_set(X509_getm_notBefore(cert), nb) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert), na) == nullptr) {
    return SslFailure(Code::kInternal, "set validity");
  }
  return Status::Ok();
}

struct Issuer {
  X509* cert = nullptr;  // null when self-signed
  EVP_PKEY* key = nullptr;
};

// Builds and signs a v3 certificate for `subject_key` (public part only is used).
Result<std::string> BuildCertificate(const Issuer& issuer, EVP_PKEY* subject_key,
                                     std::string_view common_name, TimePoint not_before,
                                     std::chrono::seconds validity, bool is_ca,
                                     const IssueOptions* leaf) {
  ERR_clear_error();
  DM_ASSIGN_OR_RETURN(NamePtr subject, MakeName(common_name));
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    return SslFailure(Code::kInternal, "X509_new");
  }
  DM_RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  DM_RETURN_IF_ERROR(SetValidity(cert.get(), not_before, validity));
  const X509_NAME* issuer_name =
      issuer.cert != nullptr ? X509_get_subject_name(issuer.cert) : subject.get();
  if (X509_set_subject_name(cert.get(), subject.get()) != 1 ||
      X509_set_issuer_name(cert.get(), issuer_name) != 1 ||
      X509_set_pubkey(cert.get(), subject_key) != 1) {
    return SslFailure(Code::kInternal, "set subject/issuer/key");
  }

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer.cert != nullptr ? issuer.cert : cert.get(), cert.get(), nullptr,
                 nullptr, 0);
  if (is_ca) {
    DM_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE"));
    DM_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
  } else {
    DM_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
    // RSA TLS key exchange (and CMS enveloping) needs keyEncipherment; EC keys never do.
    const char* ku = EVP_PKEY_get_base_id(subject_key) == EVP_PKEY_RSA
                         ? "critical,digitalSignature,keyEncipherment"
                         : "critical,digitalSignature";
    DM_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_key_usage, ku));
    std::string eku;
    if (leaf->server_auth) eku = "serverAuth";
    if (leaf->client_auth) eku += eku.empty() ? "clientAuth" : ",clientAuth";
    if (!eku.empty()) {
      DM_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_ext_key_usage, eku.c_str()));
    }
    DM_RETURN_IF_ERROR(AddSubjectAltName(cert.get(), *leaf));
  }
  DM_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  if (issuer.cert != nullptr) {
    DM_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
  }

  if (X509_sign(cert.get(), issuer.key, EVP_sha256()) <= 0) {
    return SslFailure(Code::kInternal, "sign certificate");
  }
  return CertPem(cert.get());
}

Result<std::string> IssueForKey(const CertificateAuthority& ca, EVP_PKEY* subject_key,
                                const IssueOptions& options) {
  DM_RETURN_IF_ERROR(CheckAcceptableKey(subject_key));
  DM_ASSIGN_OR_RETURN(X509Ptr ca_cert, LoadCert(ca.cert_pem));
  DM_ASSIGN_OR_RETURN(PkeyPtr ca_key, LoadPrivateKey(ca.key_pem));
  if (X509_check_private_key(ca_cert.get(), ca_key.get()) != 1) {
    return SslFailure(Code::kInvalidArgument, "CA key does not match CA certificate");
  }
  if ((X509_get_extension_flags(ca_cert.get()) & EXFLAG_CA) == 0) {
    return InvalidArgument("issuer certificate is not a CA");
  }
  Issuer issuer{ca_cert.get(), ca_key.get()};
  return BuildCertificate(issuer, subject_key, options.common_name, options.not_before,
                          options.validity, /*is_ca=*/false, &options);
}

}  // namespace

Result<KeyPair> GenerateKeyPair(KeyType type) {
  ERR_clear_error();
  PkeyPtr key(type == KeyType::kEcP256 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                                       : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
  if (!key) return SslFailure(Code::kInternal, "key generation");
  KeyPair pair;
  DM_ASSIGN_OR_RETURN(pair.private_pem, PrivateKeyPem(key.get()));
  DM_ASSIGN_OR_RETURN(pair.public_pem, PublicKeyPem(key.get()));
  return pair;
}

Result<std::string> PublicKeyOf(const SecretBytes& private_pem) {
  DM_ASSIGN_OR_RETURN(PkeyPtr key, LoadPrivateKey(private_pem));
  return PublicKeyPem(key.get());
}

Result<CertIdentity> IdentityOf(const X509* cert) {
  if (cert == nullptr) return InvalidArgument("no certificate");
  CertIdentity id;
  id.subject_cn = NameCn(X509_get_subject_name(cert));
  BnPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!serial) return SslFailure(Code::kInvalidArgument, "certificate serial");
  char* hex = BN_bn2hex(serial.get());
  if (hex == nullptr) return SslFailure(Code::kInternal, "serial to hex");
  id.serial_hex = hex;
  OPENSSL_free(hex);
  return id;
}

Result<CertInfo> ParseCertificate(std::string_view cert_pem) {
  DM_ASSIGN_OR_RETURN(X509Ptr cert, LoadCert(cert_pem));
  DM_ASSIGN_OR_RETURN(CertIdentity id, IdentityOf(cert.get()));
  CertInfo info;
  info.subject_cn = std::move(id.subject_cn);
  info.serial_hex = std::move(id.serial_hex);
  info.issuer_cn = NameCn(X509_get_issuer_name(cert.get()));

  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(cert.get(), EVP_sha1(), md, &md_len) != 1) {
    return SslFailure(Code::kInternal, "certificate thumbprint");
  }
  info.thumbprint = UpperHex(md, md_len);

  DM_ASSIGN_OR_RETURN(info.not_before, AsnTimeToTimePoint(X509_get0_notBefore(cert.get())));
  DM_ASSIGN_OR_RETURN(info.not_after, AsnTimeToTimePoint(X509_get0_notAfter(cert.get())));
  EVP_PKEY* pub = X509_get0_pubkey(cert.get());
  if (pub == nullptr) return SslFailure(Code::kInvalidArgument, "certificate public key");
  DM_ASSIGN_OR_RETURN(info.public_key_pem, PublicKeyPem(pub));
  info.is_ca = (X509_get_extension_flags(cert.get()) & EXFLAG_CA) != 0;
  return info;
}

Result<CertificateAuthority> CreateCa(std::string_view common_name, TimePoint now,
                                      std::chrono::seconds validity) {
  DM_ASSIGN_OR_RETURN(KeyPair pair, GenerateKeyPair(KeyType::kEcP256));
  DM_ASSIGN_OR_RETURN(PkeyPtr key, LoadPrivateKey(pair.private_pem));
  Issuer self{nullptr, key.get()};
  CertificateAuthority ca;
  DM_ASSIGN_OR_RETURN(ca.cert_pem, BuildCertificate(self, key.get(), common_name, now, validity,
                                                    /*is_ca=*/true, nullptr));
  ca.key_pem = std::move(pair.private_pem);
  return ca;
}

Result<std::string> CreateCsr(const SecretBytes& private_pem, std::string_view common_name) {
  DM_ASSIGN_OR_RETURN(PkeyPtr key, LoadPrivateKey(private_pem));
  DM_ASSIGN_OR_RETURN(NamePtr name, MakeName(common_name));
  ReqPtr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_subject_name(req.get(), name.get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1) {
    return SslFailure(Code::kInternal, "build CSR");
  }
  if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) {
    return SslFailure(Code::kInternal, "sign CSR");
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) {
    return SslFailure(Code::kInternal, "write CSR");
  }
  return BioToString(bio.get());
}

Result<std::string> IssueFromCsr(const CertificateAuthority& ca, std::string_view csr_pem,
                                 const IssueOptions& options) {
  ERR_clear_error();
  BioPtr bio = ReadBio(csr_pem);
  if (!bio) return InvalidArgument("CSR: too large");
  ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!req) return SslFailure(Code::kInvalidArgument, "CSR PEM does not parse");
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (key == nullptr) return SslFailure(Code::kInvalidArgument, "CSR has no usable public key");
  // Proof of possession: the request must be signed by the key it asks us to certify.
  if (X509_REQ_verify(req.get(), key) != 1) {
    return SslFailure(Code::kInvalidArgument, "CSR signature does not verify");
  }
  return IssueForKey(ca, key, options);
}

Result<std::string> IssueForPublicKey(const CertificateAuthority& ca,
                                      std::string_view public_key_pem,
                                      const IssueOptions& options) {
  DM_ASSIGN_OR_RETURN(PkeyPtr key, LoadPublicKey(public_key_pem));
  return IssueForKey(ca, key.get(), options);
}

Result<std::string> SelfSign(const SecretBytes& private_pem, const IssueOptions& options) {
  DM_ASSIGN_OR_RETURN(PkeyPtr key, LoadPrivateKey(private_pem));
  DM_RETURN_IF_ERROR(CheckAcceptableKey(key.get()));
  Issuer self{nullptr, key.get()};
  return BuildCertificate(self, key.get(), options.common_name, options.not_before,
                          options.validity, /*is_ca=*/false, &options);
}

Result<std::string> CreateCrl(const CertificateAuthority& ca,
                              const std::vector<std::string>& revoked_serials_hex,
                              TimePoint this_update, std::chrono::seconds validity,
                              uint64_t crl_number) {
  if (validity.count() <= 0) return InvalidArgument("CRL validity must be positive");
  DM_ASSIGN_OR_RETURN(X509Ptr ca_cert, LoadCert(ca.cert_pem));
  DM_ASSIGN_OR_RETURN(PkeyPtr ca_key, LoadPrivateKey(ca.key_pem));
  if (X509_check_private_key(ca_cert.get(), ca_key.get()) != 1) {
    return SslFailure(Code::kInvalidArgument, "CA key does not match CA certificate");
  }
  CrlPtr crl(X509_CRL_new());
  if (!crl || X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca_cert.get())) != 1) {
    return SslFailure(Code::kInternal, "CRL header");
  }
  const std::time_t from = std::chrono::system_clock::to_time_t(this_update);
  AsnTimePtr last(ASN1_TIME_set(nullptr, from));
  AsnTimePtr next(ASN1_TIME_set(nullptr, from + static_cast<std::time_t>(validity.count())));
  if (!last || !next || X509_CRL_set1_lastUpdate(crl.get(), last.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next.get()) != 1) {
    return SslFailure(Code::kInternal, "CRL validity");
  }
  for (const std::string& hex : revoked_serials_hex) {
    BIGNUM* raw = nullptr;
    if (hex.empty() || hex.size() > 40 ||
        BN_hex2bn(&raw, hex.c_str()) != static_cast<int>(hex.size())) {
      BN_free(raw);
      return InvalidArgument("revoked serial is not hex: " + hex.substr(0, 64));
    }
    BnPtr bn(raw);
    AsnIntPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
    RevokedPtr entry(X509_REVOKED_new());
    if (!serial || !entry || X509_REVOKED_set_serialNumber(entry.get(), serial.get()) != 1 ||
        X509_REVOKED_set_revocationDate(entry.get(), last.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), entry.get()) != 1) {
      return SslFailure(Code::kInternal, "CRL entry");
    }
    entry.release();  // owned by the CRL
  }
  BnPtr number_bn(BN_new());
  if (!number_bn || BN_set_word(number_bn.get(), crl_number) != 1) {
    return SslFailure(Code::kInternal, "CRL number");
  }
  AsnIntPtr number(BN_to_ASN1_INTEGER(number_bn.get(), nullptr));
  if (!number || X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) != 1) {
    return SslFailure(Code::kInternal, "CRL number");
  }
  if (X509_CRL_sort(crl.get()) != 1 || X509_CRL_sign(crl.get(), ca_key.get(), EVP_sha256()) <= 0) {
    return SslFailure(Code::kInternal, "sign CRL");
  }
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_X509_CRL(out.get(), crl.get()) != 1) {
    return SslFailure(Code::kInternal, "CRL to PEM");
  }
  return BioToString(out.get());
}

Status VerifyCertificate(std::string_view cert_pem, std::string_view ca_pem, TimePoint at) {
  DM_ASSIGN_OR_RETURN(X509Ptr cert, LoadCert(cert_pem));
  DM_ASSIGN_OR_RETURN(X509Ptr ca, LoadCert(ca_pem));
  StorePtr store(X509_STORE_new());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca.get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1) {
    return SslFailure(Code::kInternal, "set up certificate verification");
  }
  // Setting the time also sets X509_V_FLAG_USE_CHECK_TIME, so `at` replaces the wall clock.
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()),
                             std::chrono::system_clock::to_time_t(at));
  int rc = X509_verify_cert(ctx.get());
  if (rc != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return Unauthenticated(std::string("certificate does not verify: ") +
                           X509_verify_cert_error_string(err));
  }
  return Status::Ok();
}

std::string PemBase64(std::string_view pem) {
  const size_t begin = pem.find("-----BEGIN ");
  if (begin == std::string_view::npos) return {};
  size_t pos = pem.find('\n', begin);
  std::string out;
  while (pos != std::string_view::npos && pos + 1 < pem.size()) {
    const size_t next = pem.find('\n', pos + 1);
    std::string_view line =
        pem.substr(pos + 1, next == std::string_view::npos ? next : next - pos - 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.rfind("-----END ", 0) == 0) break;
    out += line;
    pos = next;
  }
  return out;
}

std::string PemFromDer(std::span<const uint8_t> der, std::string_view label) {
  const std::string body = crypto::Base64Encode(der);
  std::string pem = "-----BEGIN " + std::string(label) + "-----\n";
  for (size_t i = 0; i < body.size(); i += 64) pem += body.substr(i, 64) + "\n";
  return pem + "-----END " + std::string(label) + "-----\n";
}

std::vector<std::string> SplitCertificatePems(std::string_view bundle) {
  constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t begin = bundle.find(kBegin, pos);
    if (begin == std::string_view::npos) break;
    const size_t end = bundle.find(kEnd, begin);
    if (end == std::string_view::npos) break;
    out.push_back(std::string(bundle.substr(begin, end + kEnd.size() - begin)) + "\n");
    pos = end + kEnd.size();
  }
  return out;
}

}  // namespace dm::pki
