// Bearer tokens: JSON Web Tokens (RFC 7519) signed with HMAC-SHA256 (JWS "HS256", RFC 7515 and
// RFC 7518 section 3.2), in the compact form header.payload.signature with each part base64url
// without padding. Any JWT library mints tokens this verifier accepts, and reads the ones
// sign_token() mints:
//
//   auto signer = TokenSigner::create(key, "2025-06");           // key: >= 32 random bytes
//   std::string token = *signer->sign({.subject = "alice", .expires_at = now + 3600});
//
//   TokenVerifier verifier({.issuer = "auth.example.org"});
//   verifier.add_key("2025-06", key).ignore_error();             // checked at setup
//   Result<TokenClaims> claims = verifier.verify(token);         // UNAUTHENTICATED if bad
//
// Only HS256 is accepted: a header naming another algorithm ("none", or RS256/ES256 whose
// public key an attacker would have us use as an HMAC secret, the classic algorithm-confusion
// attack) is refused before any key is touched. Signatures are compared in constant time
// (CRYPTO_memcmp). Error messages name claims and times, never token or key bytes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "meshrpc/base/result.h"
#include "meshrpc/base/status.h"

namespace meshrpc::security {

// HS256 keys are at least 32 bytes: RFC 7518 section 3.2 requires a key as long as the hash
// output, since a shorter one is the weakest link of the signature.
inline constexpr size_t kMinKeyBytes = 32;

// The claims of a token: the registered ones (RFC 7519 section 4.1) as fields, the rest in
// `extra`. Times are unix seconds (NumericDate).
// Every member has an initializer, so designated initializers name only what they set.
struct TokenClaims {
  std::string subject{};                // "sub": whom the token names; the principal
  std::string issuer{};                 // "iss"; empty when absent
  std::vector<std::string> audience{};  // "aud": one string or an array of them
  std::optional<int64_t> expires_at{};  // "exp": not valid at or after this time
  std::optional<int64_t> not_before{};  // "nbf": not valid before this time
  std::optional<int64_t> issued_at{};   // "iat"
  std::string token_id{};               // "jti"; empty when absent
  // Every other claim. A string is kept as is; a number or boolean as its JSON text ("3",
  // "true"); an array of those gives one entry per element (so "roles":["a","b"] is two
  // entries of key "roles"). Objects and nested arrays are left out: no rule matches them.
  // Signing writes a key with one value as a string and a key with several as an array.
  std::multimap<std::string, std::string> extra{};
  // The header's "kid" (verification fills it in; signing uses the signer's).
  std::string key_id{};

  // The first value of `key` in `extra`, or nullptr.
  const std::string* find(std::string_view key) const;
};

// Mints HS256 tokens with one key. Immutable: share freely across threads.
class TokenSigner {
 public:
  // INVALID_ARGUMENT when `key` is shorter than kMinKeyBytes. `key_id` goes in the header's
  // "kid" (omitted when empty), so verifiers holding several keys pick this one.
  static Result<TokenSigner> create(std::string key, std::string key_id = "");

  // The compact token: header {"alg":"HS256","typ":"JWT"[,"kid":...]}, then the claims.
  // INVALID_ARGUMENT when `extra` repeats a registered claim name (sub, iss, aud, exp, nbf,
  // iat, jti): it would make two claims of one name.
  Result<std::string> sign(const TokenClaims& claims) const;

 private:
  TokenSigner(std::string key, std::string key_id)
      : key_(std::move(key)), key_id_(std::move(key_id)) {}
  std::string key_;
  std::string key_id_;
};

// TokenSigner::create(key, key_id) then sign(claims), for tests and tools.
Result<std::string> sign_token(const TokenClaims& claims, std::string_view key,
                               std::string_view key_id = "");

// Unix seconds now. What TokenVerifierOptions::clock defaults to.
int64_t system_unix_seconds();

// Every member has an initializer, so designated initializers name only what they set.
struct TokenVerifierOptions {
  // When not empty, a token's "iss" must equal it.
  std::string issuer{};
  // When not empty, a token's "aud" must contain it (RFC 7519 4.1.3: a service refuses
  // tokens meant for another).
  std::string audience{};
  // Tolerance for exp, nbf and iat. 30 s: issuer and server clocks kept by NTP differ by well
  // under a second, but VMs resuming from pause or hosts with a broken NTP drift by seconds;
  // 30 s absorbs that while an expired token stays usable for at most 30 s more.
  std::chrono::seconds leeway{30};
  // A token without "exp" never expires: a leaked one is valid forever. Refused unless this
  // is false (for long-lived service tokens that are revoked by rotating their key).
  bool require_expiry = true;
  // Longer tokens are refused before any decoding. 8 KiB: common proxies cap a header line
  // there (nginx's large_client_header_buffers), real tokens with dozens of claims are under
  // 2 KiB, and it bounds the work an unauthenticated caller can make us do.
  size_t max_token_bytes = 8 << 10;
  // Unix seconds now; null means system_unix_seconds(). Tests inject a fixed time.
  std::function<int64_t()> clock{};
};

// Verifies HS256 tokens against a set of keys named by key id ("kid"), so keys rotate without
// downtime: add the new key, let issuers switch, remove the old key after the longest token
// lifetime.
//
// Which key checks a token: its header's "kid" names exactly one key (an unknown kid is
// refused; it never falls back to the others). A token without "kid" is tried against every
// key, so issuers that set no kid keep working across a rotation; kMaxKeys bounds that work.
//
// Threading: verify() from any number of threads; add_key()/remove_key() may run concurrently
// with them (a reader-writer lock, held only to pick keys, not while hashing).
class TokenVerifier {
 public:
  // Rotation needs two or three keys at once; 16 leaves room and bounds the HMACs a kid-less
  // token costs.
  static constexpr size_t kMaxKeys = 16;

  explicit TokenVerifier(TokenVerifierOptions options = {});

  // INVALID_ARGUMENT when `key` is shorter than kMinKeyBytes; ALREADY_EXISTS when `key_id` is
  // taken; RESOURCE_EXHAUSTED past kMaxKeys. An empty key_id is a valid name (for tokens of
  // an issuer that sets none, though those are tried against every key anyway).
  Status add_key(std::string key_id, std::string key);
  // NOT_FOUND when no key has that id.
  Status remove_key(std::string_view key_id);
  size_t key_count() const;

  // The token's claims, or UNAUTHENTICATED saying why not: malformed (not three base64url
  // parts of JSON objects), oversize, an algorithm other than HS256, a "crit" header, an
  // unknown kid, a bad signature, expired, not yet valid, issued in the future, wrong issuer
  // or audience, or no exp while require_expiry.
  Result<TokenClaims> verify(std::string_view token) const;

  const TokenVerifierOptions& options() const { return options_; }

 private:
  struct Key {
    std::string id;
    std::string secret;
  };
  // The keys the header's kid selects (shared_ptr copies: the lock is not held while hashing).
  Result<std::vector<std::shared_ptr<const Key>>> keys_for(const std::string* key_id) const;
  Status check_times(const TokenClaims& claims) const;
  Status check_issuer_and_audience(const TokenClaims& claims) const;

  const TokenVerifierOptions options_;
  mutable std::shared_mutex mutex_;
  std::vector<std::shared_ptr<const Key>> keys_;  // guarded by mutex_
};

}  // namespace meshrpc::security
