// BearerTokenAuthenticator and Authorizer called directly with a ServerContext, so the
// certificate cases (a context whose peer identity is set) are covered without TLS; plus the
// Authorization header parsing and where the principal is found (principal_of).
#include "meshrpc/security/authenticator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/runtime/sim_env.h"
#include "meshrpc/security/authorization.h"

namespace meshrpc::security {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kNow = 1'790'000'000;
const std::string kKey = "0123456789abcdef0123456789abcdef";
const std::string kStaticToken = "ci-secret-token-0123";

std::shared_ptr<TokenVerifier> make_verifier() {
  TokenVerifierOptions options;
  options.clock = [] { return kNow; };
  auto verifier = std::make_shared<TokenVerifier>(options);
  EXPECT_THAT(verifier->add_key("k1", kKey), IsOk());
  return verifier;
}

std::string bearer(std::string subject, std::string role = "") {
  TokenClaims claims;
  claims.subject = std::move(subject);
  claims.expires_at = kNow + 3600;
  if (!role.empty()) claims.extra.emplace("role", role);
  Result<std::string> token = sign_token(claims, kKey, "k1");
  EXPECT_THAT(token, IsOk());
  return "Bearer " + token.value_or("");
}

std::shared_ptr<const transport::PeerIdentity> prod_workload() {
  auto identity = std::make_shared<transport::PeerIdentity>();
  identity->common_name = "kv-1";
  identity->uris = {"spiffe://example.org/ns/prod/sa/kv"};
  identity->sha256_fingerprint = "00ff";
  return identity;
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  AuthenticatorOptions options() {
    AuthenticatorOptions options;
    options.verifier = make_verifier();
    auto tokens = std::make_shared<StaticTokens>();
    EXPECT_THAT(tokens->add(kStaticToken, "ci"), IsOk());
    options.static_tokens = std::move(tokens);
    return options;
  }

  std::unique_ptr<core::ServerContext> context(
      std::string method, core::Metadata metadata = {},
      std::shared_ptr<const transport::PeerIdentity> peer = nullptr) {
    auto ctx = std::make_unique<core::ServerContext>(env_, std::move(method), std::move(metadata),
                                                     runtime::kInfiniteFuture,
                                                     transport::Address{"10.0.0.7", 4000});
    ctx->set_peer_identity(std::move(peer));
    return ctx;
  }

  Status before(core::ServerInterceptor& interceptor, core::ServerContext& ctx) {
    Status result = internal_error("did not run");
    asio::io_context io;
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
          Status status = co_await interceptor.before_handler(ctx);
          result = std::move(status);
        },
        asio::detached);
    io.run();
    return result;
  }

  runtime::SimEnv env_{7};
};

TEST_F(AuthenticatorTest, AValidTokenAttachesItsPrincipalUntilTheCallEnds) {
  BearerTokenAuthenticator authenticator(options());
  auto ctx = context("/kv.Store/Get", {{"authorization", bearer("alice", "admin")}});
  ASSERT_THAT(before(authenticator, *ctx), IsOk());
  const Principal* principal = principal_of(*ctx);
  ASSERT_NE(principal, nullptr);
  EXPECT_EQ(principal->name, "token:alice");
  EXPECT_TRUE(principal->has_claim("role", "admin"));
  EXPECT_TRUE(principal->has_claim("sub", "alice"));
  EXPECT_EQ(principal->peer, nullptr);

  authenticator.after_handler(*ctx, Status(), runtime::Duration::zero());
  EXPECT_EQ(principal_of(*ctx), nullptr);
}

TEST_F(AuthenticatorTest, AMissingTokenIsUnauthenticated) {
  BearerTokenAuthenticator authenticator(options());
  auto ctx = context("/kv.Store/Get");
  EXPECT_THAT(before(authenticator, *ctx), StatusIs(StatusCode::kUnauthenticated,
                                                    "calling /kv.Store/Get: missing bearer token"));
  EXPECT_EQ(principal_of(*ctx), nullptr);
}

TEST_F(AuthenticatorTest, ABadTokenIsUnauthenticatedWithTheReason) {
  BearerTokenAuthenticator authenticator(options());
  auto garbage = context("/kv.Store/Get", {{"authorization", "Bearer not.a.jwt"}});
  EXPECT_THAT(before(authenticator, *garbage),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("malformed token")));
  auto unknown_static = context("/kv.Store/Get", {{"authorization", "Bearer wrong-static-token"}});
  EXPECT_THAT(before(authenticator, *unknown_static),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("not a known static token")));
}

TEST_F(AuthenticatorTest, AStaticTokenNamesItsPrincipal) {
  BearerTokenAuthenticator authenticator(options());
  auto ctx = context("/kv.Store/Get", {{"authorization", "bearer " + kStaticToken}});
  ASSERT_THAT(before(authenticator, *ctx), IsOk());
  ASSERT_NE(principal_of(*ctx), nullptr);
  EXPECT_EQ(principal_of(*ctx)->name, "static:ci");
  authenticator.after_handler(*ctx, Status(), runtime::Duration::zero());
}

TEST_F(AuthenticatorTest, TwoAuthorizationValuesAreRefused) {
  BearerTokenAuthenticator authenticator(options());
  auto ctx = context("/kv.Store/Get", {{"authorization", bearer("alice")},
                                       {"authorization", "Bearer " + kStaticToken}});
  EXPECT_THAT(before(authenticator, *ctx),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("2 authorization values")));
}

TEST_F(AuthenticatorTest, AVerifiedCertificateAloneAuthenticates) {
  BearerTokenAuthenticator authenticator(options());
  auto ctx = context("/kv.Store/Get", {}, prod_workload());
  ASSERT_THAT(before(authenticator, *ctx), IsOk());
  const Principal* principal = principal_of(*ctx);
  ASSERT_NE(principal, nullptr);
  EXPECT_EQ(principal->name, "cn:kv-1");
  EXPECT_THAT(principal->names(),
              ElementsAre("cn:kv-1", "uri:spiffe://example.org/ns/prod/sa/kv", "sha256:00ff"));
  authenticator.after_handler(*ctx, Status(), runtime::Duration::zero());
}

TEST_F(AuthenticatorTest, ACertificateIsNotEnoughWhenTokensAreDemanded) {
  AuthenticatorOptions strict = options();
  strict.accept_client_certificate = false;
  BearerTokenAuthenticator authenticator(strict);
  auto ctx = context("/kv.Store/Get", {}, prod_workload());
  EXPECT_THAT(before(authenticator, *ctx),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("missing bearer token")));
}

TEST_F(AuthenticatorTest, ABadTokenIsRefusedEvenWithAGoodCertificate) {
  BearerTokenAuthenticator authenticator(options());
  auto ctx = context("/kv.Store/Get", {{"authorization", "Bearer a.b.c"}}, prod_workload());
  EXPECT_THAT(before(authenticator, *ctx), StatusIs(StatusCode::kUnauthenticated));
  EXPECT_EQ(principal_of(*ctx), nullptr);
}

TEST_F(AuthenticatorTest, ATokenOnAnMtlsConnectionCarriesTheCertificateToo) {
  BearerTokenAuthenticator authenticator(options());
  auto ctx = context("/kv.Store/Get", {{"authorization", bearer("alice")}}, prod_workload());
  ASSERT_THAT(before(authenticator, *ctx), IsOk());
  ASSERT_NE(principal_of(*ctx), nullptr);
  EXPECT_EQ(principal_of(*ctx)->name, "token:alice");
  EXPECT_THAT(principal_of(*ctx)->names(),
              ElementsAre("token:alice", "cn:kv-1", "uri:spiffe://example.org/ns/prod/sa/kv",
                          "sha256:00ff"));
  authenticator.after_handler(*ctx, Status(), runtime::Duration::zero());
}

TEST_F(AuthenticatorTest, AnonymousCallsProceedWithoutAPrincipalWhenAllowed) {
  AuthenticatorOptions open = options();
  open.allow_anonymous = true;
  BearerTokenAuthenticator authenticator(open);
  auto ctx = context("/kv.Store/Get");
  EXPECT_THAT(before(authenticator, *ctx), IsOk());
  EXPECT_EQ(principal_of(*ctx), nullptr);
  // A presented token must still be good.
  auto bad = context("/kv.Store/Get", {{"authorization", "Bearer x.y.z"}});
  EXPECT_THAT(before(authenticator, *bad), StatusIs(StatusCode::kUnauthenticated));
}

TEST_F(AuthenticatorTest, TheHealthCheckIsExemptByDefault) {
  BearerTokenAuthenticator authenticator(options());
  auto ctx = context(std::string(core::kHealthCheckMethod));
  EXPECT_THAT(before(authenticator, *ctx), IsOk());
  EXPECT_TRUE(authenticator.is_exempt("/meshrpc.Health/Check"));
  EXPECT_FALSE(authenticator.is_exempt("/meshrpc.Health/Watch"));

  AuthenticatorOptions custom = options();
  custom.exempt_methods = {"meshrpc.Health.Check", "/public.Docs/*"};
  BearerTokenAuthenticator dotted(custom);
  EXPECT_TRUE(dotted.is_exempt("/meshrpc.Health/Check"));  // dotted names are canonicalized
  EXPECT_TRUE(dotted.is_exempt("/public.Docs/Read"));
  custom.exempt_methods = {"/a*b/C"};
  EXPECT_THROW(BearerTokenAuthenticator{custom}, std::invalid_argument);
}

TEST(BearerToken, ParsesTheSchemeCaseInsensitivelyAndRefusesOthers) {
  EXPECT_THAT(BearerTokenAuthenticator::bearer_token("Bearer abc"),
              ::meshrpc::testing::IsOkAndHolds("abc"));
  EXPECT_THAT(BearerTokenAuthenticator::bearer_token("BEARER   abc  "),
              ::meshrpc::testing::IsOkAndHolds("abc"));
  EXPECT_THAT(BearerTokenAuthenticator::bearer_token("Basic dXNlcjpwYXNz"),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("scheme 'Basic'")));
  EXPECT_THAT(BearerTokenAuthenticator::bearer_token("abc"),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("not 'Bearer <token>'")));
  EXPECT_THAT(BearerTokenAuthenticator::bearer_token("Bearer "),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("empty bearer token")));
}

// --- the authorizer after the authenticator -------------------------------------------------

class AuthorizerTest : public AuthenticatorTest {
 protected:
  void SetUp() override {
    AccessRule store;
    store.resource = "/kv.Store/*";
    store.allow = {"uri:spiffe://example.org/ns/prod/*", "claim:role=admin"};
    Result<AccessPolicy> policy = AccessPolicy::create({store});
    ASSERT_THAT(policy, IsOk());
    authorizer_ = std::make_unique<Authorizer>(std::make_shared<AccessPolicy>(*std::move(policy)));
  }

  // Both interceptors in order, as the server runs them; the principal is detached after.
  Status admit(core::ServerContext& ctx) {
    Status status = before(authenticator_, ctx);
    if (status.ok()) status = before(*authorizer_, ctx);
    authenticator_.after_handler(ctx, status, runtime::Duration::zero());
    return status;
  }

  BearerTokenAuthenticator authenticator_{options()};
  std::unique_ptr<Authorizer> authorizer_;
};

TEST_F(AuthorizerTest, APeerIdentityRuleAdmitsTheProdWorkloadOnly) {
  EXPECT_THAT(admit(*context("/kv.Store/Put", {}, prod_workload())), IsOk());

  auto dev = std::make_shared<transport::PeerIdentity>();
  dev->common_name = "kv-dev";
  dev->uris = {"spiffe://example.org/ns/dev/sa/kv"};
  EXPECT_THAT(
      admit(*context("/kv.Store/Put", {}, dev)),
      StatusIs(StatusCode::kPermissionDenied, HasSubstr("cn:kv-dev may not access /kv.Store/Put")));
}

TEST_F(AuthorizerTest, AClaimRuleAdmitsTokensWithTheClaim) {
  EXPECT_THAT(admit(*context("/kv.Store/Put", {{"authorization", bearer("carol", "admin")}})),
              IsOk());
  EXPECT_THAT(admit(*context("/kv.Store/Put", {{"authorization", bearer("dave", "reader")}})),
              StatusIs(StatusCode::kPermissionDenied, HasSubstr("token:dave")));
}

TEST_F(AuthorizerTest, WithoutAnAuthenticatedPrincipalTheAnswerIsUnauthenticated) {
  auto ctx = context("/kv.Store/Put");
  EXPECT_THAT(before(*authorizer_, *ctx), StatusIs(StatusCode::kUnauthenticated));
}

TEST_F(AuthorizerTest, TheHealthCheckNeedsNoRule) {
  auto ctx = context(std::string(core::kHealthCheckMethod));
  EXPECT_THAT(admit(*ctx), IsOk());
}

TEST(Authorizer, RefusesANullPolicy) { EXPECT_THROW(Authorizer(nullptr), std::invalid_argument); }

}  // namespace
}  // namespace meshrpc::security
