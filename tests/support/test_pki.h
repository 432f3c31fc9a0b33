// TestPki: a throwaway certificate authority for TLS and mTLS tests, made with OpenSSL when the
// test runs so that no private key is ever committed.
//
//   TestPki pki;                                   // self-signed EC P-256 CA
//   TestCertificate server = pki.server();         // CN=localhost, SAN localhost/127.0.0.1/::1
//   TestCertificate client = pki.client("orders", {"spiffe://mesh.test/orders"});
//   tls_options.ca_file = pki.ca_file();
//   tls_options.certificate_file = server.cert_file;
//   tls_options.private_key_file = server.key_file;
//
// Every key is EC P-256 and every certificate is signed with SHA-256: the smallest choice every
// TLS 1.2 and 1.3 peer accepts, and an EC key is generated in about a millisecond where RSA-2048
// takes tens, which matters when every test makes its own PKI.
//
// Time and randomness: validity is relative to the system clock, not an Env's, because OpenSSL
// checks certificates against the system clock during a real handshake. Keys and serial numbers
// come from OpenSSL's RNG; nothing here is meant to replay from a seed.
//
// Errors: these are fixtures, so a failure throws and fails the test that called it:
// std::runtime_error naming the step and OpenSSL's errors (a malformed SAN is one: "TestPki: SAN
// IP \"1.2.3\" failed: ...bad ip address"), std::system_error for a file, std::invalid_argument
// for a file name outside directory().
//
// Lifetime: the files live in a fresh directory that the destructor removes with everything in
// it; the PEM strings in a TestCertificate stay valid after that. Threading: one thread at a
// time.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "meshrpc/transport/tls.h"

namespace meshrpc::testing {

// Owns an OpenSSL object in a std::unique_ptr: frees it with the library's own free function,
// e.g. std::unique_ptr<X509, OpenSslFree<X509_free>>.
template <auto kFree>
struct OpenSslFree {
  template <typename T>
  void operator()(T* object) const {
    kFree(object);
  }
};

struct TestCertificate {
  std::string cert_pem;   // the leaf certificate
  std::string key_pem;    // its private key: PKCS#8, unencrypted
  std::string chain_pem;  // the leaf followed by any intermediates (this CA signs leaves directly,
                          // so today the leaf alone)
  std::string cert_file;  // cert_pem written under TestPki::directory()
  std::string key_file;   // key_pem written under TestPki::directory()
};

// Every member has an initializer, so a designated initializer names only what differs without
// GCC's -Wmissing-field-initializers: issue({.common_name = "db", .server = false}).
struct CertificateSpec {
  // Empty leaves the subject empty; the subjectAltName is then marked critical, as RFC 5280
  // 4.2.1.6 requires of a certificate identified by its SANs alone.
  std::string common_name{};
  std::vector<std::string> dns_names{};     // SAN DNS
  std::vector<std::string> ip_addresses{};  // SAN IP, IPv4 or IPv6 text: "127.0.0.1", "::1"
  std::vector<std::string> uris{};          // SAN URI: "spiffe://mesh.test/orders"
  std::vector<std::string> emails{};        // SAN email
  // Validity relative to the system clock when issue() runs. The hour before now absorbs clock
  // skew between the test and any process it hands the certificate to; a day outlasts any test
  // run.
  std::chrono::seconds not_before_offset{-3600};
  std::chrono::seconds not_after_offset{86400};
  // extendedKeyUsage serverAuth / clientAuth. With both false the certificate has no
  // extendedKeyUsage at all, which OpenSSL treats as good for any purpose.
  bool server = true;
  bool client = true;
};

class TestPki {
 public:
  // Makes a self-signed CA with subject CN=`name`: basicConstraints CA:TRUE, keyUsage
  // keyCertSign|cRLSign, a subject key identifier. Its files go to a fresh directory (mode
  // 0700) under ::testing::TempDir(), which honours $TEST_TMPDIR and $TMPDIR.
  explicit TestPki(std::string name = "meshrpc test CA");
  ~TestPki();
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  const std::string& ca_pem() const { return ca_pem_; }
  const std::string& ca_file() const { return ca_file_; }
  const std::string& directory() const { return directory_; }

  // A leaf signed by this CA: random 159-bit serial (unique in practice, positive, within RFC
  // 5280's 20 octets), basicConstraints CA:FALSE, keyUsage digitalSignature (all an ECDSA TLS
  // key does), subject and authority key identifiers, and the SANs in `spec`.
  TestCertificate issue(const CertificateSpec& spec);

  // CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1; serverAuth and clientAuth.
  TestCertificate server();
  // CN=`common_name`, SAN URI for each of `uris`; clientAuth only.
  TestCertificate client(std::string common_name = "test-client",
                         std::vector<std::string> uris = {});
  // As client(), but it expired an hour ago (and was valid for the day before).
  TestCertificate expired_client();

  // Writes `pem` to directory()/`name`, replacing any file there, and returns the path. The new
  // content goes to a temporary file renamed over `name`, so a reader (a reload under test)
  // sees the old file or the new one, never half of one; the path then names a new inode.
  // Every file this class writes is mode 0600. `name` must be a plain file name (no '/').
  std::string write_file(const std::string& name, const std::string& pem);

 private:
  struct Authority;  // the CA's key and certificate, as OpenSSL objects

  std::string directory_;
  std::unique_ptr<Authority> authority_;
  std::string ca_pem_;
  std::string ca_file_;
  int issued_count_ = 0;  // numbers the file names of issued certificates
};

// TlsCredentials from `options` (TlsCredentials::create), or null after failing the current
// test with the reason: tests build credentials they expect to be valid.
std::shared_ptr<transport::TlsCredentials> make_credentials(transport::TlsOptions options,
                                                            transport::TlsRole role);

}  // namespace meshrpc::testing
