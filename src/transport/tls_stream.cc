// TlsStream: a TLS session over another ByteStream, and the handshakes that make one.
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/append.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "meshrpc/base/unique_function.h"
#include "meshrpc/transport/tls.h"
#include "transport/tcp_stream.h"

namespace meshrpc::transport {
namespace {

// The ByteStream under a TLS session, as the next layer asio::ssl::stream wants. Replays
// `prefix` (bytes a server read to recognise TLS) before reading from the stream itself.
class InnerStream {
 public:
  using executor_type = asio::any_io_executor;
  using lowest_layer_type = InnerStream;

  InnerStream(std::unique_ptr<ByteStream> stream, std::string prefix)
      : stream_(std::move(stream)), prefix_(std::move(prefix)) {}

  executor_type get_executor() { return stream_->get_executor(); }
  lowest_layer_type& lowest_layer() { return *this; }
  ByteStream& stream() { return *stream_; }

  template <typename MutableBufferSequence, typename CompletionToken>
  auto async_read_some(const MutableBufferSequence& buffers, CompletionToken&& token) {
    if (prefix_.empty())
      return stream_->async_read_some(buffers, std::forward<CompletionToken>(token));
    return asio::async_initiate<CompletionToken, void(error_code, size_t)>(
        [this](auto handler, const MutableBufferSequence& buffers) {
          const size_t n = asio::buffer_copy(buffers, asio::buffer(prefix_));
          prefix_.erase(0, n);
          asio::post(stream_->get_executor(), asio::append(std::move(handler), error_code(), n));
        },
        token, buffers);
  }
  template <typename ConstBufferSequence, typename CompletionToken>
  auto async_write_some(const ConstBufferSequence& buffers, CompletionToken&& token) {
    return stream_->async_write_some(buffers, std::forward<CompletionToken>(token));
  }

 private:
  std::unique_ptr<ByteStream> stream_;
  std::string prefix_;
};

// Plaintext bytes move through these in units of at most one TLS record.
constexpr size_t kRecordBytes = 16 * 1024;

// Copies into [data, data + size) the plaintext of records OpenSSL already holds, without
// waiting for the network. Asio's read returns one record at a time; a peer that batches
// many small frames sends several records in one segment, and handing them over in one read
// lets the reader handle them in one turn (and batch its replies) as it does over plaintext.
// Stops at a partial record, the end of the stream or an error, and leaves those for the
// next read through Asio, which reports them.
size_t read_held_records(SSL* ssl, char* data, size_t size) {
  size_t total = 0;
  while (total < size && SSL_has_pending(ssl) == 1) {
    size_t got = 0;
    if (SSL_read_ex(ssl, data + total, size - total, &got) != 1) {
      ERR_clear_error();
      break;
    }
    total += got;
  }
  return total;
}

// What a TlsStream and its operations in flight share: the operations hold it, so a stream
// destroyed with operations outstanding leaves the session alive until they complete (with
// operation_aborted, as the inner stream is closed).
struct TlsSession {
  TlsSession(std::unique_ptr<ByteStream> inner, std::string prefix,
             std::shared_ptr<asio::ssl::context> context_in)
      : context(std::move(context_in)),
        ssl(InnerStream(std::move(inner), std::move(prefix)), *context) {}

  ByteStream& inner() { return ssl.next_layer().stream(); }
  bool has_plaintext() const { return stash_begin < stash.size(); }

  std::shared_ptr<asio::ssl::context> context;  // the SSL object refers to it
  asio::ssl::stream<InnerStream> ssl;
  // Sticky outcomes (ByteStream's contract): once set, later operations report them at once.
  error_code read_error;
  error_code write_error;
  // Plaintext that async_wait_readable decrypted ahead of the read that will take it. Held
  // only between the two: an idle connection keeps no buffer.
  std::vector<char> stash;
  size_t stash_begin = 0;
  // Where the buffers of a gathered write are joined: asio's TLS stream encrypts only the
  // first buffer of a sequence per call, and a record per frame would cost a record header,
  // a MAC and a system call for every small frame.
  std::vector<char> joined;
  // A read (or wait) is outstanding. A write that fails meanwhile holds its completion in
  // `deferred_write` until the read completes: when a peer rejects us it sends an alert and
  // closes, and our write may see the reset before our read sees the alert, which says why.
  bool reading = false;
  UniqueFunction<void()> deferred_write;

  // The read (or wait) finished: a write failure held for it may be reported now.
  void end_read() {
    reading = false;
    if (deferred_write) {
      auto deferred = std::move(deferred_write);
      deferred_write = nullptr;
      deferred();
    }
  }
};

// ---- handshake failures, named ----

TlsError from_verify_result(long result) {
  switch (result) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return TlsError::kPeerCertificateExpired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return TlsError::kPeerCertificateNotYetValid;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
      return TlsError::kPeerCertificateUntrusted;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return TlsError::kPeerNameMismatch;
    default:
      return TlsError::kPeerCertificateInvalid;
  }
}

// Turns what asio reports for a failed handshake or read into the TlsError that says what
// happened (in TLS 1.3 a client learns that the server refused its certificate only on its
// first read). The peer closing TCP without TLS's close_notify is the end of its data:
// meshrpc frames and HTTP messages carry their own lengths, so a truncation cannot pass for
// a whole message. Errors of the stream below (reset, eof, cancelled) stay as they are.
error_code classify_failure(const error_code& ec, SSL* ssl) {
  if (ec == asio::ssl::error::stream_truncated) return asio::error::eof;
  if (ec.category() != asio::error::get_ssl_category()) return ec;
  ERR_clear_error();
  switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
      return make_error_code(from_verify_result(SSL_get_verify_result(ssl)));
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
      return make_error_code(TlsError::kPeerCertificateMissing);
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return make_error_code(TlsError::kCertificateRequiredByPeer);
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
      return make_error_code(TlsError::kCertificateRejectedByPeer);
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_UNKNOWN_PROTOCOL:
    case SSL_R_RECORD_LENGTH_MISMATCH:
      return make_error_code(TlsError::kNotTls);
    default:
      return make_error_code(TlsError::kHandshakeFailed);
  }
}

template <typename Handler>
void post_result(asio::any_io_executor executor, Handler handler, error_code ec, size_t n) {
  asio::post(std::move(executor), asio::append(std::move(handler), ec, n));
}

class TlsStream final : public ByteStream {
 public:
  TlsStream(std::shared_ptr<TlsSession> session, std::shared_ptr<const PeerIdentity> identity)
      : session_(std::move(session)),
        identity_(std::move(identity)),
        local_(session_->inner().local_address()),
        remote_(session_->inner().remote_address()) {}
  ~TlsStream() override { session_->inner().close(); }

  executor_type get_executor() override { return session_->inner().get_executor(); }
  // The peer sees the end of our data as a TCP FIN without close_notify (see classify_failure()):
  // sending close_notify would need a write of our own racing the caller's.
  void shutdown_send() override { session_->inner().shutdown_send(); }
  void close() override { session_->inner().close(); }
  void abort() override { session_->inner().abort(); }
  Address local_address() const override { return local_; }
  Address remote_address() const override { return remote_; }
  std::shared_ptr<const PeerIdentity> peer_identity() const override { return identity_; }

 protected:
  void initiate_read(std::span<const asio::mutable_buffer> buffers, ReadHandler handler) override;
  void initiate_write(std::span<const asio::const_buffer> buffers, WriteHandler handler) override;
  void initiate_wait_readable(WaitHandler handler) override;

 private:
  std::shared_ptr<TlsSession> session_;
  std::shared_ptr<const PeerIdentity> identity_;
  Address local_;
  Address remote_;
};

void TlsStream::initiate_read(std::span<const asio::mutable_buffer> buffers, ReadHandler handler) {
  TlsSession& s = *session_;
  if (s.has_plaintext()) {
    const size_t n = asio::buffer_copy(
        buffers, asio::buffer(s.stash.data() + s.stash_begin, s.stash.size() - s.stash_begin));
    s.stash_begin += n;
    if (!s.has_plaintext()) {
      std::vector<char>().swap(s.stash);
      s.stash_begin = 0;
    }
    return post_result(get_executor(), std::move(handler), error_code(), n);
  }
  if (s.read_error) return post_result(get_executor(), std::move(handler), s.read_error, 0);
  asio::mutable_buffer target;
  for (const auto& buffer : buffers) {
    if (buffer.size() > 0) {
      target = buffer;
      break;
    }
  }
  if (target.size() == 0) return post_result(get_executor(), std::move(handler), error_code(), 0);
  s.reading = true;
  s.ssl.async_read_some(
      target,
      AdaptedCompletion(std::move(handler), get_executor(),
                        [session = session_, target](ReadHandler handler, error_code ec, size_t n) {
                          ec = classify_failure(ec, session->ssl.native_handle());
                          if (ec && ec != asio::error::operation_aborted) {
                            session->read_error = ec;
                          }
                          if (!ec) {
                            n += read_held_records(session->ssl.native_handle(),
                                                   static_cast<char*>(target.data()) + n,
                                                   target.size() - n);
                          }
                          std::move(handler)(ec, n);
                          session->end_read();
                        }));
}

void TlsStream::initiate_write(std::span<const asio::const_buffer> buffers, WriteHandler handler) {
  TlsSession& s = *session_;
  if (s.write_error) return post_result(get_executor(), std::move(handler), s.write_error, 0);
  asio::const_buffer source;
  size_t non_empty = 0;
  for (const auto& buffer : buffers) {
    if (buffer.size() == 0) continue;
    if (non_empty++ == 0) source = buffer;
  }
  if (non_empty == 0) return post_result(get_executor(), std::move(handler), error_code(), 0);
  if (non_empty > 1) {
    s.joined.resize(kRecordBytes);
    const size_t n = asio::buffer_copy(asio::buffer(s.joined), buffers);
    source = asio::buffer(s.joined.data(), n);
  }
  s.ssl.async_write_some(
      source, AdaptedCompletion(
                  std::move(handler), get_executor(),
                  [session = session_](WriteHandler handler, error_code ec, size_t n) {
                    ec = classify_failure(ec, session->ssl.native_handle());
                    if (!ec || ec == asio::error::operation_aborted) {
                      return std::move(handler)(ec, n);
                    }
                    session->write_error = ec;
                    if (!session->reading) return std::move(handler)(ec, n);
                    session->deferred_write = [session, handler = std::move(handler), n]() mutable {
                      // The read's reason, if TLS gave one, is the better one.
                      if (session->read_error.category() == tls_category()) {
                        session->write_error = session->read_error;
                      }
                      std::move(handler)(session->write_error, n);
                    };
                  }));
}

void TlsStream::initiate_wait_readable(WaitHandler handler) {
  TlsSession& s = *session_;
  if (s.has_plaintext() || s.read_error || SSL_has_pending(s.ssl.native_handle()) == 1) {
    return asio::post(get_executor(), asio::append(std::move(handler), error_code()));
  }
  // Ciphertext may also sit in asio's buffers, where no call can see it: the only sure way to
  // know a read would not wait is to read, into the stash.
  s.stash.resize(kRecordBytes);
  s.stash_begin = 0;
  s.reading = true;
  s.ssl.async_read_some(
      asio::buffer(s.stash),
      AdaptedCompletion(std::move(handler), get_executor(),
                        [session = session_](WaitHandler handler, error_code ec, size_t n) {
                          if (!ec) {
                            n += read_held_records(session->ssl.native_handle(),
                                                   session->stash.data() + n,
                                                   session->stash.size() - n);
                          }
                          session->stash.resize(n);
                          if (n == 0) std::vector<char>().swap(session->stash);
                          ec = classify_failure(ec, session->ssl.native_handle());
                          if (ec == asio::error::operation_aborted) {
                            std::move(handler)(ec);
                          } else {
                            // The read that follows reports an error or the end of the stream.
                            if (ec) session->read_error = ec;
                            std::move(handler)(error_code());
                          }
                          session->end_read();
                        }));
}

// ---- the peer's identity ----

std::string name_to_string(const X509_NAME* name) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return {};
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return size > 0 ? std::string(data, static_cast<size_t>(size)) : std::string();
}

std::string ia5_to_string(const ASN1_IA5STRING* text) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                     static_cast<size_t>(ASN1_STRING_length(text)));
}

std::string ip_to_string(const ASN1_OCTET_STRING* ip) {
  const int length = ASN1_STRING_length(ip);
  const int family = length == 4 ? AF_INET : length == 16 ? AF_INET6 : 0;
  char text[INET6_ADDRSTRLEN] = {};
  if (family == 0 || inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof(text)) == nullptr) {
    return {};
  }
  return text;
}

std::string to_hex(const unsigned char* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0xf]);
  }
  return out;
}

void add_alternative_names(X509* cert, PeerIdentity& identity) {
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    switch (name->type) {
      case GEN_DNS:
        identity.dns_names.push_back(ia5_to_string(name->d.dNSName));
        break;
      case GEN_URI:
        identity.uris.push_back(ia5_to_string(name->d.uniformResourceIdentifier));
        break;
      case GEN_EMAIL:
        identity.emails.push_back(ia5_to_string(name->d.rfc822Name));
        break;
      case GEN_IPADD:
        if (std::string ip = ip_to_string(name->d.iPAddress); !ip.empty()) {
          identity.ip_addresses.push_back(std::move(ip));
        }
        break;
      default:
        break;
    }
  }
  GENERAL_NAMES_free(names);
}

// The verified certificate's identity, or null when the peer sent none.
std::shared_ptr<const PeerIdentity> identity_of(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return nullptr;
  auto identity = std::make_shared<PeerIdentity>();
  const X509_NAME* subject = X509_get_subject_name(cert);
  identity->subject = name_to_string(subject);
  identity->issuer = name_to_string(X509_get_issuer_name(cert));
  char common_name[256] = {};
  if (X509_NAME_get_text_by_NID(const_cast<X509_NAME*>(subject), NID_commonName, common_name,
                                sizeof(common_name)) > 0) {
    identity->common_name = common_name;
  }
  add_alternative_names(cert, *identity);
  if (BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    std::vector<unsigned char> bytes(static_cast<size_t>(BN_num_bytes(serial)));
    BN_bn2bin(serial, bytes.data());
    identity->serial = to_hex(bytes.data(), bytes.size());
    BN_free(serial);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (X509_digest(cert, EVP_sha256(), digest, &digest_size) == 1) {
    identity->sha256_fingerprint = to_hex(digest, digest_size);
  }
  return identity;
}

// Makes the client check the server's certificate against `name` (a DNS name or IP literal)
// and send it as SNI (names only: RFC 6066 forbids IP literals there).
void expect_server_name(SSL* ssl, const std::string& name) {
  if (name.empty()) return;
  const std::string bare = name.size() > 2 && name.front() == '[' && name.back() == ']'
                               ? name.substr(1, name.size() - 2)
                               : name;
  unsigned char ip[16];
  const bool is_ip =
      inet_pton(AF_INET, bare.c_str(), ip) == 1 || inet_pton(AF_INET6, bare.c_str(), ip) == 1;
  if (is_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), bare.c_str());
    return;
  }
  SSL_set1_host(ssl, bare.c_str());
  SSL_set_tlsext_host_name(ssl, bare.c_str());
}

}  // namespace

namespace detail {

void start_tls_handshake(std::unique_ptr<ByteStream> stream, TlsCredentials& credentials,
                         std::string server_name, std::string already_read,
                         TlsHandshakeHandler handler) {
  const bool client = credentials.role() == TlsRole::kClient;
  auto executor = stream->get_executor();
  auto session = std::make_shared<TlsSession>(std::move(stream), std::move(already_read),
                                              credentials.context_for_handshake());
  if (client && credentials.options().verify_peer) {
    const std::string& configured = credentials.options().server_name;
    expect_server_name(session->ssl.native_handle(), configured.empty() ? server_name : configured);
  }
  session->ssl.async_handshake(
      client ? asio::ssl::stream_base::client : asio::ssl::stream_base::server,
      AdaptedCompletion(
          std::move(handler), executor, [session](TlsHandshakeHandler handler, error_code ec) {
            SSL* ssl = session->ssl.native_handle();
            if (ec) {
              ec = classify_failure(ec, ssl);
              session->inner().abort();
              return std::move(handler)(ec, nullptr);
            }
            auto identity = identity_of(ssl);
            std::move(handler)(error_code(),
                               std::make_unique<TlsStream>(session, std::move(identity)));
          }));
}

}  // namespace detail

TlsNetwork::TlsNetwork(Network& inner, std::shared_ptr<TlsCredentials> credentials)
    : inner_(inner), credentials_(std::move(credentials)) {}

void TlsNetwork::initiate_connect(const Address& address, asio::any_io_executor executor,
                                  ConnectHandler handler) {
  auto slot = asio::get_associated_cancellation_slot(handler);
  inner_.async_connect(
      address, executor,
      asio::bind_cancellation_slot(
          slot, [credentials = credentials_, host = address.host, handler = std::move(handler)](
                    error_code ec, std::unique_ptr<ByteStream> stream) mutable {
            if (ec) return std::move(handler)(ec, nullptr);
            async_tls_connect(std::move(stream), *credentials, host, std::move(handler));
          }));
}

}  // namespace meshrpc::transport
