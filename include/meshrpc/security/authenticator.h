// BearerTokenAuthenticator: the server interceptor that establishes who is calling, from the
// call's "authorization" metadata ("Bearer <token>", RFC 6750) and the connection's verified
// client certificate, and attaches the Principal for the handler and later interceptors
// (principal_of, principal.h). What the caller may do is the Authorizer's job
// (authorization.h), which runs after it:
//
//   auto verifier = std::make_shared<security::TokenVerifier>(verifier_options);
//   verifier->add_key("k1", key) ...;
//   options.interceptors = {
//       std::make_shared<security::BearerTokenAuthenticator>(
//           security::AuthenticatorOptions{.verifier = verifier}),
//       std::make_shared<security::Authorizer>(policy)};
//
// Outcomes, per call:
//   - a token is presented: it must verify (a JWT, or a StaticTokens entry), else
//     UNAUTHENTICATED with the reason; a bad token is never ignored in favour of a certificate;
//   - no token, a verified client certificate and accept_client_certificate: the certificate's
//     principal;
//   - no credentials: anonymous (no principal) if allow_anonymous, else UNAUTHENTICATED
//     "missing bearer token";
//   - an exempt method: nothing is checked and no principal is attached.
// The JSON gateway forwards the HTTP Authorization header as this metadata, so gateway calls
// are authenticated the same way.
//
// Threading: immutable after construction; shared by every call and thread.
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
#include "meshrpc/security/static_tokens.h"
#include "meshrpc/security/token.h"
#include "meshrpc/transport/peer_identity.h"

namespace meshrpc::security {

// The metadata key (and, through the gateway, HTTP header) carrying "Bearer <token>".
inline constexpr std::string_view kAuthorizationKey = "authorization";

// Every member has an initializer, so designated initializers name only what they set.
struct AuthenticatorOptions {
  // Verifies JWTs. Null: JWTs are not accepted.
  std::shared_ptr<const TokenVerifier> verifier{};
  // Opaque tokens, looked up before JWT verification. Null: none.
  std::shared_ptr<const StaticTokens> static_tokens{};
  // A client certificate that verified against the server's CA bundle is as strong a proof
  // of identity as a token; what it may do is still the policy's call. Turn off to demand a
  // token even on mTLS connections.
  bool accept_client_certificate = true;
  // Calls with no credentials proceed without a principal (the Authorizer then allows them
  // only where a rule says "anyone"). Off: they end UNAUTHENTICATED here.
  bool allow_anonymous = false;
  // Methods (exact canonical names, or prefixes ending in '*') that skip authentication. The
  // health check by default: load balancers and orchestrators probe it without credentials,
  // and it reveals only whether the server is serving.
  std::vector<std::string> exempt_methods = {std::string(core::kHealthCheckMethod)};
};

class BearerTokenAuthenticator final : public core::ServerInterceptor {
 public:
  // Throws std::invalid_argument (a setup error) when an exempt-method pattern has a '*'
  // before its end.
  explicit BearerTokenAuthenticator(AuthenticatorOptions options);

  // Who `authorization` (the metadata or header value, null when absent) and the verified
  // certificate `peer` (null when none) say the caller is: a principal, or null when there
  // are no credentials to go on (allow_anonymous is for the caller to apply). UNAUTHENTICATED
  // when a token is presented and does not verify, or the value is not "Bearer <token>".
  Result<std::shared_ptr<const Principal>> identify(
      const std::string* authorization, std::shared_ptr<const transport::PeerIdentity> peer) const;

  bool is_exempt(std::string_view method) const;
  const AuthenticatorOptions& options() const { return options_; }

  // core::ServerInterceptor
  awaitable<Status> before_handler(core::ServerContext& ctx) override;
  void after_handler(core::ServerContext& ctx, const Status& status,
                     runtime::Duration elapsed) override;

  // The token of "Bearer <token>" (scheme case-insensitive, RFC 7235 2.1), or
  // UNAUTHENTICATED naming what is wrong (never echoing the credentials).
  static Result<std::string_view> bearer_token(std::string_view authorization);

 private:
  Result<std::shared_ptr<const Principal>> from_token(
      std::string_view token, std::shared_ptr<const transport::PeerIdentity> peer) const;
  Result<std::shared_ptr<const Principal>> authenticate(const core::ServerContext& ctx) const;

  const AuthenticatorOptions options_;
};

// The principal a verified certificate alone gives (Principal::name: its first name).
std::shared_ptr<const Principal> certificate_principal(
    std::shared_ptr<const transport::PeerIdentity> peer);

}  // namespace meshrpc::security
