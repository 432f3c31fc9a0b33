// Principal: who made a call, as authentication established it, and where handlers and later
// interceptors find it (principal_of).
//
//   awaitable<Result<Reply>> handle(core::ServerContext& ctx, const Req& req) {
//     const security::Principal* who = security::principal_of(ctx);  // null: anonymous
//     ...
//   }
//
// An authenticator (BearerTokenAuthenticator, or one of your own) attaches the principal in
// before_handler and detaches it in after_handler; it is readable in between, from the
// handler's coroutine and from a blocking handler's worker thread.
//
// The principal lives in the call's ServerContext (ServerContext::principal_slot), so it goes
// with the call and nothing outlives it.
//
// Threading: the call's own (its interceptors and handler run one after another). Lifetime:
// the pointer principal_of returns stays valid until the principal is replaced or detached,
// or the context is gone.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "meshrpc/core/server_context.h"
#include "meshrpc/transport/peer_identity.h"

namespace meshrpc::security {

struct Principal {
  // How the caller proved who it is: "token:<sub>" (a JWT), "static:<name>" (a StaticTokens
  // entry), or, by a client certificate alone, the certificate's first name in
  // PeerIdentity::principals() order ("cn:kv-1", else "dns:...", "uri:...").
  std::string name{};
  // A JWT's claims as strings: sub, iss, jti, each aud, and every TokenClaims::extra entry.
  // Empty for static tokens and certificates.
  std::multimap<std::string, std::string> claims{};
  // The connection's verified client certificate, when it has one (with a token too).
  std::shared_ptr<const transport::PeerIdentity> peer{};

  // Every name an access rule's principal pattern is matched against: `name`, then the
  // certificate's principals() and "sha256:<fingerprint>" (pins one certificate).
  std::vector<std::string> names() const;
  // True if `claims` holds `key` with value `value`.
  bool has_claim(std::string_view key, std::string_view value) const;
};

// The principal attached to the call, or null (not authenticated, anonymous or exempt).
const Principal* principal_of(const core::ServerContext& ctx);

// Attaches `principal` to the call (replacing any attached before); null detaches.
void attach_principal(core::ServerContext& ctx, std::shared_ptr<const Principal> principal);
// Detaches the call's principal; what attached it calls this in after_handler.
void detach_principal(core::ServerContext& ctx);

}  // namespace meshrpc::security
