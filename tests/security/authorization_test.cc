// AccessPolicy as a pure function of (resource, principal): first matching rule decides,
// default deny, the two denial codes, every principal pattern kind, and policy validation and
// JSON parsing.
#include "meshrpc/security/authorization.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "meshrpc/base/status_matchers.h"

namespace meshrpc::security {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;

AccessRule rule(std::string resource, std::vector<std::string> allow) {
  AccessRule out;
  out.resource = std::move(resource);
  out.allow = std::move(allow);
  return out;
}

AccessPolicy policy_of(std::vector<AccessRule> rules) {
  Result<AccessPolicy> policy = AccessPolicy::create(std::move(rules));
  EXPECT_THAT(policy, IsOk());
  return *std::move(policy);
}

Principal token_principal(std::string subject,
                          std::multimap<std::string, std::string> claims = {}) {
  Principal principal;
  principal.name = "token:" + subject;
  principal.claims = std::move(claims);
  principal.claims.emplace("sub", subject);
  return principal;
}

Principal certificate(std::string common_name, std::vector<std::string> uris) {
  auto identity = std::make_shared<transport::PeerIdentity>();
  identity->common_name = std::move(common_name);
  identity->uris = std::move(uris);
  identity->sha256_fingerprint = "ab12";
  Principal principal;
  principal.name = identity->principals().front();
  principal.peer = std::move(identity);
  return principal;
}

TEST(AccessPolicy, TheFirstMatchingRuleDecides) {
  AccessPolicy policy = policy_of({rule("/kv.Store/Delete", {"token:admin"}),
                                   rule("/kv.Store/*", {"token:alice", "token:admin"})});
  const Principal alice = token_principal("alice");
  EXPECT_THAT(policy.check("/kv.Store/Get", &alice), IsOk());
  // The broader rule would allow alice, but the first match decides.
  EXPECT_THAT(policy.check("/kv.Store/Delete", &alice),
              StatusIs(StatusCode::kPermissionDenied,
                       "token:alice may not access /kv.Store/Delete (access rule 1, "
                       "'/kv.Store/Delete')"));
  const Principal admin = token_principal("admin");
  EXPECT_THAT(policy.check("/kv.Store/Delete", &admin), IsOk());
}

TEST(AccessPolicy, NoMatchingRuleDeniesByDefault) {
  AccessPolicy policy = policy_of({rule("/kv.Store/*", {"any-authenticated"})});
  const Principal alice = token_principal("alice");
  EXPECT_THAT(policy.check("/kv.Admin/Drop", &alice),
              StatusIs(StatusCode::kPermissionDenied, HasSubstr("denied by default")));
  EXPECT_THAT(policy_of({}).check("/kv.Store/Get", &alice),
              StatusIs(StatusCode::kPermissionDenied, HasSubstr("no access rule matches")));
}

TEST(AccessPolicy, AnUnauthenticatedCallerIsToldToAuthenticateNotThatItIsForbidden) {
  AccessPolicy policy = policy_of({rule("/kv.Store/*", {"token:alice"})});
  EXPECT_THAT(policy.check("/kv.Store/Get", nullptr),
              StatusIs(StatusCode::kUnauthenticated,
                       HasSubstr("/kv.Store/Get needs an authenticated caller")));
  EXPECT_THAT(policy.check("/other.Svc/M", nullptr), StatusIs(StatusCode::kUnauthenticated));
}

TEST(AccessPolicy, AnyoneAllowsCallersWithoutAPrincipal) {
  AccessPolicy policy = policy_of({rule("page:/health", {"anyone"}), rule("*", {"token:ops"})});
  EXPECT_THAT(policy.check("page:/health", nullptr), IsOk());
  const Principal alice = token_principal("alice");
  EXPECT_THAT(policy.check("page:/health", &alice), IsOk());
  EXPECT_THAT(policy.check("page:/metrics", nullptr), StatusIs(StatusCode::kUnauthenticated));
}

TEST(AccessPolicy, AnyAuthenticatedAllowsEveryPrincipalKind) {
  AccessPolicy policy = policy_of({rule("*", {"any-authenticated"})});
  const Principal alice = token_principal("alice");
  Principal ci;
  ci.name = "static:ci";
  const Principal workload = certificate("kv-1", {});
  EXPECT_THAT(policy.check("/a.B/C", &alice), IsOk());
  EXPECT_THAT(policy.check("/a.B/C", &ci), IsOk());
  EXPECT_THAT(policy.check("/a.B/C", &workload), IsOk());
  EXPECT_THAT(policy.check("/a.B/C", nullptr), StatusIs(StatusCode::kUnauthenticated));
}

TEST(AccessPolicy, CertificatePatternsMatchAnyOfTheCertificateNames) {
  AccessPolicy policy = policy_of({rule("/kv.Store/*", {"uri:spiffe://example.org/ns/prod/*"}),
                                   rule("/kv.Admin/*", {"cn:admin", "sha256:ffff"})});
  const Principal prod = certificate("kv-1", {"spiffe://example.org/ns/prod/sa/kv"});
  const Principal dev = certificate("kv-2", {"spiffe://example.org/ns/dev/sa/kv"});
  const Principal admin = certificate("admin", {});
  EXPECT_THAT(policy.check("/kv.Store/Put", &prod), IsOk());
  EXPECT_THAT(policy.check("/kv.Store/Put", &dev),
              StatusIs(StatusCode::kPermissionDenied, HasSubstr("cn:kv-2 may not access")));
  EXPECT_THAT(policy.check("/kv.Admin/Drop", &admin), IsOk());
  EXPECT_THAT(policy.check("/kv.Admin/Drop", &prod), StatusIs(StatusCode::kPermissionDenied));
  // A token principal on an mTLS connection is matched by its certificate too.
  Principal alice_on_prod = token_principal("alice");
  alice_on_prod.peer = prod.peer;
  EXPECT_THAT(policy.check("/kv.Store/Put", &alice_on_prod), IsOk());
}

TEST(AccessPolicy, CertificateFingerprintPinsOneCertificate) {
  AccessPolicy policy = policy_of({rule("*", {"sha256:ab12"})});
  const Principal pinned = certificate("kv-1", {});
  EXPECT_THAT(policy.check("/a.B/C", &pinned), IsOk());
}

TEST(AccessPolicy, ClaimRulesMatchAnyValueOfTheClaim) {
  AccessPolicy policy = policy_of(
      {rule("/kv.Admin/*", {"claim:roles=admin"}), rule("/kv.Store/*", {"claim:tenant=acme-*"})});
  const Principal admin = token_principal("carol", {{"roles", "reader"}, {"roles", "admin"}});
  const Principal reader = token_principal("dave", {{"roles", "reader"}});
  const Principal tenant = token_principal("erin", {{"tenant", "acme-eu"}});
  EXPECT_THAT(policy.check("/kv.Admin/Drop", &admin), IsOk());
  EXPECT_THAT(policy.check("/kv.Admin/Drop", &reader), StatusIs(StatusCode::kPermissionDenied));
  EXPECT_THAT(policy.check("/kv.Store/Get", &tenant), IsOk());
  EXPECT_THAT(policy.check("/kv.Store/Get", &admin), StatusIs(StatusCode::kPermissionDenied));
}

TEST(AccessPolicy, ARuleWithoutPrincipalsDeniesWhatLaterRulesWouldAllow) {
  AccessPolicy policy =
      policy_of({rule("/kv.Store/Drop", {}), rule("/kv.Store/*", {"any-authenticated"})});
  const Principal alice = token_principal("alice");
  EXPECT_THAT(policy.check("/kv.Store/Get", &alice), IsOk());
  EXPECT_THAT(policy.check("/kv.Store/Drop", &alice), StatusIs(StatusCode::kPermissionDenied));
}

TEST(AccessPolicy, TokenPatternsMatchSubjectsExactlyOrByPrefix) {
  AccessPolicy policy = policy_of({rule("*", {"token:svc-*", "static:ci"})});
  const Principal service = token_principal("svc-billing");
  const Principal alice = token_principal("alice");
  Principal ci;
  ci.name = "static:ci";
  Principal ci2;
  ci2.name = "static:ci2";
  EXPECT_THAT(policy.check("/a.B/C", &service), IsOk());
  EXPECT_THAT(policy.check("/a.B/C", &ci), IsOk());
  EXPECT_THAT(policy.check("/a.B/C", &alice), StatusIs(StatusCode::kPermissionDenied));
  EXPECT_THAT(policy.check("/a.B/C", &ci2), StatusIs(StatusCode::kPermissionDenied));
}

TEST(AccessPolicy, RefusesPatternsThatWouldNotMeanWhatTheySay) {
  const struct {
    AccessRule rule;
    std::string reason;
  } cases[] = {
      {rule("", {"anyone"}), "resource pattern is empty"},
      {rule("/kv.*/Get", {"anyone"}), "'*' before its end"},
      {rule("*", {"tokn:alice"}), "no known kind"},
      {rule("*", {"alice"}), "no known kind"},
      {rule("*", {"uri:spiffe://*/prod"}), "'*' before its end"},
      {rule("*", {"claim:role"}), "claim:<key>=<value>"},
      {rule("*", {"claim:=admin"}), "claim:<key>=<value>"},
      {rule("*", {"claim:ro*=admin"}), "claim name"},
      {rule("*", {"claim:role=a*b"}), "claim value"},
  };
  for (const auto& c : cases) {
    EXPECT_THAT(AccessPolicy::create({c.rule}),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.reason)))
        << c.rule.resource;
  }
  EXPECT_THAT(AccessPolicy::create({rule("*", {"anyone"}), rule("*", {"bogus"})}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("access rule 2")));
}

TEST(AccessPolicy, ParsesItsJsonForm) {
  Result<AccessPolicy> policy = AccessPolicy::from_json(R"({"rules":[
      {"resource":"/kv.Store/*","allow":["token:alice","claim:role=admin"]},
      {"resource":"page:/metrics","allow":["anyone"]}]})");
  ASSERT_THAT(policy, IsOk());
  ASSERT_EQ(policy->rules().size(), 2u);
  const Principal alice = token_principal("alice");
  EXPECT_THAT(policy->check("/kv.Store/Get", &alice), IsOk());
  EXPECT_THAT(policy->check("page:/metrics", nullptr), IsOk());
  EXPECT_THAT(policy->check("page:/status", &alice), StatusIs(StatusCode::kPermissionDenied));
}

TEST(AccessPolicy, RefusesJsonOfAnotherShape) {
  const struct {
    std::string json;
    std::string reason;
  } cases[] = {
      {"{", "not JSON"},
      {"[]", R"(not {"rules":[...]})"},
      {R"({"rules":{}})", R"(not {"rules":[...]})"},
      {R"({"rules":[],"extra":1})", R"(not {"rules":[...]})"},
      {R"({"rules":[5]})", "access rule 1 is not an object"},
      {R"({"rules":[{"allow":[]}]})", "access rule 1 has no resource"},
      {R"({"rules":[{"resource":"*","allow":"anyone"}]})", "allow is not an array"},
      {R"({"rules":[{"resource":"*","allow":[1]}]})", "holds a non-string"},
      {R"({"rules":[{"resource":"*","alow":["anyone"]}]})", "unknown or mistyped field 'alow'"},
      {R"({"rules":[{"resource":"*","allow":["nobody"]}]})", "no known kind"},
  };
  for (const auto& c : cases) {
    EXPECT_THAT(AccessPolicy::from_json(c.json),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.reason)))
        << c.json;
  }
}

TEST(AccessPolicy, PageResourcesArePrefixedSoPagesAndMethodsNeverCollide) {
  EXPECT_EQ(page_resource("/metrics"), "page:/metrics");
  AccessPolicy policy = policy_of({rule("/*", {"anyone"})});  // every method, no page
  EXPECT_THAT(policy.check("/kv.Store/Get", nullptr), IsOk());
  EXPECT_THAT(policy.check(page_resource("/metrics"), nullptr),
              StatusIs(StatusCode::kUnauthenticated));
}

}  // namespace
}  // namespace meshrpc::security
