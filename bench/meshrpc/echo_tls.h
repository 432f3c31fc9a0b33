// TLS credentials for meshrpc's echo pair, from its --tls-* flags (echo_flags.h): the only
// place the benchmark turns flags into transport/tls.h options, so that the server and the
// client cannot disagree about what a flag means.
#pragma once

#include <memory>
#include <utility>

#include "../common/echo_flags.h"
#include "meshrpc/base/result.h"
#include "meshrpc/transport/tls.h"

namespace meshrpc::bench {

// `flags` must be enabled(). A server given --tls-ca requires client certificates from that
// CA (mTLS); a client verifies the server against --tls-ca and the host it connects to
// (127.0.0.1, an IP SAN of the certificate bench/run makes). INVALID_ARGUMENT naming the file
// when one does not load (TlsCredentials::create).
inline Result<std::shared_ptr<transport::TlsCredentials>> make_tls_credentials(
    const TlsFlags& flags, transport::TlsRole role) {
  transport::TlsOptions options{.certificate_chain_file = flags.certificate_chain_file,
                                .private_key_file = flags.private_key_file,
                                .ca_file = flags.ca_file};
  if (role == transport::TlsRole::kServer && !flags.ca_file.empty()) {
    options.client_auth = transport::ClientAuth::kRequire;
  }
  return transport::TlsCredentials::create(std::move(options), role);
}

}  // namespace meshrpc::bench
