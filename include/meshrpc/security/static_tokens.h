// StaticTokens: a fixed table of opaque bearer tokens, each naming a principal, for setups
// without a token issuer (an operator's token for the status pages, one token per client
// service). Tokens are secrets chosen like keys: long and random.
//
// Lookup is constant-time: a presented token is hashed (SHA-256) and compared with every
// entry's hash with CRYPTO_memcmp, without stopping at a match, so timing tells neither a
// prefix nor which entry matched. Only the hashes are kept.
//
// Threading: add() before sharing; then find() from any number of threads (immutable).
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "meshrpc/base/status.h"

namespace meshrpc::security {

class StaticTokens {
 public:
  // A static token is a password-like secret: 16 bytes (128 bits when random, e.g. 22
  // base64 characters of `openssl rand`) is the least that cannot be guessed online.
  static constexpr size_t kMinTokenBytes = 16;

  // Maps `token` to principal `name` ("static:<name>" in rules). INVALID_ARGUMENT when the
  // token is shorter than kMinTokenBytes or the name is empty; ALREADY_EXISTS for a token
  // already in the table.
  Status add(std::string_view token, std::string name);

  // The principal name of `token` ("ci", not "static:ci"), or nullopt.
  std::optional<std::string> find(std::string_view token) const;

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::array<unsigned char, 32> digest;
    std::string name;
  };
  std::vector<Entry> entries_;
};

}  // namespace meshrpc::security
