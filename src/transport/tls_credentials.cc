// TlsCredentials: building, checking and reloading an OpenSSL context; TLS error codes.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <boost/asio/ssl/error.hpp>
#include <ctime>
#include <string>

#include "meshrpc/base/status_macros.h"
#include "meshrpc/transport/tls.h"

namespace meshrpc::transport {
namespace {

class TlsCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "meshrpc.tls"; }
  std::string message(int value) const override {
    switch (static_cast<TlsError>(value)) {
      case TlsError::kHandshakeFailed:
        return "TLS handshake failed";
      case TlsError::kNotTls:
        return "the peer does not speak TLS";
      case TlsError::kPeerCertificateMissing:
        return "the peer sent no certificate, and one is required";
      case TlsError::kPeerCertificateExpired:
        return "the peer's certificate has expired";
      case TlsError::kPeerCertificateNotYetValid:
        return "the peer's certificate is not yet valid";
      case TlsError::kPeerCertificateUntrusted:
        return "the peer's certificate is not signed by a trusted CA";
      case TlsError::kPeerNameMismatch:
        return "the peer's certificate does not name the host connected to";
      case TlsError::kPeerCertificateInvalid:
        return "the peer's certificate failed verification";
      case TlsError::kCertificateRejectedByPeer:
        return "the peer rejected our certificate";
      case TlsError::kCertificateRequiredByPeer:
        return "the peer requires a client certificate, and we sent none";
    }
    return "unknown TLS error " + std::to_string(value);
  }
};

// OpenSSL's reason for the newest error on this thread's queue, and clears the queue (what is
// left would be misattributed to the next operation on this thread).
std::string take_openssl_error() {
  std::string reason;
  unsigned long code = 0;
  while ((code = ERR_get_error()) != 0) {
    char text[256];
    ERR_error_string_n(code, text, sizeof(text));
    reason = text;
  }
  return reason;
}

Status load_error(std::string_view what, std::string_view source, const error_code& ec) {
  std::string message = "TLS " + std::string(what);
  if (!source.empty()) message += " '" + std::string(source) + "'";
  if (ec.category() == asio::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH) {
    take_openssl_error();
    return invalid_argument_error(message + " does not match the certificate");
  }
  message += ": " + ec.message();
  const std::string detail = take_openssl_error();
  if (!detail.empty() && detail != ec.message()) message += " (" + detail + ")";
  return invalid_argument_error(message);
}

int64_t not_after_of(SSL_CTX* context) {
  X509* leaf = SSL_CTX_get0_certificate(context);
  if (leaf == nullptr) return 0;
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace

const boost::system::error_category& tls_category() {
  static const TlsCategory category;
  return category;
}

bool is_certificate_error(const error_code& ec) {
  if (ec.category() != tls_category()) return false;
  const auto error = static_cast<TlsError>(ec.value());
  return error != TlsError::kHandshakeFailed && error != TlsError::kNotTls;
}

TlsCredentials::TlsCredentials(TlsOptions options, TlsRole role)
    : options_(std::move(options)), role_(role) {}

Result<std::shared_ptr<TlsCredentials>> TlsCredentials::create(TlsOptions options, TlsRole role) {
  auto credentials = std::make_shared<TlsCredentials>(std::move(options), role);
  const std::string stamp = credentials->file_stamp();
  MESHRPC_ASSIGN_OR_RETURN(credentials->loaded_, credentials->load());
  credentials->stamp_ = stamp;
  credentials->next_check_ =
      std::chrono::steady_clock::now() + credentials->options_.reload_check_interval;
  return credentials;
}

Result<TlsCredentials::Loaded> TlsCredentials::load() const {
  namespace ssl = asio::ssl;
  const bool server = role_ == TlsRole::kServer;
  auto context =
      std::make_shared<ssl::context>(server ? ssl::context::tls_server : ssl::context::tls_client);
  SSL_CTX* native = context->native_handle();
  // TLS 1.3 only: every suite is AEAD with forward secrecy, and the handshake takes one round
  // trip. Peers that cannot speak it are older than anything meshrpc talks to.
  SSL_CTX_set_min_proto_version(native, TLS1_3_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION);
  if (server) {
    // Our clients do not resume sessions, so tickets would be bytes and work for nothing.
    SSL_CTX_set_num_tickets(native, 0);
  }
  error_code ec;
  const TlsOptions& o = options_;
  const bool has_chain = !o.certificate_chain_pem.empty() || !o.certificate_chain_file.empty();
  const bool has_key = !o.private_key_pem.empty() || !o.private_key_file.empty();
  if (server && !has_chain) {
    return invalid_argument_error("TLS server credentials need a certificate chain and key");
  }
  if (has_chain != has_key) {
    return invalid_argument_error("TLS credentials need both a certificate chain and its key");
  }
  if (!o.certificate_chain_pem.empty()) {
    context->use_certificate_chain(asio::buffer(o.certificate_chain_pem), ec);
    if (ec) return load_error("certificate chain", "(PEM text)", ec);
  } else if (!o.certificate_chain_file.empty()) {
    context->use_certificate_chain_file(o.certificate_chain_file, ec);
    if (ec) return load_error("certificate chain file", o.certificate_chain_file, ec);
  }
  if (!o.private_key_pem.empty()) {
    context->use_private_key(asio::buffer(o.private_key_pem), ssl::context::pem, ec);
    if (ec) return load_error("private key", "(PEM text)", ec);
  } else if (!o.private_key_file.empty()) {
    context->use_private_key_file(o.private_key_file, ssl::context::pem, ec);
    if (ec) return load_error("private key file", o.private_key_file, ec);
  }
  if (has_chain && SSL_CTX_check_private_key(native) != 1) {
    take_openssl_error();
    return invalid_argument_error("TLS private key does not match the certificate" +
                                  (o.certificate_chain_file.empty()
                                       ? std::string()
                                       : " in '" + o.certificate_chain_file + "'"));
  }
  const bool has_ca = !o.ca_pem.empty() || !o.ca_file.empty();
  if (!o.ca_pem.empty()) {
    context->add_certificate_authority(asio::buffer(o.ca_pem), ec);
    if (ec) return load_error("CA bundle", "(PEM text)", ec);
  } else if (!o.ca_file.empty()) {
    context->load_verify_file(o.ca_file, ec);
    if (ec) return load_error("CA file", o.ca_file, ec);
  }
  if (server) {
    if (o.client_auth != ClientAuth::kNone && !has_ca) {
      return invalid_argument_error(
          "TLS client_auth needs a CA (ca_file or ca_pem) to verify with");
    }
    switch (o.client_auth) {
      case ClientAuth::kNone:
        context->set_verify_mode(ssl::verify_none);
        break;
      case ClientAuth::kOptional:
        context->set_verify_mode(ssl::verify_peer);
        break;
      case ClientAuth::kRequire:
        context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
        break;
    }
  } else if (o.verify_peer) {
    if (!has_ca) {
      context->set_default_verify_paths(ec);
      if (ec) return load_error("default CA store", "", ec);
    }
    context->set_verify_mode(ssl::verify_peer);
  } else {
    context->set_verify_mode(ssl::verify_none);
  }
  return Loaded{.context = std::move(context), .not_after = not_after_of(native)};
}

std::string TlsCredentials::file_stamp() const {
  std::string stamp;
  for (const std::string* path :
       {&options_.certificate_chain_file, &options_.private_key_file, &options_.ca_file}) {
    if (path->empty()) continue;
    struct stat info {};
    if (::stat(path->c_str(), &info) != 0) {
      stamp += "missing;";
      continue;
    }
    stamp += std::to_string(info.st_mtim.tv_sec) + "." + std::to_string(info.st_mtim.tv_nsec) +
             ":" + std::to_string(info.st_size) + ":" + std::to_string(info.st_ino) + ";";
  }
  return stamp;
}

std::shared_ptr<asio::ssl::context> TlsCredentials::context_for_handshake() {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (now >= next_check_) {
    next_check_ = now + options_.reload_check_interval;
    std::string stamp = file_stamp();
    if (stamp != stamp_) {
      // Remembered even when the load fails: a broken file is retried once it changes again,
      // not on every handshake.
      stamp_ = std::move(stamp);
      Result<Loaded> loaded = load();
      last_reload_status_ = loaded.ok() ? Status() : loaded.status();
      if (loaded.ok()) {
        loaded_ = std::move(loaded).value();
        ++reload_count_;
      }
    }
  }
  return loaded_.context;
}

Status TlsCredentials::reload() {
  std::string stamp = file_stamp();
  Result<Loaded> loaded = load();
  std::lock_guard lock(mutex_);
  stamp_ = std::move(stamp);
  next_check_ = std::chrono::steady_clock::now() + options_.reload_check_interval;
  last_reload_status_ = loaded.ok() ? Status() : loaded.status();
  if (!loaded.ok()) return loaded.status();
  loaded_ = std::move(loaded).value();
  ++reload_count_;
  return Status();
}

Status TlsCredentials::last_reload_status() const {
  std::lock_guard lock(mutex_);
  return last_reload_status_;
}

uint64_t TlsCredentials::reload_count() const {
  std::lock_guard lock(mutex_);
  return reload_count_;
}

int64_t TlsCredentials::certificate_not_after() const {
  std::lock_guard lock(mutex_);
  return loaded_.not_after;
}

}  // namespace meshrpc::transport
