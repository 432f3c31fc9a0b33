#include "meshrpc/security/principal.h"

#include <utility>

namespace meshrpc::security {

std::vector<std::string> Principal::names() const {
  std::vector<std::string> out;
  if (!name.empty()) out.push_back(name);
  if (peer != nullptr) {
    for (std::string& entry : peer->principals()) {
      if (entry != name) out.push_back(std::move(entry));
    }
    if (!peer->sha256_fingerprint.empty()) out.push_back("sha256:" + peer->sha256_fingerprint);
  }
  return out;
}

bool Principal::has_claim(std::string_view key, std::string_view value) const {
  auto [first, last] = claims.equal_range(std::string(key));
  for (auto it = first; it != last; ++it) {
    if (it->second == value) return true;
  }
  return false;
}

const Principal* principal_of(const core::ServerContext& ctx) {
  // Only this file writes the slot, and only with a Principal.
  return static_cast<const Principal*>(ctx.principal_slot().get());
}

void attach_principal(core::ServerContext& ctx, std::shared_ptr<const Principal> principal) {
  ctx.set_principal_slot(std::move(principal));
}

void detach_principal(core::ServerContext& ctx) { ctx.set_principal_slot(nullptr); }

}  // namespace meshrpc::security
