// TLS 1.3 over any ByteStream (OpenSSL 3 through Asio's SSL layer).
//
// A TLS session is itself a ByteStream wrapping another (byte_stream.h), so it runs the same
// over TCP and over simulated links, and nothing above transport/ knows which it has.
//
//   Server: ServerOptions::tls (core/server.h) takes server credentials; the server tells a
//           TLS ClientHello from plaintext by the first byte, so RPC and HTTP, with and
//           without TLS, share one port (plaintext can be refused).
//   Client: TlsNetwork wraps the Network a Channel (or cluster::Client, ServiceClient, ...)
//           connects through; every connection it makes is TLS, verified against the CA.
//
//   auto server_tls = TlsCredentials::create({.certificate_chain_file = "server.pem",
//                                             .private_key_file = "server.key",
//                                             .ca_file = "clients-ca.pem",
//                                             .client_auth = ClientAuth::kRequire},
//                                            TlsRole::kServer);
//   auto client_tls = TlsCredentials::create({.ca_file = "ca.pem"}, TlsRole::kClient);
//   transport::TlsNetwork secure(network, *client_tls);
//   core::Channel channel(env, secure, {"db-1.example", 7000});
//
// Only TLS 1.3 is spoken: no renegotiation, no RSA key exchange, no CBC suites, and a
// one-round-trip handshake. Certificates verify against `ca_file`/`ca_pem` (the system's
// store when neither is given, clients only), with the host name or IP checked against the
// server's SANs.
//
// Reload: credentials read from files are re-read when a file changes (checked at most every
// `reload_check_interval`, on the next handshake), or at once with reload(). New handshakes
// use the new certificate; established sessions keep theirs. A reload that fails (a half
// written file, a key that does not match) keeps the previous credentials and is reported by
// reload() and last_reload_status().
//
// Failures are error_codes of tls_category(), each saying what was wrong with whose
// certificate ("the peer's certificate has expired", "the peer rejected our certificate:
// unknown CA"); to_status() maps certificate failures to UNAUTHENTICATED (retrying will not
// help) and the rest to UNAVAILABLE.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "meshrpc/base/result.h"
#include "meshrpc/base/status.h"
#include "meshrpc/runtime/asio.h"
#include "meshrpc/transport/byte_stream.h"
#include "meshrpc/transport/connector.h"

namespace meshrpc::transport {

enum class TlsRole { kClient, kServer };

// Whether a server asks clients for a certificate.
enum class ClientAuth {
  kNone,      // no client certificate (server-authenticated TLS only)
  kOptional,  // asked for; verified if sent; a client without one still connects
  kRequire,   // mTLS: a client without a valid certificate fails the handshake
};

// Every member has an initializer, so designated initializers name only what they set.
struct TlsOptions {
  // Our certificate chain (leaf first) and its private key, as PEM files or PEM text (text
  // wins when both are set). Servers need one; a client needs one only for mTLS.
  std::string certificate_chain_file{};
  std::string private_key_file{};
  std::string certificate_chain_pem{};
  std::string private_key_pem{};
  // The CAs the peer's certificate must chain to. A client with neither uses the system's
  // default store; a server asking for client certificates needs one.
  std::string ca_file{};
  std::string ca_pem{};
  // Servers: whether to ask for client certificates.
  ClientAuth client_auth = ClientAuth::kNone;
  // Clients: check the server's certificate (chain and name). Turning this off makes TLS
  // encryption without authentication: anyone in the middle can impersonate the server.
  bool verify_peer = true;
  // Clients: the name the server's certificate must carry and the SNI sent; empty means the
  // host of the address connected to (a DNS name or an IP literal, checked against DNS or IP
  // SANs).
  std::string server_name{};
  // Files are checked for changes at most this often (a stat() of each on a handshake).
  // 10 s: a renewed certificate is in use within seconds, for a few stat calls a minute.
  std::chrono::seconds reload_check_interval{10};
};

// What a TLS connection's failure was; see tls_category().
enum class TlsError {
  kHandshakeFailed = 1,         // a TLS error not covered below (OpenSSL's reason follows)
  kNotTls,                      // the peer does not speak TLS (plaintext, HTTP, garbage)
  kPeerCertificateMissing,      // we require a certificate and the peer sent none
  kPeerCertificateExpired,      // its notAfter has passed
  kPeerCertificateNotYetValid,  // its notBefore is in the future
  kPeerCertificateUntrusted,    // it does not chain to our CA bundle (or is self-signed)
  kPeerNameMismatch,            // it does not name the host we connected to
  kPeerCertificateInvalid,      // any other verification failure (bad signature, usage...)
  kCertificateRejectedByPeer,   // the peer refused our certificate (alert names why)
  kCertificateRequiredByPeer,   // the peer requires a client certificate and we have none
};

const boost::system::error_category& tls_category();
inline error_code make_error_code(TlsError e) { return {static_cast<int>(e), tls_category()}; }
// True for the failures that concern a certificate (UNAUTHENTICATED in to_status()).
bool is_certificate_error(const error_code& ec);

// One side's credentials and verification policy: an OpenSSL context, replaced as a whole on
// reload. Thread-safe; shared by every connection that uses it.
class TlsCredentials {
 public:
  // Reads the files and builds the context. INVALID_ARGUMENT naming the file and OpenSSL's
  // reason for an unreadable or malformed certificate or key, a key that does not match the
  // certificate, a server without a certificate, or client_auth without a CA.
  static Result<std::shared_ptr<TlsCredentials>> create(TlsOptions options, TlsRole role);

  TlsRole role() const { return role_; }
  const TlsOptions& options() const { return options_; }

  // The context for a new handshake: the current one, after re-reading files that changed
  // since the last check (at most every reload_check_interval).
  std::shared_ptr<asio::ssl::context> context_for_handshake();
  // Re-reads every file now. On failure the previous credentials stay in use.
  Status reload();
  Status last_reload_status() const;
  // Successful reloads so far (the first load not counted).
  uint64_t reload_count() const;
  // Seconds since the epoch at which our certificate expires (0 without one): for alerting
  // before it does (meshrpc_tls_certificate_expiry_seconds).
  int64_t certificate_not_after() const;

  TlsCredentials(TlsOptions options, TlsRole role);  // use create()

 private:
  struct Loaded {
    std::shared_ptr<asio::ssl::context> context;
    int64_t not_after = 0;
  };
  Result<Loaded> load() const;
  // Modification times and sizes of the files, to notice a change.
  std::string file_stamp() const;

  const TlsOptions options_;
  const TlsRole role_;
  mutable std::mutex mutex_;
  Loaded loaded_;
  std::string stamp_;
  std::chrono::steady_clock::time_point next_check_{};
  Status last_reload_status_;
  uint64_t reload_count_ = 0;
};

namespace detail {
using TlsHandshakeHandler =
    asio::any_completion_handler<void(error_code, std::unique_ptr<ByteStream>)>;
// `already_read`: bytes a server took off `stream` to recognise TLS, replayed first.
void start_tls_handshake(std::unique_ptr<ByteStream> stream, TlsCredentials& credentials,
                         std::string server_name, std::string already_read,
                         TlsHandshakeHandler handler);
}  // namespace detail

// The client's TLS handshake over a connected `stream`, giving the TLS session as a
// ByteStream: handler(error_code, std::unique_ptr<ByteStream>). The server's certificate must
// name `server_name` (TlsOptions::server_name when that is set). Cancellation through the
// handler's slot, or an error on `stream`, ends the handshake and the stream; bound its time
// by racing it with a timer. `credentials` must outlive the call's initiation only.
template <typename CompletionToken>
auto async_tls_connect(std::unique_ptr<ByteStream> stream, TlsCredentials& credentials,
                       std::string server_name, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(error_code, std::unique_ptr<ByteStream>)>(
      [&credentials](auto handler, std::unique_ptr<ByteStream> stream, std::string name) {
        detail::start_tls_handshake(std::move(stream), credentials, std::move(name), {},
                                    detail::TlsHandshakeHandler(std::move(handler)));
      },
      token, std::move(stream), std::move(server_name));
}

// The server's TLS handshake over an accepted `stream`, of which `already_read` (the bytes
// the server sniffed) were taken off already. As async_tls_connect otherwise.
template <typename CompletionToken>
auto async_tls_accept(std::unique_ptr<ByteStream> stream, TlsCredentials& credentials,
                      std::string already_read, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(error_code, std::unique_ptr<ByteStream>)>(
      [&credentials](auto handler, std::unique_ptr<ByteStream> stream, std::string read) {
        detail::start_tls_handshake(std::move(stream), credentials, {}, std::move(read),
                                    detail::TlsHandshakeHandler(std::move(handler)));
      },
      token, std::move(stream), std::move(already_read));
}

// The first byte of a TLS connection (a handshake record): what a server sniffs for.
inline constexpr unsigned char kTlsHandshakeRecordType = 0x16;

// A Network whose connections are TLS: connect, then handshake with the client credentials,
// verifying the server against the address's host (or TlsOptions::server_name). Listening and
// datagrams pass through to `inner` unchanged (a server does TLS itself: ServerOptions::tls).
//
// Lifetime: `inner` and `credentials` outlive the network and its pending connects.
class TlsNetwork final : public Network {
 public:
  TlsNetwork(Network& inner, std::shared_ptr<TlsCredentials> credentials);

  Result<std::unique_ptr<Listener>> listen(const Address& address,
                                           const ListenOptions& options) override {
    return inner_.listen(address, options);
  }
  using Network::listen;
  Result<std::unique_ptr<DatagramSocket>> open_datagram(const Address& bind_address) override {
    return inner_.open_datagram(bind_address);
  }

 protected:
  void initiate_connect(const Address& address, asio::any_io_executor executor,
                        ConnectHandler handler) override;

 private:
  Network& inner_;
  std::shared_ptr<TlsCredentials> credentials_;
};

}  // namespace meshrpc::transport

namespace boost::system {
template <>
struct is_error_code_enum<meshrpc::transport::TlsError> : std::true_type {};
}  // namespace boost::system
