// Authorization: which principals may call which methods (and open which pages), as an
// ordered list of rules, and the server interceptor that enforces it after authentication.
//
//   auto policy = security::AccessPolicy::create({
//       {.resource = "/kv.Store/Get", .allow = {"any-authenticated"}},
//       {.resource = "/kv.Store/*", .allow = {"uri:spiffe://example.org/ns/prod/*",
//                                             "claim:role=admin"}},
//       {.resource = "page:/metrics", .allow = {"token:prometheus"}},
//       {.resource = "page:/health", .allow = {"anyone"}},
//   });
//
// Resources: a canonical method name "/pkg.Svc/Method", or "page:<path>" for an HTTP page.
// A rule's resource pattern is exact or a prefix ending in '*' ("/pkg.Svc/*", "page:*"); "*"
// alone matches every method and page.
//
// Principal patterns (exact, or a prefix ending in '*'):
//   "anyone"                 everyone, authenticated or not
//   "any-authenticated"      any principal
//   "token:<sub>"            a JWT's subject             "static:<name>"  a static token
//   "cn:", "dns:", "uri:", "email:", "ip:", "sha256:"   the client certificate's names
//                                                         (PeerIdentity::principals())
//   "claim:<key>=<value>"    a JWT claim (any value, for array claims); the value may end in
//                            '*'
//
// Decision: the FIRST rule whose resource matches decides; later rules are not consulted. A
// rule with an empty allow list denies (to carve a method out of a broader rule before it).
// No matching rule denies: a method added later stays closed until a rule opens it, so a
// forgotten rule fails safe and visibly (the error names the method) instead of open.
//
// Denials use the two codes as clients expect them: UNAUTHENTICATED when the caller is not
// authenticated at all (obtain credentials and retry), PERMISSION_DENIED when it is and may not
// (retrying with the same identity will not help).
//
// Threading: immutable after create(); check() from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "meshrpc/base/result.h"
#include "meshrpc/base/status.h"
#include "meshrpc/core/interceptor.h"
#include "meshrpc/core/server.h"
#include "meshrpc/core/server_context.h"
#include "meshrpc/security/principal.h"

namespace meshrpc::security {

// One rule: who may access what `resource` matches. Members have initializers, so
// designated initializers work without -Wmissing-field-initializers.
struct AccessRule {
  std::string resource{};
  std::vector<std::string> allow{};
};

class AccessPolicy {
 public:
  // INVALID_ARGUMENT naming the rule when a pattern is empty, has a '*' before its end, or a
  // principal pattern is of no kind listed above (a typo like "tokn:alice" must not silently
  // match nothing).
  static Result<AccessPolicy> create(std::vector<AccessRule> rules);
  // The same from JSON: {"rules":[{"resource":"/pkg.Svc/*","allow":["token:alice"]}, ...]}.
  // INVALID_ARGUMENT for JSON of another shape.
  static Result<AccessPolicy> from_json(std::string_view json);

  // OK if `principal` (null: not authenticated) may access `resource`; else UNAUTHENTICATED
  // (null principal) or PERMISSION_DENIED, naming the resource, the principal and the rule.
  Status check(std::string_view resource, const Principal* principal) const;

  const std::vector<AccessRule>& rules() const { return rules_; }

 private:
  explicit AccessPolicy(std::vector<AccessRule> rules) : rules_(std::move(rules)) {}
  std::vector<AccessRule> rules_;
};

// "page:" + path: the resource an HTTP page is checked as.
std::string page_resource(std::string_view path);

struct AuthorizerOptions {
  // Methods (exact canonical names, or prefixes ending in '*') the policy is not asked about.
  // The health check, as in AuthenticatorOptions, so probes need no rule.
  std::vector<std::string> exempt_methods = {std::string(core::kHealthCheckMethod)};
};

// The server interceptor enforcing a policy on every call, with the principal an
// authenticator attached (principal_of). Put it after the authenticator. Immutable; shared
// by every call and thread.
class Authorizer final : public core::ServerInterceptor {
 public:
  // Throws std::invalid_argument (a setup error) for a null policy or a bad exempt pattern.
  explicit Authorizer(std::shared_ptr<const AccessPolicy> policy, AuthorizerOptions options = {});

  awaitable<Status> before_handler(core::ServerContext& ctx) override;

 private:
  const std::shared_ptr<const AccessPolicy> policy_;
  const AuthorizerOptions options_;
};

}  // namespace meshrpc::security
