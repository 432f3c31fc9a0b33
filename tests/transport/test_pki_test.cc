// TestPki, the throwaway CA the TLS tests use, checked with OpenSSL's own verifier: what it
// issues must verify, or fail, exactly as a real PKI's certificates would.
#include "tests/support/test_pki.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

namespace meshrpc::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

using ::meshrpc::testing::OpenSslFree;
using CertPtr = std::unique_ptr<X509, OpenSslFree<X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree<EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, OpenSslFree<BIO_free_all>>;
using StorePtr = std::unique_ptr<X509_STORE, OpenSslFree<X509_STORE_free>>;
using StoreContextPtr = std::unique_ptr<X509_STORE_CTX, OpenSslFree<X509_STORE_CTX_free>>;

CertPtr parse_certificate(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  CertPtr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) throw std::runtime_error("not a certificate PEM: " + pem);
  return cert;
}

KeyPtr parse_private_key(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) throw std::runtime_error("not a private key PEM");
  return key;
}

// X509_verify_cert's verdict on `leaf_pem` with `ca_pem` the only trust anchor, as an
// X509_V_* code (X509_V_OK if it verifies). `purpose` (X509_PURPOSE_SSL_SERVER or _CLIENT)
// also checks the extended key usage; 0 checks none.
int verify(const std::string& ca_pem, const std::string& leaf_pem, int purpose = 0) {
  CertPtr ca = parse_certificate(ca_pem);
  CertPtr leaf = parse_certificate(leaf_pem);
  StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca.get());
  StoreContextPtr context(X509_STORE_CTX_new());
  X509_STORE_CTX_init(context.get(), store.get(), leaf.get(), nullptr);
  if (purpose != 0) X509_STORE_CTX_set_purpose(context.get(), purpose);
  X509_verify_cert(context.get());
  const int error = X509_STORE_CTX_get_error(context.get());
  ERR_clear_error();  // a failed verification leaves entries that would confuse a later test
  return error;
}

// The extension `nid` as `openssl x509 -text` prints it, "" if absent.
std::string extension_text(const std::string& cert_pem, int nid, bool* critical = nullptr) {
  CertPtr cert = parse_certificate(cert_pem);
  const int index = X509_get_ext_by_NID(cert.get(), nid, -1);
  if (index < 0) return "";
  X509_EXTENSION* extension = X509_get_ext(cert.get(), index);
  if (critical != nullptr) *critical = X509_EXTENSION_get_critical(extension) != 0;
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509V3_EXT_print(bio.get(), extension, 0, 0);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

std::filesystem::perms permissions(const std::string& path) {
  return std::filesystem::status(path).permissions() & std::filesystem::perms::mask;
}

TEST(TestPki, ServerCertificateVerifiesAgainstItsCaForServerAndClientAuth) {
  TestPki pki;
  const TestCertificate server = pki.server();
  EXPECT_EQ(verify(pki.ca_pem(), server.cert_pem, X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_EQ(verify(pki.ca_pem(), server.cert_pem, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
}

TEST(TestPki, ServerCertificateNamesLocalhostAndBothLoopbackAddresses) {
  TestPki pki;
  const TestCertificate server = pki.server();
  CertPtr cert = parse_certificate(server.cert_pem);
  EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "example.com", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "10.0.0.1", 0), 0);
  EXPECT_EQ(extension_text(server.cert_pem, NID_subject_alt_name),
            "DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
}

TEST(TestPki, ClientCertificateCarriesItsCommonNameAndUriSans) {
  TestPki pki;
  const TestCertificate client = pki.client("orders", {"spiffe://mesh.test/orders"});
  CertPtr cert = parse_certificate(client.cert_pem);
  char common_name[64 + 1] = {};  // 64: RFC 5280's ub-common-name
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, common_name,
                            sizeof common_name);
  EXPECT_STREQ(common_name, "orders");
  EXPECT_EQ(extension_text(client.cert_pem, NID_subject_alt_name), "URI:spiffe://mesh.test/orders");
}

TEST(TestPki, ClientCertificateIsGoodForClientAuthOnly) {
  TestPki pki;
  const TestCertificate client = pki.client();
  EXPECT_EQ(verify(pki.ca_pem(), client.cert_pem, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_EQ(verify(pki.ca_pem(), client.cert_pem, X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_INVALID_PURPOSE);
}

TEST(TestPki, ExpiredClientFailsWithCertHasExpired) {
  TestPki pki;
  EXPECT_EQ(verify(pki.ca_pem(), pki.expired_client().cert_pem), X509_V_ERR_CERT_HAS_EXPIRED);
}

TEST(TestPki, CertificateValidOnlyInTheFutureFailsWithNotYetValid) {
  TestPki pki;
  const TestCertificate future = pki.issue({.common_name = "future",
                                            .not_before_offset = std::chrono::hours{1},
                                            .not_after_offset = std::chrono::hours{2}});
  EXPECT_EQ(verify(pki.ca_pem(), future.cert_pem), X509_V_ERR_CERT_NOT_YET_VALID);
}

// Both CAs have the same subject name (the default): the chain must still be told apart, by
// the authority key identifier.
TEST(TestPki, CertificateFromAnotherCaWithTheSameNameIsUntrusted) {
  TestPki trusted;
  TestPki other;
  EXPECT_EQ(verify(trusted.ca_pem(), other.server().cert_pem),
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

TEST(TestPki, CaIsASelfSignedCertificateAuthority) {
  TestPki pki("orders CA");
  CertPtr ca = parse_certificate(pki.ca_pem());
  EXPECT_EQ(X509_check_ca(ca.get()), 1);  // 1: basicConstraints CA:TRUE
  EXPECT_EQ(verify(pki.ca_pem(), pki.ca_pem()), X509_V_OK);
  EXPECT_EQ(extension_text(pki.ca_pem(), NID_key_usage), "Certificate Sign, CRL Sign");
  EXPECT_NE(extension_text(pki.ca_pem(), NID_subject_key_identifier), "");
  char common_name[64 + 1] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(ca.get()), NID_commonName, common_name,
                            sizeof common_name);
  EXPECT_STREQ(common_name, "orders CA");
}

TEST(TestPki, PrivateKeyIsUnencryptedPkcs8AndMatchesItsCertificateOnly) {
  TestPki pki;
  const TestCertificate server = pki.server();
  const TestCertificate client = pki.client();
  EXPECT_THAT(server.key_pem, StartsWith("-----BEGIN PRIVATE KEY-----\n"));
  KeyPtr server_key = parse_private_key(server.key_pem);
  EXPECT_EQ(X509_check_private_key(parse_certificate(server.cert_pem).get(), server_key.get()), 1);
  EXPECT_EQ(X509_check_private_key(parse_certificate(client.cert_pem).get(), server_key.get()), 0);
  ERR_clear_error();
}

TEST(TestPki, IssuedCertificatesHaveDistinctSerials) {
  TestPki pki;
  CertPtr first = parse_certificate(pki.server().cert_pem);
  CertPtr second = parse_certificate(pki.server().cert_pem);
  EXPECT_NE(
      ASN1_INTEGER_cmp(X509_get0_serialNumber(first.get()), X509_get0_serialNumber(second.get())),
      0);
}

TEST(TestPki, ChainIsTheLeafAlone) {
  TestPki pki;
  const TestCertificate server = pki.server();
  EXPECT_EQ(server.chain_pem, server.cert_pem);
}

TEST(TestPki, CertificateWithoutCommonNameMarksItsSansCritical) {
  TestPki pki;
  const TestCertificate workload = pki.issue({.uris = {"spiffe://mesh.test/a,b"}});
  bool critical = false;
  EXPECT_EQ(extension_text(workload.cert_pem, NID_subject_alt_name, &critical),
            "URI:spiffe://mesh.test/a,b");
  EXPECT_TRUE(critical);
  EXPECT_EQ(verify(pki.ca_pem(), workload.cert_pem), X509_V_OK);
}

TEST(TestPki, MalformedIpAddressThrowsNamingIt) {
  TestPki pki;
  try {
    pki.issue({.common_name = "bad", .ip_addresses = {"1.2.3"}});
    FAIL() << "issue() accepted IP 1.2.3";
  } catch (const std::runtime_error& error) {
    EXPECT_THAT(error.what(), HasSubstr("SAN IP \"1.2.3\""));
    EXPECT_THAT(error.what(), HasSubstr("bad ip address"));
  }
}

TEST(TestPki, WritesCaCertificateAndKeyFilesOwnerOnly) {
  TestPki pki;
  const TestCertificate server = pki.server();
  EXPECT_EQ(read_file(pki.ca_file()), pki.ca_pem());
  EXPECT_EQ(read_file(server.cert_file), server.cert_pem);
  EXPECT_EQ(read_file(server.key_file), server.key_pem);
  for (const std::string& path : {pki.ca_file(), server.cert_file, server.key_file}) {
    EXPECT_EQ(std::filesystem::path(path).parent_path(), pki.directory()) << path;
  }
  using std::filesystem::perms;
  EXPECT_EQ(permissions(server.key_file), perms::owner_read | perms::owner_write);
  EXPECT_EQ(permissions(pki.directory()), perms::owner_all);
}

TEST(TestPki, WriteFileReplacesTheFileAtItsPath) {
  TestPki pki;
  const TestCertificate first = pki.server();
  const TestCertificate second = pki.server();
  const std::string path = pki.write_file("server.crt", first.cert_pem);
  EXPECT_EQ(pki.write_file("server.crt", second.cert_pem), path);
  EXPECT_EQ(read_file(path), second.cert_pem);
  EXPECT_EQ(permissions(path),
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

TEST(TestPki, WriteFileRejectsNamesOutsideItsDirectory) {
  TestPki pki;
  for (const char* name : {"", ".", "..", "../escape.crt", "sub/dir.crt"}) {
    EXPECT_THROW(pki.write_file(name, "x"), std::invalid_argument) << '"' << name << '"';
  }
}

TEST(TestPki, DestructorRemovesItsDirectory) {
  std::string directory;
  {
    TestPki pki;
    directory = pki.directory();
    pki.server();
    ASSERT_TRUE(std::filesystem::is_directory(directory));
  }
  EXPECT_FALSE(std::filesystem::exists(directory));
}

}  // namespace
}  // namespace meshrpc::testing
