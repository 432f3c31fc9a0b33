// PeerIdentity: who is at the other end of a connection, as its verified TLS certificate
// says. Plaintext connections have none (ByteStream::peer_identity() is null), and neither
// does a TLS connection whose peer sent no certificate (a client of a server that does not
// ask for one).
//
// Only a certificate that verified against the configured CA bundle gives an identity, so
// every field here may be trusted for authorization. SPIFFE-style workload identities
// ("spiffe://example.org/ns/prod/sa/kv") arrive as URI SANs.
//
// Threading: immutable once made; shared by every call of the connection.
#pragma once

#include <string>
#include <vector>

namespace meshrpc::transport {

struct PeerIdentity {
  // The certificate's subject in RFC 2253 form, most specific first: "CN=kv-1,O=Example".
  std::string subject;
  // The subject's common name (CN), or empty.
  std::string common_name;
  // Subject alternative names by kind, in certificate order.
  std::vector<std::string> dns_names;
  std::vector<std::string> uris;
  std::vector<std::string> emails;
  std::vector<std::string> ip_addresses;  // textual: "127.0.0.1", "::1"
  // The issuer's subject, RFC 2253 form.
  std::string issuer;
  // Lowercase hex of the certificate's serial number.
  std::string serial;
  // SHA-256 of the DER certificate, lowercase hex: pins one exact certificate.
  std::string sha256_fingerprint;

  // Every name an authorization rule may match, each with its kind: "dns:kv-1.example",
  // "uri:spiffe://...", "email:...", "ip:10.0.0.1", "cn:kv-1".
  std::vector<std::string> principals() const {
    std::vector<std::string> out;
    if (!common_name.empty()) out.push_back("cn:" + common_name);
    for (const auto& name : dns_names) out.push_back("dns:" + name);
    for (const auto& uri : uris) out.push_back("uri:" + uri);
    for (const auto& email : emails) out.push_back("email:" + email);
    for (const auto& ip : ip_addresses) out.push_back("ip:" + ip);
    return out;
  }
};

}  // namespace meshrpc::transport
