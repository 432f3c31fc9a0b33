#include "tests/support/tls_harness.h"

#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <mutex>
#include <stdexcept>

namespace meshrpc::testing {
namespace {

using transport::ByteStream;
using transport::Listener;
using StreamPtr = std::unique_ptr<ByteStream>;
using AcceptHandler = Listener::AcceptHandler;

// What a TlsListener's accepts in flight share with it: a handshake may end after the
// listener is gone, and must then neither accept again nor hand out its stream.
struct AcceptContext {
  std::shared_ptr<transport::TlsCredentials> credentials;
  std::vector<asio::any_io_executor> shard_executors;
  std::mutex mutex;
  Listener* inner = nullptr;  // guarded by mutex; null once the TlsListener is destroyed
  bool closed = false;        // guarded by mutex
};

// Completes `handler` where it expects to run: asio runs it on its associated executor, or
// `shard`'s if it names none.
void complete(AcceptContext& context, size_t shard, AcceptHandler handler, error_code ec,
              StreamPtr stream) {
  asio::dispatch(context.shard_executors[shard],
                 asio::append(std::move(handler), ec, std::move(stream)));
}

void accept_next(std::shared_ptr<AcceptContext> context, size_t shard, AcceptHandler handler);

// Runs the server handshake on an accepted stream. A handshake that fails for any reason but
// cancellation (a client that gave up, spoke plaintext, rejected our certificate) costs only
// that connection: the accept goes on to the next one, as a server would.
void handshake(std::shared_ptr<AcceptContext> context, size_t shard, AcceptHandler handler,
               StreamPtr stream) {
  auto slot = asio::get_associated_cancellation_slot(handler);
  transport::TlsCredentials& credentials = *context->credentials;
  transport::async_tls_accept(
      std::move(stream), credentials, {},
      asio::bind_cancellation_slot(
          slot, [context = std::move(context), shard, handler = std::move(handler)](
                    error_code ec, StreamPtr tls) mutable {
            bool closed = false;
            {
              std::lock_guard lock(context->mutex);
              closed = context->closed;
            }
            if (ec == asio::error::operation_aborted || closed) {
              return complete(*context, shard, std::move(handler), asio::error::operation_aborted,
                              nullptr);
            }
            if (ec) return accept_next(std::move(context), shard, std::move(handler));
            complete(*context, shard, std::move(handler), error_code(), std::move(tls));
          }));
}

// One inner accept, then its handshake. The caller's cancellation slot reaches whichever of
// the two is pending.
void accept_next(std::shared_ptr<AcceptContext> context, size_t shard, AcceptHandler handler) {
  std::unique_lock lock(context->mutex);
  if (context->closed) {
    lock.unlock();
    // Posted, not dispatched: this may run inside initiate_accept, and a completion never
    // runs inside the call that started it.
    asio::post(
        context->shard_executors[shard],
        asio::append(std::move(handler), error_code(asio::error::operation_aborted), StreamPtr()));
    return;
  }
  auto slot = asio::get_associated_cancellation_slot(handler);
  // Under the lock: the TlsListener's destructor cannot destroy `inner` meanwhile.
  context->inner->async_accept(
      shard, asio::bind_cancellation_slot(slot, [context, shard, handler = std::move(handler)](
                                                    error_code ec, StreamPtr stream) mutable {
        if (ec) return complete(*context, shard, std::move(handler), ec, nullptr);
        handshake(std::move(context), shard, std::move(handler), std::move(stream));
      }));
}

// A Listener whose accepts hand out TLS sessions: each stream the inner listener accepts goes
// through the server handshake first.
//
// close() refuses new connections and ends accepts waiting on the inner listener at once; a
// handshake in flight at that moment ends the accept with operation_aborted only when it
// finishes (the suite never closes a listener under one). Destruction likewise.
class TlsListener final : public Listener {
 public:
  TlsListener(std::unique_ptr<Listener> inner,
              std::shared_ptr<transport::TlsCredentials> credentials)
      : inner_(std::move(inner)), context_(std::make_shared<AcceptContext>()) {
    context_->credentials = std::move(credentials);
    for (size_t shard = 0; shard < inner_->shard_count(); ++shard) {
      context_->shard_executors.push_back(inner_->shard_executor(shard));
    }
    context_->inner = inner_.get();
  }
  ~TlsListener() override {
    {
      std::lock_guard lock(context_->mutex);
      context_->closed = true;
      context_->inner = nullptr;
    }
    inner_.reset();
  }

  transport::Address local_address() const override { return inner_->local_address(); }
  size_t shard_count() const override { return inner_->shard_count(); }
  asio::any_io_executor shard_executor(size_t shard) override {
    return inner_->shard_executor(shard);
  }
  void close() override {
    {
      std::lock_guard lock(context_->mutex);
      context_->closed = true;
    }
    inner_->close();
  }

 protected:
  void initiate_accept(size_t shard, AcceptHandler handler) override {
    accept_next(context_, shard, std::move(handler));
  }

 private:
  std::unique_ptr<Listener> inner_;
  std::shared_ptr<AcceptContext> context_;
};

// The server side of TLS as the suite needs it: listeners are TlsListeners; connecting and
// datagrams pass through to `inner` (the suite connects only from the client network).
class TlsServerNetwork final : public transport::Network {
 public:
  TlsServerNetwork(transport::Network& inner,
                   std::shared_ptr<transport::TlsCredentials> credentials)
      : inner_(inner), credentials_(std::move(credentials)) {}

  using Network::listen;
  Result<std::unique_ptr<Listener>> listen(const transport::Address& address,
                                           const transport::ListenOptions& options) override {
    auto listener = inner_.listen(address, options);
    if (!listener.ok()) return std::move(listener).status();
    return std::unique_ptr<Listener>(
        std::make_unique<TlsListener>(std::move(*listener), credentials_));
  }
  Result<std::unique_ptr<transport::DatagramSocket>> open_datagram(
      const transport::Address& bind_address) override {
    return inner_.open_datagram(bind_address);
  }

 protected:
  void initiate_connect(const transport::Address& address, asio::any_io_executor executor,
                        ConnectHandler handler) override {
    inner_.async_connect(address, std::move(executor), std::move(handler));
  }

 private:
  transport::Network& inner_;
  std::shared_ptr<transport::TlsCredentials> credentials_;
};

// A server certificate naming `host` (what the client connects to, and so verifies) besides
// localhost and the loopback addresses.
TestCertificate issue_server_certificate(TestPki& pki, const std::string& host) {
  CertificateSpec spec{
      .common_name = host, .dns_names = {"localhost"}, .ip_addresses = {"127.0.0.1", "::1"}};
  error_code not_ip;
  const auto ip = asio::ip::make_address(host, not_ip);
  if (not_ip) {
    if (host != "localhost") spec.dns_names.push_back(host);
  } else if (!ip.is_loopback()) {
    spec.ip_addresses.push_back(host);
  }
  return pki.issue(spec);
}

}  // namespace

TlsHarness::TlsHarness(std::unique_ptr<TransportHarness> inner) : inner_(std::move(inner)) {
  const TestCertificate server = issue_server_certificate(pki_, inner_->listen_address().host);
  transport::TlsOptions server_options;
  server_options.certificate_chain_pem = server.chain_pem;
  server_options.private_key_pem = server.key_pem;
  server_credentials_ = make_credentials(std::move(server_options), transport::TlsRole::kServer);
  transport::TlsOptions client_options;
  client_options.ca_pem = pki_.ca_pem();
  client_credentials_ = make_credentials(std::move(client_options), transport::TlsRole::kClient);
  if (!server_credentials_ || !client_credentials_) {
    throw std::runtime_error("TlsHarness: the test PKI's credentials do not load");
  }
  server_network_ =
      std::make_unique<TlsServerNetwork>(inner_->server_network(), server_credentials_);
  client_network_ =
      std::make_unique<transport::TlsNetwork>(inner_->client_network(), client_credentials_);
}

TlsHarness::~TlsHarness() = default;

}  // namespace meshrpc::testing
