#include "meshrpc/security/static_tokens.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <string>
#include <utility>

namespace meshrpc::security {
namespace {

std::array<unsigned char, 32> digest_of(std::string_view token) {
  std::array<unsigned char, 32> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest.data());
  return digest;
}

}  // namespace

Status StaticTokens::add(std::string_view token, std::string name) {
  if (token.size() < kMinTokenBytes) {
    return invalid_argument_error("static token for '" + name + "' is " +
                                  std::to_string(token.size()) + " bytes; at least " +
                                  std::to_string(kMinTokenBytes) + " are required");
  }
  if (name.empty()) return invalid_argument_error("static token has an empty principal name");
  if (find(token)) return already_exists_error("static token for '" + name + "' is already in use");
  entries_.push_back(Entry{digest_of(token), std::move(name)});
  return Status();
}

std::optional<std::string> StaticTokens::find(std::string_view token) const {
  const auto digest = digest_of(token);
  const Entry* match = nullptr;
  for (const Entry& entry : entries_) {
    // No early exit: every entry is compared whatever matched before.
    const bool equal = CRYPTO_memcmp(entry.digest.data(), digest.data(), digest.size()) == 0;
    if (equal) match = &entry;
  }
  if (match == nullptr) return std::nullopt;
  return match->name;
}

}  // namespace meshrpc::security
