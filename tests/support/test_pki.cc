#include "tests/support/test_pki.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <utility>

namespace meshrpc::testing {
namespace {

using KeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree<EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, OpenSslFree<X509_free>>;
using BioPtr = std::unique_ptr<BIO, OpenSslFree<BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslFree<BN_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, OpenSslFree<X509_EXTENSION_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, OpenSslFree<GENERAL_NAME_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, OpenSslFree<GENERAL_NAMES_free>>;

// The CA's validity, wider than any leaf a test asks for by default or by expired_client(), so
// that a chain fails on the leaf's dates and never on the CA's.
constexpr std::chrono::seconds kAuthorityNotBeforeOffset = std::chrono::days{-30};
constexpr std::chrono::seconds kAuthorityNotAfterOffset = std::chrono::days{3650};

// 159 random bits with the top one set: a positive serial that needs exactly 20 octets, RFC
// 5280's maximum, and collides with another with probability 2^-158.
constexpr int kSerialBits = 159;

// Throws "TestPki: <step> failed: <every error on OpenSSL's queue>". The queue is drained:
// the first entry is usually the cause, and entries left behind would be blamed on the next
// failure in this thread.
[[noreturn]] void throw_openssl_error(std::string_view step) {
  std::string message = "TestPki: " + std::string(step) + " failed";
  const char* separator = ": ";
  while (unsigned long code = ERR_get_error()) {
    char text[256];  // ERR_error_string_n truncates to fit; OpenSSL's messages are far shorter
    ERR_error_string_n(code, text, sizeof text);
    message += separator;
    message += text;
    separator = "; ";
  }
  if (separator[0] == ':') message += " (no OpenSSL error queued)";
  throw std::runtime_error(message);
}

// Most OpenSSL calls return 1 on success and 0 or less on failure.
void check(int result, std::string_view step) {
  if (result <= 0) throw_openssl_error(step);
}

[[noreturn]] void throw_errno(std::string_view step, const std::string& path) {
  throw std::system_error(errno, std::generic_category(),
                          "TestPki: " + std::string(step) + " " + path);
}

KeyPtr generate_key() {
  KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (key == nullptr) throw_openssl_error("generating an EC P-256 key");
  return key;
}

void set_random_serial(X509& cert) {
  BignumPtr serial(BN_new());
  if (serial == nullptr) throw_openssl_error("allocating a serial number");
  check(BN_rand(serial.get(), kSerialBits, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY),
        "drawing a random serial number");
  if (BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(&cert)) == nullptr) {
    throw_openssl_error("setting the serial number");
  }
}

// A version 3 certificate for `key` with subject CN=`common_name` (none if empty), a random
// serial and the given validity; the caller adds the issuer, extensions and signature.
CertPtr new_certificate(EVP_PKEY& key, const std::string& common_name,
                        std::chrono::seconds not_before_offset,
                        std::chrono::seconds not_after_offset) {
  CertPtr cert(X509_new());
  if (cert == nullptr) throw_openssl_error("allocating a certificate");
  check(X509_set_version(cert.get(), X509_VERSION_3), "setting the certificate version");
  set_random_serial(*cert);
  if (!common_name.empty()) {
    check(X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(common_name.data()),
                                     static_cast<int>(common_name.size()), -1, 0),
          "setting subject CN \"" + common_name + "\"");
  }
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), not_before_offset.count()) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), not_after_offset.count()) == nullptr) {
    throw_openssl_error("setting the validity period");
  }
  check(X509_set_pubkey(cert.get(), &key), "setting the public key");
  return cert;
}

// Adds the extension `nid` written in openssl.cnf's syntax (`value`, e.g. "critical,CA:TRUE");
// `context` names the issuer and subject that key identifiers are derived from.
void add_extension(X509& cert, X509V3_CTX& context, int nid, const char* value) {
  ExtensionPtr extension(X509V3_EXT_nconf_nid(nullptr, &context, nid, value));
  if (extension == nullptr) {
    throw_openssl_error(std::string("making extension ") + OBJ_nid2sn(nid) + "=" + value);
  }
  check(X509_add_ext(&cert, extension.get(), -1),
        std::string("adding extension ") + OBJ_nid2sn(nid));
}

void append_names(GENERAL_NAMES& names, int type, const std::vector<std::string>& values,
                  std::string_view kind) {
  for (const std::string& value : values) {
    // Typed names rather than one "DNS:a,IP:b" config string: a value holding a comma (a URI
    // may) cannot be misparsed.
    GeneralNamePtr name(a2i_GENERAL_NAME(nullptr, nullptr, nullptr, type, value.c_str(), 0));
    if (name == nullptr) throw_openssl_error("SAN " + std::string(kind) + " \"" + value + "\"");
    check(sk_GENERAL_NAME_push(&names, name.get()), "adding a SAN");
    name.release();  // owned by `names` now
  }
}

void add_subject_alt_names(X509& cert, const CertificateSpec& spec) {
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (names == nullptr) throw_openssl_error("allocating the SAN list");
  append_names(*names, GEN_DNS, spec.dns_names, "DNS");
  append_names(*names, GEN_IPADD, spec.ip_addresses, "IP");
  append_names(*names, GEN_URI, spec.uris, "URI");
  append_names(*names, GEN_EMAIL, spec.emails, "email");
  if (sk_GENERAL_NAME_num(names.get()) == 0) return;
  const int critical = spec.common_name.empty() ? 1 : 0;
  check(X509_add1_ext_i2d(&cert, NID_subject_alt_name, names.get(), critical, X509V3_ADD_DEFAULT),
        "adding subjectAltName");
}

void sign(X509& cert, EVP_PKEY& issuer_key) {
  // X509_sign returns the signature's size, 0 on failure.
  check(X509_sign(&cert, &issuer_key, EVP_sha256()), "signing the certificate");
}

BioPtr new_memory_bio() {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr) throw_openssl_error("allocating a memory BIO");
  return bio;
}

// Everything written to a memory BIO.
std::string contents(BIO& bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(&bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

std::string certificate_pem(X509& cert) {
  BioPtr bio = new_memory_bio();
  check(PEM_write_bio_X509(bio.get(), &cert), "writing the certificate PEM");
  return contents(*bio);
}

// OpenSSL 3 writes a PrivateKey PEM as unencrypted PKCS#8 ("BEGIN PRIVATE KEY").
std::string private_key_pem(EVP_PKEY& key) {
  BioPtr bio = new_memory_bio();
  check(PEM_write_bio_PrivateKey(bio.get(), &key, nullptr, nullptr, 0, nullptr, nullptr),
        "writing the private key PEM");
  return contents(*bio);
}

// "<number>-<common name>", safe in a path whatever the common name holds.
std::string file_stem(int number, const std::string& common_name) {
  std::string stem = std::to_string(number) + "-";
  for (char c : common_name.empty() ? std::string("leaf") : common_name) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '-' || c == '_';
    stem += plain ? c : '_';
  }
  return stem;
}

std::string make_private_directory() {
  // mkdtemp makes the directory mode 0700. TempDir() ends in '/'.
  std::string path = ::testing::TempDir() + "meshrpc-pki-XXXXXX";
  if (::mkdtemp(path.data()) == nullptr) throw_errno("creating directory", path);
  return path;
}

void write_all(int fd, std::string_view content, const std::string& path) {
  while (!content.empty()) {
    const ssize_t written = ::write(fd, content.data(), content.size());
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) throw_errno("writing", path);
    content.remove_prefix(static_cast<size_t>(written));
  }
}

}  // namespace

struct TestPki::Authority {
  KeyPtr key;
  CertPtr cert;
};

TestPki::TestPki(std::string name) : directory_(make_private_directory()) {
  try {
    auto authority = std::make_unique<Authority>();
    authority->key = generate_key();
    authority->cert =
        new_certificate(*authority->key, name, kAuthorityNotBeforeOffset, kAuthorityNotAfterOffset);
    X509& cert = *authority->cert;
    check(X509_set_issuer_name(&cert, X509_get_subject_name(&cert)), "setting the CA's issuer");
    X509V3_CTX context;
    X509V3_set_ctx(&context, &cert, &cert, nullptr, nullptr, 0);
    add_extension(cert, context, NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert, context, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_extension(cert, context, NID_subject_key_identifier, "hash");
    sign(cert, *authority->key);
    authority_ = std::move(authority);
    ca_pem_ = certificate_pem(cert);
    ca_file_ = write_file("ca.crt", ca_pem_);
  } catch (...) {
    // The destructor does not run for a constructor that throws.
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
    throw;
  }
}

TestPki::~TestPki() {
  // A destructor cannot report failure; a directory left in the temp dir harms nothing.
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

TestCertificate TestPki::issue(const CertificateSpec& spec) {
  KeyPtr key = generate_key();
  CertPtr cert =
      new_certificate(*key, spec.common_name, spec.not_before_offset, spec.not_after_offset);
  X509& ca = *authority_->cert;
  check(X509_set_issuer_name(cert.get(), X509_get_subject_name(&ca)), "setting the issuer");

  X509V3_CTX context;
  X509V3_set_ctx(&context, &ca, cert.get(), nullptr, nullptr, 0);
  add_extension(*cert, context, NID_basic_constraints, "critical,CA:FALSE");
  add_extension(*cert, context, NID_key_usage, "critical,digitalSignature");
  if (spec.server || spec.client) {
    const char* usages = spec.server && spec.client ? "serverAuth,clientAuth"
                         : spec.server              ? "serverAuth"
                                                    : "clientAuth";
    add_extension(*cert, context, NID_ext_key_usage, usages);
  }
  add_extension(*cert, context, NID_subject_key_identifier, "hash");
  add_extension(*cert, context, NID_authority_key_identifier, "keyid:always");
  add_subject_alt_names(*cert, spec);
  sign(*cert, *authority_->key);

  TestCertificate issued;
  issued.cert_pem = certificate_pem(*cert);
  issued.key_pem = private_key_pem(*key);
  issued.chain_pem = issued.cert_pem;
  const std::string stem = file_stem(++issued_count_, spec.common_name);
  issued.cert_file = write_file(stem + ".crt", issued.cert_pem);
  issued.key_file = write_file(stem + ".key", issued.key_pem);
  return issued;
}

TestCertificate TestPki::server() {
  return issue({.common_name = "localhost",
                .dns_names = {"localhost"},
                .ip_addresses = {"127.0.0.1", "::1"}});
}

TestCertificate TestPki::client(std::string common_name, std::vector<std::string> uris) {
  return issue({.common_name = std::move(common_name), .uris = std::move(uris), .server = false});
}

TestCertificate TestPki::expired_client() {
  return issue({.common_name = "expired-client",
                .not_before_offset = std::chrono::hours{-25},
                .not_after_offset = std::chrono::hours{-1},
                .server = false});
}

std::string TestPki::write_file(const std::string& name, const std::string& pem) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    throw std::invalid_argument("TestPki::write_file: \"" + name +
                                "\" is not a plain file name inside " + directory_);
  }
  const std::string path = directory_ + "/" + name;
  std::string temporary = directory_ + "/." + name + ".XXXXXX";
  const int fd = ::mkstemp(temporary.data());
  if (fd < 0) throw_errno("creating", temporary);
  bool still_open = true;
  try {
    // mkstemp's 0600 is subject to the umask; the contract is 0600 exactly.
    if (::fchmod(fd, S_IRUSR | S_IWUSR) != 0) throw_errno("chmod 0600", temporary);
    write_all(fd, pem, temporary);
    still_open = false;
    if (::close(fd) != 0) throw_errno("closing", temporary);
    if (::rename(temporary.c_str(), path.c_str()) != 0) throw_errno("renaming onto", path);
  } catch (...) {
    if (still_open) ::close(fd);
    ::unlink(temporary.c_str());
    throw;
  }
  return path;
}

std::shared_ptr<transport::TlsCredentials> make_credentials(transport::TlsOptions options,
                                                            transport::TlsRole role) {
  auto made = transport::TlsCredentials::create(std::move(options), role);
  EXPECT_TRUE(made.ok()) << made.status().to_string();
  return made.ok() ? std::move(made).value() : nullptr;
}

}  // namespace meshrpc::testing
