// BearerTokenAuthenticator (authenticator.h).
#include "meshrpc/security/authenticator.h"

#include <stdexcept>
#include <string>
#include <utility>

#include "meshrpc/core/method_name.h"
#include "pattern.h"

namespace meshrpc::security {
namespace {

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) {
      return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string scheme_for_message(std::string_view scheme) {
  // Enough to recognise "Basic" or "Digest"; a long word is more likely a bare token.
  constexpr size_t kShown = 16;
  return scheme.size() <= kShown ? std::string(scheme)
                                 : std::string(scheme.substr(0, kShown)) + "...";
}

std::multimap<std::string, std::string> claims_of(const TokenClaims& token) {
  std::multimap<std::string, std::string> claims = token.extra;
  claims.emplace("sub", token.subject);
  if (!token.issuer.empty()) claims.emplace("iss", token.issuer);
  if (!token.token_id.empty()) claims.emplace("jti", token.token_id);
  for (const auto& audience : token.audience) claims.emplace("aud", audience);
  return claims;
}

// The exempt list in canonical form, checked once: a bad pattern is a setup error.
AuthenticatorOptions canonical(AuthenticatorOptions options) {
  for (std::string& method : options.exempt_methods) {
    if (Status valid = detail::check_pattern(method, "exempt method"); !valid.ok()) {
      throw std::invalid_argument("BearerTokenAuthenticator: " + std::string(valid.message()));
    }
    if (method.back() != '*') method = core::canonical_method_name(method);
  }
  return options;
}

}  // namespace

std::shared_ptr<const Principal> certificate_principal(
    std::shared_ptr<const transport::PeerIdentity> peer) {
  auto principal = std::make_shared<Principal>();
  std::vector<std::string> names = peer->principals();
  principal->name = !names.empty() ? names.front() : "sha256:" + peer->sha256_fingerprint;
  principal->peer = std::move(peer);
  return principal;
}

BearerTokenAuthenticator::BearerTokenAuthenticator(AuthenticatorOptions options)
    : options_(canonical(std::move(options))) {}

Result<std::string_view> BearerTokenAuthenticator::bearer_token(std::string_view authorization) {
  const size_t space = authorization.find(' ');
  const std::string_view scheme = authorization.substr(0, space);
  if (space == std::string_view::npos || !equals_ignoring_case(scheme, "bearer")) {
    if (space == std::string_view::npos) {
      return unauthenticated_error("authorization is not 'Bearer <token>'");
    }
    return unauthenticated_error("authorization scheme '" + scheme_for_message(scheme) +
                                 "' is not supported; use Bearer");
  }
  std::string_view token = authorization.substr(space + 1);
  // RFC 9110 allows several spaces after the scheme; trailing white space is not the token's.
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  if (token.empty()) return unauthenticated_error("authorization has an empty bearer token");
  return token;
}

Result<std::shared_ptr<const Principal>> BearerTokenAuthenticator::identify(
    const std::string* authorization, std::shared_ptr<const transport::PeerIdentity> peer) const {
  if (authorization == nullptr) {
    if (peer != nullptr && options_.accept_client_certificate) {
      return certificate_principal(std::move(peer));
    }
    return std::shared_ptr<const Principal>();
  }
  Result<std::string_view> token = bearer_token(*authorization);
  if (!token.ok()) return token.status();
  return from_token(*token, std::move(peer));
}

Result<std::shared_ptr<const Principal>> BearerTokenAuthenticator::from_token(
    std::string_view token, std::shared_ptr<const transport::PeerIdentity> peer) const {
  auto principal = std::make_shared<Principal>();
  principal->peer = std::move(peer);
  if (options_.static_tokens != nullptr) {
    if (std::optional<std::string> name = options_.static_tokens->find(token)) {
      principal->name = "static:" + *name;
      return std::shared_ptr<const Principal>(std::move(principal));
    }
    // A JWT always has dots; a token without is a mistyped or revoked static one.
    if (options_.verifier == nullptr || token.find('.') == std::string_view::npos) {
      return unauthenticated_error("bearer token is not a known static token");
    }
  }
  if (options_.verifier == nullptr) {
    return unauthenticated_error("bearer tokens are not accepted here (no verifier configured)");
  }
  Result<TokenClaims> claims = options_.verifier->verify(token);
  if (!claims.ok()) return claims.status();
  if (claims->subject.empty()) return unauthenticated_error("token has no sub claim");
  principal->name = "token:" + claims->subject;
  principal->claims = claims_of(*claims);
  return std::shared_ptr<const Principal>(std::move(principal));
}

bool BearerTokenAuthenticator::is_exempt(std::string_view method) const {
  for (const std::string& pattern : options_.exempt_methods) {
    if (detail::matches_pattern(pattern, method)) return true;
  }
  return false;
}

Result<std::shared_ptr<const Principal>> BearerTokenAuthenticator::authenticate(
    const core::ServerContext& ctx) const {
  const std::string* authorization = nullptr;
  for (const auto& [key, value] : ctx.metadata()) {
    if (key != kAuthorizationKey) continue;
    // Two credentials are ambiguous (which one would a proxy have checked?): refuse both.
    if (authorization != nullptr) return unauthenticated_error("call has 2 authorization values");
    authorization = &value;
  }
  std::shared_ptr<const transport::PeerIdentity> peer = ctx.shared_peer_identity();
  Result<std::shared_ptr<const Principal>> principal = identify(authorization, std::move(peer));
  if (!principal.ok()) return principal;
  if (*principal == nullptr && !options_.allow_anonymous) {
    return unauthenticated_error("missing bearer token");
  }
  return principal;
}

awaitable<Status> BearerTokenAuthenticator::before_handler(core::ServerContext& ctx) {
  // Detached first in every case, so nothing attached by an earlier interceptor survives a
  // rejected or exempt call.
  detach_principal(ctx);
  if (is_exempt(ctx.method())) co_return Status();
  Result<std::shared_ptr<const Principal>> principal = authenticate(ctx);
  if (!principal.ok()) co_return principal.status().with_context("calling " + ctx.method());
  attach_principal(ctx, std::move(*principal));
  co_return Status();
}

void BearerTokenAuthenticator::after_handler(core::ServerContext& ctx, const Status& status,
                                             runtime::Duration elapsed) {
  (void)status, (void)elapsed;
  detach_principal(ctx);
}

}  // namespace meshrpc::security
