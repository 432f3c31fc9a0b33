// Authentication and authorization end to end: a core::Server on 127.0.0.1 with the
// BearerTokenAuthenticator and Authorizer as interceptors, called over TCP by a Channel with
// tokens in its metadata, and over mutual TLS by workloads named by their certificates.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <string>
#include <utility>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/server.h"
#include "meshrpc/security/authenticator.h"
#include "meshrpc/security/authorization.h"
#include "meshrpc/transport/tls.h"
#include "tests/support/tcp_harness.h"
#include "tests/support/test_pki.h"

namespace meshrpc::security {
namespace {

using ::meshrpc::testing::make_credentials;

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;

constexpr int64_t kNow = 1'790'000'000;
const std::string kKey = "0123456789abcdef0123456789abcdef";
const std::string kStaticToken = "ci-secret-token-0123";

std::string bearer(std::string subject, std::string role = "", int64_t expires_at = kNow + 3600) {
  TokenClaims claims;
  claims.subject = std::move(subject);
  claims.expires_at = expires_at;
  if (!role.empty()) claims.extra.emplace("role", role);
  return "Bearer " + sign_token(claims, kKey, "k1").value_or("");
}

AccessRule rule(std::string resource, std::vector<std::string> allow) {
  AccessRule out;
  out.resource = std::move(resource);
  out.allow = std::move(allow);
  return out;
}

class RpcAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TokenVerifierOptions verifier_options;
    verifier_options.clock = [] { return kNow; };
    auto verifier = std::make_shared<TokenVerifier>(verifier_options);
    ASSERT_THAT(verifier->add_key("k1", kKey), IsOk());
    auto tokens = std::make_shared<StaticTokens>();
    ASSERT_THAT(tokens->add(kStaticToken, "ci"), IsOk());
    AuthenticatorOptions authn;
    authn.verifier = std::move(verifier);
    authn.static_tokens = std::move(tokens);

    Result<AccessPolicy> policy = AccessPolicy::create({
        rule("/test.Echo/Whoami", {"any-authenticated"}),
        rule("/test.Echo/Say", {"token:alice", "static:ci"}),
        rule("/test.Admin/*", {"claim:role=admin"}),
        rule("/test.Prod/*", {"uri:spiffe://mesh.test/ns/prod/*"}),
    });
    ASSERT_THAT(policy, IsOk());

    const ::meshrpc::testing::TestCertificate cert = pki_.server();
    core::ServerOptions options;
    // Client certificates are optional: plaintext and TLS callers share the port.
    options.tls = make_credentials({.certificate_chain_pem = cert.chain_pem,
                                    .private_key_pem = cert.key_pem,
                                    .ca_pem = pki_.ca_pem(),
                                    .client_auth = transport::ClientAuth::kOptional},
                                   transport::TlsRole::kServer);
    options.interceptors = {
        std::make_shared<BearerTokenAuthenticator>(std::move(authn)),
        std::make_shared<Authorizer>(std::make_shared<AccessPolicy>(*std::move(policy)))};
    server_ = std::make_unique<core::Server>(harness_.server_env(), harness_.server_network(),
                                             std::move(options));
    auto echo = [](core::ServerContext&, Buffer request) -> awaitable<Result<Buffer>> {
      co_return request;
    };
    server_->register_method("/test.Echo/Say", echo);
    server_->register_method("/test.Admin/Drop", echo);
    server_->register_method("/test.Echo/Unlisted", echo);
    server_->register_method("/test.Prod/Read", echo);
    server_->register_method("/test.Echo/Whoami",
                             [](core::ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
                               const Principal* principal = principal_of(ctx);
                               co_return Buffer::copy_of(principal ? principal->name : "nobody");
                             });
    auto address = server_->start(harness_.listen_address());
    ASSERT_THAT(address, IsOk());
    address_ = *address;
  }

  void TearDown() override { server_.reset(); }

  // A network whose connections are TLS with a client certificate naming `spiffe_id`.
  std::unique_ptr<transport::TlsNetwork> mtls_as(const std::string& common_name,
                                                 const std::string& spiffe_id) {
    const ::meshrpc::testing::TestCertificate cert = pki_.client(common_name, {spiffe_id});
    return std::make_unique<transport::TlsNetwork>(
        harness_.client_network(), make_credentials({.certificate_chain_pem = cert.chain_pem,
                                                     .private_key_pem = cert.key_pem,
                                                     .ca_pem = pki_.ca_pem(),
                                                     .server_name = "localhost"},
                                                    transport::TlsRole::kClient));
  }

  // One call through `network` (plaintext TCP when null).
  core::CallResult call(std::string method, std::string authorization = "",
                        transport::Network* network = nullptr) {
    core::Channel channel(harness_.client_env(),
                          network != nullptr ? *network : harness_.client_network(), address_);
    core::CallOptions options;
    if (!authorization.empty()) options.metadata = {{"authorization", std::move(authorization)}};
    core::CallResult result;
    Status run = harness_.run_client([&]() -> awaitable<Status> {
      result = co_await channel.async_call(method, Buffer::copy_of("hi"), std::move(options),
                                           asio::use_awaitable);
      co_return Status();
    });
    EXPECT_THAT(run, IsOk());
    return result;
  }

  ::meshrpc::testing::TcpHarness harness_;
  ::meshrpc::testing::TestPki pki_;
  std::unique_ptr<core::Server> server_;
  transport::Address address_;
};

TEST_F(RpcAuthTest, ACallWithoutATokenIsUnauthenticatedAndNotProcessed) {
  core::CallResult result = call("/test.Echo/Say");
  EXPECT_THAT(result.status,
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("missing bearer token")));
  EXPECT_TRUE(result.not_processed);
}

TEST_F(RpcAuthTest, ABadOrExpiredTokenIsUnauthenticated) {
  EXPECT_THAT(call("/test.Echo/Say", "Bearer garbage.token.here").status,
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("malformed token")));
  EXPECT_THAT(call("/test.Echo/Say", bearer("alice", "", kNow - 3600)).status,
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("token expired at")));
  EXPECT_THAT(call("/test.Echo/Say", "Basic YWxpY2U6cHc=").status,
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("use Bearer")));
}

TEST_F(RpcAuthTest, AGoodTokenForAMethodItMayNotCallIsPermissionDenied) {
  core::CallResult result = call("/test.Echo/Say", bearer("bob"));
  EXPECT_THAT(result.status, StatusIs(StatusCode::kPermissionDenied,
                                      HasSubstr("token:bob may not access /test.Echo/Say")));
}

TEST_F(RpcAuthTest, AnAllowedTokenIsServed) {
  core::CallResult result = call("/test.Echo/Say", bearer("alice"));
  ASSERT_THAT(result.status, IsOk());
  EXPECT_EQ(result.response.to_string(), "hi");
  EXPECT_THAT(call("/test.Echo/Say", "Bearer " + kStaticToken).status, IsOk());
}

TEST_F(RpcAuthTest, RulesApplyPerMethod) {
  // bob may call Whoami (any authenticated caller) but not Say or the admin service.
  core::CallResult whoami = call("/test.Echo/Whoami", bearer("bob"));
  ASSERT_THAT(whoami.status, IsOk());
  EXPECT_EQ(whoami.response.to_string(), "token:bob");  // the handler sees the principal
  EXPECT_THAT(call("/test.Echo/Say", bearer("bob")).status,
              StatusIs(StatusCode::kPermissionDenied));
  EXPECT_THAT(call("/test.Admin/Drop", bearer("bob")).status,
              StatusIs(StatusCode::kPermissionDenied));
}

TEST_F(RpcAuthTest, AClaimRuleAdmitsOnlyTokensWithTheClaim) {
  EXPECT_THAT(call("/test.Admin/Drop", bearer("carol", "admin")).status, IsOk());
  EXPECT_THAT(call("/test.Admin/Drop", bearer("carol", "reader")).status,
              StatusIs(StatusCode::kPermissionDenied, HasSubstr("token:carol")));
  // alice may Say, but no rule gives her the admin service.
  EXPECT_THAT(call("/test.Admin/Drop", bearer("alice")).status,
              StatusIs(StatusCode::kPermissionDenied));
}

TEST_F(RpcAuthTest, AMethodNoRuleNamesIsDeniedByDefault) {
  EXPECT_THAT(call("/test.Echo/Unlisted", bearer("alice")).status,
              StatusIs(StatusCode::kPermissionDenied, HasSubstr("denied by default")));
}

TEST_F(RpcAuthTest, TheHealthCheckAnswersWithoutCredentials) {
  core::CallResult result = call(std::string(core::kHealthCheckMethod));
  ASSERT_THAT(result.status, IsOk());
  EXPECT_EQ(result.response.to_string(), "SERVING");
}

TEST_F(RpcAuthTest, AnMtlsWorkloadIsAuthorizedByItsCertificateWithoutAToken) {
  auto prod = mtls_as("orders", "spiffe://mesh.test/ns/prod/orders");
  EXPECT_THAT(call("/test.Prod/Read", "", prod.get()).status, IsOk());
  core::CallResult whoami = call("/test.Echo/Whoami", "", prod.get());
  ASSERT_THAT(whoami.status, IsOk());
  EXPECT_EQ(whoami.response.to_string(), "cn:orders");

  auto dev = mtls_as("orders-dev", "spiffe://mesh.test/ns/dev/orders");
  EXPECT_THAT(call("/test.Prod/Read", "", dev.get()).status,
              StatusIs(StatusCode::kPermissionDenied,
                       HasSubstr("cn:orders-dev may not access /test.Prod/Read")));
  // Without a certificate (plaintext) the same call is not authenticated at all.
  EXPECT_THAT(call("/test.Prod/Read").status, StatusIs(StatusCode::kUnauthenticated));
}

TEST_F(RpcAuthTest, ATokenOverMtlsIsMatchedByItsSubjectAndTheCertificate) {
  auto prod = mtls_as("orders", "spiffe://mesh.test/ns/prod/orders");
  // bob's token alone may not read /test.Prod; on the prod workload's connection he may.
  EXPECT_THAT(call("/test.Prod/Read", bearer("bob")).status,
              StatusIs(StatusCode::kPermissionDenied));
  EXPECT_THAT(call("/test.Prod/Read", bearer("bob"), prod.get()).status, IsOk());
  core::CallResult whoami = call("/test.Echo/Whoami", bearer("bob"), prod.get());
  ASSERT_THAT(whoami.status, IsOk());
  EXPECT_EQ(whoami.response.to_string(), "token:bob");
}

}  // namespace
}  // namespace meshrpc::security
