// TLS sessions over TCP: handshakes that succeed and say who the peer is, handshakes that
// fail and say why, and credentials that reload. The ByteStream behaviour of a session is
// checked by the conformance suite (tls_conformance_test.cc).
#include "meshrpc/transport/tls.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <ctime>
#include <deque>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/transport/errors.h"
#include "meshrpc/transport/tcp.h"
#include "tests/support/test_pki.h"

namespace meshrpc::transport {
namespace {

using ::meshrpc::testing::make_credentials;

using ::meshrpc::testing::StatusIs;
using ::meshrpc::testing::TestCertificate;
using ::meshrpc::testing::TestPki;
using ::testing::Contains;
using ::testing::HasSubstr;
using StreamPtr = std::unique_ptr<ByteStream>;

// A watchdog for waits on real threads: only a hang gets near it.
constexpr std::chrono::seconds kWatchdog{30};

std::shared_ptr<TlsCredentials> server_credentials(const TestCertificate& cert,
                                                   const TestPki* client_ca = nullptr,
                                                   ClientAuth auth = ClientAuth::kNone) {
  return make_credentials({.certificate_chain_pem = cert.chain_pem,
                           .private_key_pem = cert.key_pem,
                           .ca_pem = client_ca ? client_ca->ca_pem() : std::string(),
                           .client_auth = auth},
                          TlsRole::kServer);
}

std::shared_ptr<TlsCredentials> client_credentials(const TestPki& ca,
                                                   const TestCertificate* cert = nullptr) {
  return make_credentials({.certificate_chain_pem = cert ? cert->chain_pem : std::string(),
                           .private_key_pem = cert ? cert->key_pem : std::string(),
                           .ca_pem = ca.ca_pem()},
                          TlsRole::kClient);
}

template <typename T>
T wait(std::future<T>& future) {
  EXPECT_EQ(future.wait_for(kWatchdog), std::future_status::ready) << "hangs";
  return future.get();
}

// Both ends of one TLS handshake over a real TCP connection on 127.0.0.1.
struct Handshake {
  error_code server_error;
  error_code client_error;
  StreamPtr server;
  StreamPtr client;
};

class TlsTest : public ::testing::Test {
 protected:
  ~TlsTest() override {
    // Streams are closed on their executor, as ByteStream requires.
    std::vector<StreamPtr> streams;
    for (auto& h : handshakes_) {
      streams.push_back(std::move(h.server));
      streams.push_back(std::move(h.client));
    }
    std::promise<void> done;
    asio::post(env_.executor(0), [&] {
      streams.clear();
      done.set_value();
    });
    done.get_future().wait();
  }

  // Runs the handshake; the client expects the server's certificate to name `server_name`.
  Handshake& handshake(TlsCredentials& server, TlsCredentials& client,
                       std::string server_name = "localhost") {
    auto listener = network_.listen({"127.0.0.1", 0});
    EXPECT_TRUE(listener.ok());
    std::promise<std::pair<error_code, StreamPtr>> server_side;
    std::promise<std::pair<error_code, StreamPtr>> client_side;
    asio::post(env_.executor(0), [&] {
      (*listener)->async_accept(0, [&](error_code ec, StreamPtr accepted) {
        if (ec) return server_side.set_value({ec, nullptr});
        async_tls_accept(std::move(accepted), server, "", [&](error_code ec, StreamPtr tls) {
          server_side.set_value({ec, std::move(tls)});
        });
      });
    });
    // Started on the env's thread, like everything else here: the connect's state is then
    // created and released on one thread (TSan cannot see the ordering of Asio's executor
    // reference counts across threads, and reports a race where there is none).
    asio::post(env_.executor(0), [&] {
      network_.async_connect((*listener)->local_address(), env_.executor(0),
                             [&](error_code ec, StreamPtr connected) {
                               if (ec) return client_side.set_value({ec, nullptr});
                               async_tls_connect(std::move(connected), client, server_name,
                                                 [&](error_code ec, StreamPtr tls) {
                                                   client_side.set_value({ec, std::move(tls)});
                                                 });
                             });
    });
    auto server_future = server_side.get_future();
    auto client_future = client_side.get_future();
    auto [server_error, server_stream] = wait(server_future);
    auto [client_error, client_stream] = wait(client_future);
    std::promise<void> closed;
    asio::post(env_.executor(0), [&] {
      (*listener)->close();
      closed.set_value();
    });
    closed.get_future().wait();
    handshakes_.push_back(
        {server_error, client_error, std::move(server_stream), std::move(client_stream)});
    return handshakes_.back();
  }

  // Writes `data` on `stream` (as several buffers, so the session joins them into records).
  error_code write(ByteStream& stream, const std::string& data) {
    std::vector<asio::const_buffer> buffers;
    for (size_t at = 0; at < data.size(); at += 1000) {
      buffers.push_back(asio::buffer(data.data() + at, std::min<size_t>(1000, data.size() - at)));
    }
    auto future = asio::co_spawn(
        env_.executor(0),
        [&]() -> awaitable<error_code> {
          auto [ec, n] = co_await asio::async_write(stream, buffers, use_nothrow_awaitable);
          co_return ec;
        },
        asio::use_future);
    return wait(future);
  }

  // Reads exactly `size` bytes, or fails with the error that stopped it.
  std::pair<error_code, std::string> read(ByteStream& stream, size_t size) {
    auto future = asio::co_spawn(
        env_.executor(0),
        [&]() -> awaitable<std::pair<error_code, std::string>> {
          std::string data(size, '\0');
          auto [ec, n] =
              co_await asio::async_read(stream, asio::buffer(data), use_nothrow_awaitable);
          data.resize(n);
          co_return std::make_pair(ec, std::move(data));
        },
        asio::use_future);
    return wait(future);
  }

  runtime::RealEnv env_{runtime::RealEnv::Options{.threads = 1}};
  TcpNetwork network_{env_};
  TestPki pki_;
  std::deque<Handshake> handshakes_;  // a deque: handshake() hands out references
};

TEST_F(TlsTest, SessionCarriesDataBothWaysAndNamesTheServer) {
  auto server = server_credentials(pki_.server());
  auto client = client_credentials(pki_);
  Handshake& h = handshake(*server, *client);
  ASSERT_FALSE(h.server_error) << h.server_error.message();
  ASSERT_FALSE(h.client_error) << h.client_error.message();
  EXPECT_EQ(h.server->peer_identity(), nullptr) << "the client sent no certificate";
  ASSERT_NE(h.client->peer_identity(), nullptr);
  EXPECT_EQ(h.client->peer_identity()->common_name, "localhost");
  EXPECT_THAT(h.client->peer_identity()->dns_names, Contains("localhost"));
  EXPECT_THAT(h.client->peer_identity()->ip_addresses, Contains("127.0.0.1"));

  std::string request(100'000, '\0');
  for (size_t i = 0; i < request.size(); ++i) request[i] = static_cast<char>(i * 7);
  EXPECT_FALSE(write(*h.client, request));
  auto [read_error, received] = read(*h.server, request.size());
  EXPECT_FALSE(read_error) << read_error.message();
  EXPECT_EQ(received, request);
  EXPECT_FALSE(write(*h.server, "pong"));
  EXPECT_EQ(read(*h.client, 4).second, "pong");
}

TEST_F(TlsTest, PeerClosingWithoutCloseNotifyIsEndOfStream) {
  auto server = server_credentials(pki_.server());
  auto client = client_credentials(pki_);
  Handshake& h = handshake(*server, *client);
  ASSERT_FALSE(h.server_error);
  EXPECT_FALSE(write(*h.server, "last words"));
  std::promise<void> closed;
  asio::post(env_.executor(0), [&] {
    h.server->close();
    closed.set_value();
  });
  closed.get_future().wait();
  EXPECT_EQ(read(*h.client, 10).second, "last words");
  EXPECT_EQ(read(*h.client, 1).first, asio::error::eof);
  EXPECT_EQ(read(*h.client, 1).first, asio::error::eof) << "eof is sticky";
}

TEST_F(TlsTest, MutualTlsGivesTheServerTheClientsIdentity) {
  auto server = server_credentials(pki_.server(), &pki_, ClientAuth::kRequire);
  TestCertificate orders = pki_.client("orders", {"spiffe://mesh.test/ns/prod/sa/orders"});
  auto client = client_credentials(pki_, &orders);
  Handshake& h = handshake(*server, *client);
  ASSERT_FALSE(h.server_error) << h.server_error.message();
  ASSERT_FALSE(h.client_error) << h.client_error.message();
  auto identity = h.server->peer_identity();
  ASSERT_NE(identity, nullptr);
  EXPECT_EQ(identity->common_name, "orders");
  EXPECT_THAT(identity->subject, HasSubstr("CN=orders"));
  EXPECT_THAT(identity->issuer, HasSubstr("CN=meshrpc test CA"));
  EXPECT_THAT(identity->uris, Contains("spiffe://mesh.test/ns/prod/sa/orders"));
  EXPECT_THAT(identity->principals(), Contains("uri:spiffe://mesh.test/ns/prod/sa/orders"));
  EXPECT_THAT(identity->principals(), Contains("cn:orders"));
  EXPECT_EQ(identity->sha256_fingerprint.size(), 64u);
  EXPECT_FALSE(identity->serial.empty());
}

TEST_F(TlsTest, MutualTlsRefusesAClientWithoutCertificate) {
  auto server = server_credentials(pki_.server(), &pki_, ClientAuth::kRequire);
  auto client = client_credentials(pki_);
  Handshake& h = handshake(*server, *client);
  EXPECT_EQ(h.server_error, make_error_code(TlsError::kPeerCertificateMissing))
      << h.server_error.message();
  // TLS 1.3: the client's handshake is over before the server has judged its certificate; it
  // learns of the refusal on its first read.
  if (!h.client_error) {
    const error_code ec = read(*h.client, 1).first;
    EXPECT_EQ(ec, make_error_code(TlsError::kCertificateRequiredByPeer)) << ec.message();
    EXPECT_THAT(to_status(ec, "call"),
                StatusIs(StatusCode::kUnauthenticated, HasSubstr("requires a client certificate")));
  }
}

TEST_F(TlsTest, MutualTlsRefusesAnExpiredClientCertificate) {
  auto server = server_credentials(pki_.server(), &pki_, ClientAuth::kRequire);
  TestCertificate expired = pki_.expired_client();
  auto client = client_credentials(pki_, &expired);
  Handshake& h = handshake(*server, *client);
  EXPECT_EQ(h.server_error, make_error_code(TlsError::kPeerCertificateExpired))
      << h.server_error.message();
  if (!h.client_error) {
    const error_code ec = read(*h.client, 1).first;
    EXPECT_EQ(ec, make_error_code(TlsError::kCertificateRejectedByPeer)) << ec.message();
  }
}

TEST_F(TlsTest, MutualTlsRefusesAClientCertificateFromAnotherCa) {
  auto server = server_credentials(pki_.server(), &pki_, ClientAuth::kRequire);
  TestPki other("another CA");
  TestCertificate stranger = other.client("stranger");
  auto client = client_credentials(pki_, &stranger);
  Handshake& h = handshake(*server, *client);
  EXPECT_EQ(h.server_error, make_error_code(TlsError::kPeerCertificateUntrusted))
      << h.server_error.message();
}

TEST_F(TlsTest, OptionalClientAuthAcceptsAClientWithoutCertificate) {
  auto server = server_credentials(pki_.server(), &pki_, ClientAuth::kOptional);
  auto client = client_credentials(pki_);
  Handshake& h = handshake(*server, *client);
  ASSERT_FALSE(h.server_error) << h.server_error.message();
  EXPECT_EQ(h.server->peer_identity(), nullptr);
}

TEST_F(TlsTest, ClientRefusesAServerFromAnotherCa) {
  TestPki other("another CA");
  auto server = server_credentials(other.server());
  auto client = client_credentials(pki_);
  Handshake& h = handshake(*server, *client);
  EXPECT_EQ(h.client_error, make_error_code(TlsError::kPeerCertificateUntrusted))
      << h.client_error.message();
  EXPECT_EQ(h.server_error, make_error_code(TlsError::kCertificateRejectedByPeer))
      << h.server_error.message();
  EXPECT_THAT(to_status(h.client_error, "connect to 127.0.0.1"),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("not signed by a trusted CA")));
}

TEST_F(TlsTest, ClientRefusesAServerCertificateForAnotherName) {
  auto server = server_credentials(pki_.issue({.common_name = "db", .dns_names = {"db.test"}}));
  auto client = client_credentials(pki_);
  EXPECT_EQ(handshake(*server, *client, "localhost").client_error,
            make_error_code(TlsError::kPeerNameMismatch));
  EXPECT_EQ(handshake(*server, *client, "127.0.0.1").client_error,
            make_error_code(TlsError::kPeerNameMismatch));
  EXPECT_FALSE(handshake(*server, *client, "db.test").client_error);
}

TEST_F(TlsTest, ClientRefusesAnExpiredServerCertificate) {
  auto server = server_credentials(pki_.issue({.common_name = "localhost",
                                               .dns_names = {"localhost"},
                                               .not_before_offset = std::chrono::hours(-48),
                                               .not_after_offset = std::chrono::hours(-1)}));
  auto client = client_credentials(pki_);
  EXPECT_EQ(handshake(*server, *client).client_error,
            make_error_code(TlsError::kPeerCertificateExpired));
}

TEST_F(TlsTest, ClientWithoutVerificationAcceptsAnyServer) {
  TestPki other("another CA");
  auto server = server_credentials(other.server());
  auto client = make_credentials({.verify_peer = false}, TlsRole::kClient);
  Handshake& h = handshake(*server, *client);
  EXPECT_FALSE(h.client_error) << h.client_error.message();
}

TEST_F(TlsTest, APeerThatDoesNotSpeakTlsIsNamed) {
  auto listener = network_.listen({"127.0.0.1", 0});
  ASSERT_TRUE(listener.ok());
  static const std::string kReply = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
  std::promise<error_code> client_side;
  StreamPtr server_stream;
  asio::post(env_.executor(0), [&] {
    (*listener)->async_accept(0, [&](error_code ec, StreamPtr accepted) {
      if (ec) return;
      server_stream = std::move(accepted);
      asio::async_write(*server_stream, asio::buffer(kReply),
                        [&](error_code, size_t) { server_stream->shutdown_send(); });
    });
  });
  auto client = client_credentials(pki_);
  asio::post(env_.executor(0), [&] {  // on the env's thread: see handshake()
    network_.async_connect(
        (*listener)->local_address(), env_.executor(0), [&](error_code ec, StreamPtr connected) {
          if (ec) return client_side.set_value(ec);
          async_tls_connect(std::move(connected), *client, "localhost",
                            [&](error_code ec, StreamPtr) { client_side.set_value(ec); });
        });
  });
  auto future = client_side.get_future();
  EXPECT_EQ(wait(future), make_error_code(TlsError::kNotTls));
  std::promise<void> done;
  asio::post(env_.executor(0), [&] {
    server_stream.reset();
    (*listener)->close();
    done.set_value();
  });
  done.get_future().wait();
}

std::string file_name(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

TEST_F(TlsTest, ReloadServesTheNewCertificateToNewHandshakes) {
  TestCertificate first = pki_.server();
  auto server = make_credentials(
      {.certificate_chain_file = first.cert_file, .private_key_file = first.key_file},
      TlsRole::kServer);
  auto client = client_credentials(pki_);
  Handshake& before = handshake(*server, *client);
  ASSERT_FALSE(before.client_error);
  const std::string old_print = before.client->peer_identity()->sha256_fingerprint;

  TestCertificate second = pki_.issue({.common_name = "localhost v2", .dns_names = {"localhost"}});
  pki_.write_file(file_name(first.cert_file), second.chain_pem);
  pki_.write_file(file_name(first.key_file), second.key_pem);
  EXPECT_TRUE(server->reload().ok());
  EXPECT_EQ(server->reload_count(), 1u);
  Handshake& after = handshake(*server, *client);
  ASSERT_FALSE(after.client_error);
  EXPECT_NE(after.client->peer_identity()->sha256_fingerprint, old_print);
  EXPECT_EQ(after.client->peer_identity()->common_name, "localhost v2");
  // The session made before the reload keeps working.
  EXPECT_FALSE(write(*before.client, "still here"));
  EXPECT_EQ(read(*before.server, 10).second, "still here");
}

TEST_F(TlsTest, ChangedFilesAreNoticedWithoutAReloadCall) {
  TestCertificate first = pki_.server();
  auto server = make_credentials({.certificate_chain_file = first.cert_file,
                                  .private_key_file = first.key_file,
                                  .reload_check_interval = std::chrono::seconds(0)},
                                 TlsRole::kServer);
  auto client = client_credentials(pki_);
  TestCertificate second = pki_.issue({.common_name = "renewed", .dns_names = {"localhost"}});
  pki_.write_file(file_name(first.cert_file), second.chain_pem);
  pki_.write_file(file_name(first.key_file), second.key_pem);
  Handshake& h = handshake(*server, *client);
  ASSERT_FALSE(h.client_error) << h.client_error.message();
  EXPECT_EQ(h.client->peer_identity()->common_name, "renewed");
  EXPECT_EQ(server->reload_count(), 1u);
}

TEST_F(TlsTest, AFailedReloadKeepsTheWorkingCertificate) {
  TestCertificate first = pki_.server();
  auto server = make_credentials(
      {.certificate_chain_file = first.cert_file, .private_key_file = first.key_file},
      TlsRole::kServer);
  // A certificate without its key, as when a renewal has written one file of two.
  TestCertificate second = pki_.issue({.common_name = "half written"});
  pki_.write_file(file_name(first.cert_file), second.chain_pem);
  EXPECT_THAT(server->reload(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("does not match")));
  EXPECT_FALSE(server->last_reload_status().ok());
  auto client = client_credentials(pki_);
  Handshake& h = handshake(*server, *client);
  ASSERT_FALSE(h.client_error) << h.client_error.message();
  EXPECT_EQ(h.client->peer_identity()->common_name, "localhost");
}

TEST(TlsCredentials, CreateSaysWhatIsWrong) {
  TestPki pki;
  TestCertificate cert = pki.server();
  TestCertificate other = pki.server();
  EXPECT_THAT(TlsCredentials::create({.certificate_chain_file = pki.directory() + "/missing.pem",
                                      .private_key_file = cert.key_file},
                                     TlsRole::kServer)
                  .status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("missing.pem")));
  EXPECT_THAT(TlsCredentials::create(
                  {.certificate_chain_pem = cert.chain_pem, .private_key_pem = other.key_pem},
                  TlsRole::kServer)
                  .status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("does not match")));
  EXPECT_THAT(TlsCredentials::create({}, TlsRole::kServer).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("certificate chain")));
  EXPECT_THAT(TlsCredentials::create({.certificate_chain_pem = cert.chain_pem,
                                      .private_key_pem = cert.key_pem,
                                      .client_auth = ClientAuth::kRequire},
                                     TlsRole::kServer)
                  .status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("CA")));
  EXPECT_THAT(TlsCredentials::create(
                  {.certificate_chain_pem = "not a certificate", .private_key_pem = cert.key_pem},
                  TlsRole::kServer)
                  .status(),
              StatusIs(StatusCode::kInvalidArgument));
}

TEST(TlsCredentials, ReportsWhenItsCertificateExpires) {
  TestPki pki;
  TestCertificate cert = pki.server();  // valid for a day
  auto server = TlsCredentials::create(
      {.certificate_chain_pem = cert.chain_pem, .private_key_pem = cert.key_pem}, TlsRole::kServer);
  ASSERT_TRUE(server.ok());
  const int64_t now = std::time(nullptr);
  EXPECT_GT((*server)->certificate_not_after(), now + 86'400 - 600);
  EXPECT_LT((*server)->certificate_not_after(), now + 86'400 + 600);
}

TEST(TlsErrors, CertificateFailuresAreUnauthenticatedAndTheRestUnavailable) {
  EXPECT_THAT(to_status(make_error_code(TlsError::kPeerCertificateExpired), "connect"),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("has expired")));
  EXPECT_THAT(to_status(make_error_code(TlsError::kPeerNameMismatch), "connect"),
              StatusIs(StatusCode::kUnauthenticated));
  EXPECT_THAT(to_status(make_error_code(TlsError::kNotTls), "connect"),
              StatusIs(StatusCode::kUnavailable, HasSubstr("does not speak TLS")));
  EXPECT_THAT(to_status(make_error_code(TlsError::kHandshakeFailed), "connect"),
              StatusIs(StatusCode::kUnavailable));
}

}  // namespace
}  // namespace meshrpc::transport
