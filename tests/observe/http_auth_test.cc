// HttpService with security on: the JSON gateway carries the Authorization header into the
// call, so the server's authenticator and authorizer decide gateway calls (401 with
// WWW-Authenticate, 403); Options::page_access with security::page_guard restricts pages one by
// one while /health stays open. Over real TCP on 127.0.0.1, with a Boost.Beast client.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <cctype>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/codec/server.h"
#include "meshrpc/codec/struct.h"
#include "meshrpc/codec/struct_codec.h"
#include "meshrpc/observe/http_service.h"
#include "meshrpc/security/authenticator.h"
#include "meshrpc/security/authorization.h"
#include "meshrpc/security/page_guard.h"
#include "meshrpc/transport/errors.h"
#include "meshrpc/transport/tls.h"
#include "tests/support/tcp_harness.h"
#include "tests/support/test_pki.h"

namespace meshrpc::observe {
namespace http_auth_test {

struct GreetArgs {
  std::string name;
};
MESHRPC_STRUCT(GreetArgs, (name, 1));

struct GreetReply {
  std::string text;
};
MESHRPC_STRUCT(GreetReply, (text, 1));

}  // namespace http_auth_test

namespace {

using ::meshrpc::testing::make_credentials;

using http_auth_test::GreetArgs;
using http_auth_test::GreetReply;
using ::meshrpc::testing::IsOk;
using ::testing::HasSubstr;
namespace http = boost::beast::http;

constexpr int64_t kNow = 1'790'000'000;
const std::string kKey = "0123456789abcdef0123456789abcdef";
constexpr char kGreet[] = "/test.Auth/Greet";

std::string bearer(std::string subject, std::string role = "") {
  security::TokenClaims claims;
  claims.subject = std::move(subject);
  claims.expires_at = kNow + 3600;
  if (!role.empty()) claims.extra.emplace("role", role);
  return "Bearer " + security::sign_token(claims, kKey).value_or("");
}

security::AccessRule rule(std::string resource, std::vector<std::string> allow) {
  security::AccessRule out;
  out.resource = std::move(resource);
  out.allow = std::move(allow);
  return out;
}

struct Reply {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  std::string header(const std::string& name) const {
    auto found = headers.find(name);
    return found == headers.end() ? "" : found->second;
  }
  std::string code() const {
    boost::system::error_code ec;
    boost::json::value value = boost::json::parse(body, ec);
    if (ec || !value.is_object() || !value.as_object().contains("code")) return "";
    return std::string(value.as_object().at("code").as_string());
  }
};

class HttpAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    security::TokenVerifierOptions verifier_options;
    verifier_options.clock = [] { return kNow; };
    auto verifier = std::make_shared<security::TokenVerifier>(verifier_options);
    ASSERT_THAT(verifier->add_key("k1", kKey), IsOk());
    Result<security::AccessPolicy> policy = security::AccessPolicy::create({
        rule(kGreet, {"token:alice", "uri:spiffe://mesh.test/ns/prod/*"}),
        rule("page:/hello", {"anyone"}),
        rule("page:/metrics", {"token:prometheus", "claim:role=ops", "cn:scraper"}),
        rule("page:*", {"claim:role=ops"}),
    });
    ASSERT_THAT(policy, IsOk());
    auto shared_policy = std::make_shared<const security::AccessPolicy>(*std::move(policy));

    security::AuthenticatorOptions authn;
    authn.verifier = verifier;
    const ::meshrpc::testing::TestCertificate cert = pki_.server();
    core::ServerOptions server_options;
    server_options.tls = make_credentials({.certificate_chain_pem = cert.chain_pem,
                                           .private_key_pem = cert.key_pem,
                                           .ca_pem = pki_.ca_pem(),
                                           .client_auth = transport::ClientAuth::kOptional},
                                          transport::TlsRole::kServer);
    server_options.interceptors = {
        std::make_shared<security::BearerTokenAuthenticator>(std::move(authn)),
        std::make_shared<security::Authorizer>(shared_policy)};
    server_ = std::make_unique<codec::Server>(harness_.server_env(), harness_.server_network(),
                                              std::move(server_options));
    server_->handle<GreetArgs, GreetReply>(
        kGreet, [](core::ServerContext&, const GreetArgs& args) -> Result<GreetReply> {
          return GreetReply{"hello " + args.name};
        });

    HttpService::Options options;
    options.metrics = &metrics_;
    options.page_access = security::page_guard(verifier, shared_policy);
    http_ = HttpService::attach(*server_, options);
    http_->add_page("/hello", [](const HttpRequest&) -> awaitable<HttpResponse> {
      HttpResponse response;
      response.content_type = "text/plain";
      response.body = "hello";
      co_return response;
    });
    auto address = server_->start(harness_.listen_address());
    ASSERT_THAT(address, IsOk());
    address_ = *address;
  }

  void TearDown() override {
    http_.reset();
    server_.reset();
  }

  // A network whose connections are HTTPS with a client certificate.
  std::unique_ptr<transport::TlsNetwork> mtls_as(const std::string& common_name,
                                                 std::vector<std::string> uris) {
    const ::meshrpc::testing::TestCertificate cert = pki_.client(common_name, std::move(uris));
    return std::make_unique<transport::TlsNetwork>(
        harness_.client_network(), make_credentials({.certificate_chain_pem = cert.chain_pem,
                                                     .private_key_pem = cert.key_pem,
                                                     .ca_pem = pki_.ca_pem(),
                                                     .server_name = "localhost"},
                                                    transport::TlsRole::kClient));
  }

  // One request on a fresh connection through `network` (plaintext TCP when null);
  // `authorization` becomes the Authorization header.
  Result<Reply> fetch(http::verb verb, const std::string& target, std::string authorization = "",
                      std::string body = "", transport::Network* network = nullptr) {
    transport::Network& via = network != nullptr ? *network : harness_.client_network();
    http::request<http::string_body> request{verb, target, 11};
    request.set(http::field::host, "meshrpc-test");
    if (!authorization.empty()) request.set(http::field::authorization, authorization);
    if (verb == http::verb::post) request.set(http::field::content_type, "application/json");
    request.body() = std::move(body);
    request.prepare_payload();
    Result<Reply> reply = internal_error("not run");
    Status run = harness_.run_client([&]() -> awaitable<Status> {
      auto ex = co_await asio::this_coro::executor;
      const transport::Address target_address = address_;
      auto [ec, stream] = co_await via.async_connect(target_address, ex, use_nothrow_awaitable);
      if (ec) co_return transport::to_status(ec, "connect");
      auto [write_ec, written] =
          co_await http::async_write(*stream, request, use_nothrow_awaitable);
      if (write_ec) co_return transport::to_status(write_ec, "write");
      boost::beast::flat_buffer buffer;
      http::response<http::string_body> response;
      auto [read_ec, read] =
          co_await http::async_read(*stream, buffer, response, use_nothrow_awaitable);
      if (read_ec) co_return transport::to_status(read_ec, "read");
      Reply out;
      out.status = response.result_int();
      for (const auto& field : response) {
        std::string name(field.name_string());
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        out.headers[name] = std::string(field.value());
      }
      out.body = response.body();
      reply = std::move(out);
      co_return Status();
    });
    if (!run.ok()) return run;
    return reply;
  }

  ::meshrpc::testing::TcpHarness harness_;
  ::meshrpc::testing::TestPki pki_;
  MetricRegistry metrics_;
  std::unique_ptr<codec::Server> server_;
  std::shared_ptr<HttpService> http_;
  transport::Address address_;
};

// --- the gateway ----------------------------------------------------------------------------

TEST_F(HttpAuthTest, AGatewayCallWithoutATokenIs401WithWwwAuthenticate) {
  Result<Reply> reply = fetch(http::verb::post, kGreet, "", R"({"name":"x"})");
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 401u) << reply->body;
  EXPECT_EQ(reply->header("www-authenticate"), "Bearer");
  EXPECT_EQ(reply->code(), "UNAUTHENTICATED");
  EXPECT_THAT(reply->body, HasSubstr("missing bearer token"));
}

TEST_F(HttpAuthTest, AGatewayCallWithAnAllowedTokenIs200) {
  Result<Reply> reply = fetch(http::verb::post, kGreet, bearer("alice"), R"({"name":"x"})");
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 200u) << reply->body;
  EXPECT_THAT(reply->body, HasSubstr("hello x"));
}

TEST_F(HttpAuthTest, AGatewayCallWithABadTokenIs401) {
  Result<Reply> reply = fetch(http::verb::post, kGreet, "Bearer a.b.c", "{}");
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 401u) << reply->body;
  EXPECT_EQ(reply->header("www-authenticate"), "Bearer");
}

TEST_F(HttpAuthTest, AGatewayCallTheTokenMayNotMakeIs403) {
  Result<Reply> reply = fetch(http::verb::post, kGreet, bearer("bob"), "{}");
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 403u) << reply->body;
  EXPECT_EQ(reply->code(), "PERMISSION_DENIED");
  EXPECT_EQ(reply->header("www-authenticate"), "");
  EXPECT_THAT(reply->body, HasSubstr("token:bob may not access /test.Auth/Greet"));
}

// --- pages ----------------------------------------------------------------------------------

TEST_F(HttpAuthTest, MetricsIsRestrictedWhileHealthStaysOpen) {
  Result<Reply> metrics = fetch(http::verb::get, "/metrics");
  ASSERT_THAT(metrics, IsOk());
  EXPECT_EQ(metrics->status, 401u) << metrics->body;
  EXPECT_EQ(metrics->header("www-authenticate"), "Bearer");

  Result<Reply> health = fetch(http::verb::get, "/health");
  ASSERT_THAT(health, IsOk());
  EXPECT_EQ(health->status, 200u) << health->body;
  // Even a bad token does not stop a probe of /health: the guard is never asked.
  Result<Reply> health_with_junk = fetch(http::verb::get, "/health", "Bearer junk");
  ASSERT_THAT(health_with_junk, IsOk());
  EXPECT_EQ(health_with_junk->status, 200u);

  Result<Reply> scraped = fetch(http::verb::get, "/metrics", bearer("prometheus"));
  ASSERT_THAT(scraped, IsOk());
  EXPECT_EQ(scraped->status, 200u) << scraped->body;
}

TEST_F(HttpAuthTest, ThePageGuardAnswers403ToTheWrongPrincipal) {
  Result<Reply> reply = fetch(http::verb::get, "/metrics", bearer("alice"));
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 403u) << reply->body;
  EXPECT_EQ(reply->code(), "PERMISSION_DENIED");
  EXPECT_THAT(reply->body, HasSubstr("token:alice may not access page:/metrics"));
}

TEST_F(HttpAuthTest, PagesAreRestrictedSeparately) {
  // prometheus may scrape /metrics but not read /rpcz or /services; an operator may read all.
  Result<Reply> rpcz = fetch(http::verb::get, "/rpcz", bearer("prometheus"));
  ASSERT_THAT(rpcz, IsOk());
  EXPECT_EQ(rpcz->status, 403u) << rpcz->body;
  Result<Reply> services = fetch(http::verb::get, "/services", bearer("prometheus"));
  ASSERT_THAT(services, IsOk());
  EXPECT_EQ(services->status, 403u) << services->body;

  for (const char* page : {"/rpcz", "/services", "/metrics"}) {
    Result<Reply> reply = fetch(http::verb::get, page, bearer("olga", "ops"));
    ASSERT_THAT(reply, IsOk());
    EXPECT_EQ(reply->status, 200u) << page << ": " << reply->body;
  }
}

TEST_F(HttpAuthTest, APageOpenToAnyoneNeedsNoTokenButRefusesABadOne) {
  Result<Reply> open = fetch(http::verb::get, "/hello");
  ASSERT_THAT(open, IsOk());
  EXPECT_EQ(open->status, 200u) << open->body;
  EXPECT_EQ(open->body, "hello");

  Result<Reply> bad = fetch(http::verb::get, "/hello", "Bearer not-a-token");
  ASSERT_THAT(bad, IsOk());
  EXPECT_EQ(bad->status, 401u) << bad->body;
}

TEST_F(HttpAuthTest, UnknownPathsAreGuardedTooSoTheyRevealNothing) {
  Result<Reply> anonymous = fetch(http::verb::get, "/secret-admin-page");
  ASSERT_THAT(anonymous, IsOk());
  EXPECT_EQ(anonymous->status, 401u) << anonymous->body;
  Result<Reply> operator_view = fetch(http::verb::get, "/secret-admin-page", bearer("olga", "ops"));
  ASSERT_THAT(operator_view, IsOk());
  EXPECT_EQ(operator_view->status, 404u) << operator_view->body;
}

// --- mutual TLS -----------------------------------------------------------------------------

TEST_F(HttpAuthTest, AGatewayCallOverMtlsIsAuthenticatedByTheClientCertificate) {
  auto prod = mtls_as("orders", {"spiffe://mesh.test/ns/prod/orders"});
  Result<Reply> reply = fetch(http::verb::post, kGreet, "", R"({"name":"tls"})", prod.get());
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(reply->status, 200u) << reply->body;
  EXPECT_THAT(reply->body, HasSubstr("hello tls"));

  auto dev = mtls_as("orders-dev", {"spiffe://mesh.test/ns/dev/orders"});
  Result<Reply> denied = fetch(http::verb::post, kGreet, "", "{}", dev.get());
  ASSERT_THAT(denied, IsOk());
  EXPECT_EQ(denied->status, 403u) << denied->body;
  EXPECT_THAT(denied->body, HasSubstr("cn:orders-dev"));
}

TEST_F(HttpAuthTest, ThePageGuardReadsTheClientCertificate) {
  auto scraper = mtls_as("scraper", {});
  Result<Reply> metrics = fetch(http::verb::get, "/metrics", "", "", scraper.get());
  ASSERT_THAT(metrics, IsOk());
  EXPECT_EQ(metrics->status, 200u) << metrics->body;
  Result<Reply> rpcz = fetch(http::verb::get, "/rpcz", "", "", scraper.get());
  ASSERT_THAT(rpcz, IsOk());
  EXPECT_EQ(rpcz->status, 403u) << rpcz->body;
  EXPECT_THAT(rpcz->body, HasSubstr("cn:scraper may not access page:/rpcz"));
}

}  // namespace
}  // namespace meshrpc::observe
