// page_guard: access control for the HTTP pages of observe::HttpService (/metrics, /status,
// /rpcz, /services, pages added with add_page), as HttpService::Options::page_access:
//
//   auto policy = security::AccessPolicy::create({
//       {.resource = "page:/metrics", .allow = {"token:prometheus", "claim:role=ops"}},
//       {.resource = "page:*", .allow = {"claim:role=ops"}}}).value();
//   observe::HttpService::Options options;
//   options.page_access = security::page_guard(authenticator, std::make_shared<...>(policy));
//
// Each request is authenticated as a call would be (the Authorization header, "Bearer
// <token>", and the connection's client certificate; BearerTokenAuthenticator::identify) and
// checked as resource "page:<path>" (page_resource). A request without credentials is
// anonymous and the policy decides: a page whose rule says "anyone" opens, another answers 401
// with WWW-Authenticate: Bearer; a bad token answers 401 whatever the page; a known principal
// the policy refuses gets 403. The gateway and /health never ask the guard (http_service.h).
// Every other path is checked, unknown ones too (so probing for pages reveals nothing to a
// caller the policy refuses). The status page is two paths, /status and its data /status.json:
// "page:/status*" covers both.
//
// Threading: the guard is called on connections' executors, concurrently; it only reads the
// immutable authenticator and policy it holds.
#pragma once

#include <functional>
#include <memory>

#include "meshrpc/base/status.h"
#include "meshrpc/observe/http_service.h"
#include "meshrpc/security/authenticator.h"
#include "meshrpc/security/authorization.h"
#include "meshrpc/security/token.h"

namespace meshrpc::security {

using PageAccess = std::function<Status(const observe::HttpRequest&)>;

// Throws std::invalid_argument (a setup error) when either argument is null.
PageAccess page_guard(std::shared_ptr<const BearerTokenAuthenticator> authenticator,
                      std::shared_ptr<const AccessPolicy> policy);
// The same with an authenticator accepting JWTs from `verifier` and client certificates.
PageAccess page_guard(std::shared_ptr<const TokenVerifier> verifier,
                      std::shared_ptr<const AccessPolicy> policy);

}  // namespace meshrpc::security
