#include "meshrpc/security/page_guard.h"

#include <stdexcept>
#include <string>
#include <utility>

namespace meshrpc::security {

PageAccess page_guard(std::shared_ptr<const BearerTokenAuthenticator> authenticator,
                      std::shared_ptr<const AccessPolicy> policy) {
  if (authenticator == nullptr || policy == nullptr) {
    throw std::invalid_argument("page_guard: authenticator and policy must not be null");
  }
  return [authenticator = std::move(authenticator),
          policy = std::move(policy)](const observe::HttpRequest& request) -> Status {
    auto header = request.headers.find(std::string(kAuthorizationKey));
    const std::string* authorization = header == request.headers.end() ? nullptr : &header->second;
    Result<std::shared_ptr<const Principal>> principal =
        authenticator->identify(authorization, request.peer_identity);
    if (!principal.ok()) return principal.status().with_context("opening " + request.path);
    return policy->check(page_resource(request.path), principal->get());
  };
}

PageAccess page_guard(std::shared_ptr<const TokenVerifier> verifier,
                      std::shared_ptr<const AccessPolicy> policy) {
  if (verifier == nullptr) throw std::invalid_argument("page_guard: verifier must not be null");
  AuthenticatorOptions options;
  options.verifier = std::move(verifier);
  return page_guard(std::make_shared<const BearerTokenAuthenticator>(std::move(options)),
                    std::move(policy));
}

}  // namespace meshrpc::security
