// HS256 JWT signing and verification (token.h).
#include "meshrpc/security/token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <climits>
#include <cmath>
#include <mutex>
#include <string>
#include <utility>

#include "meshrpc/base/status_macros.h"
#include "meshrpc/runtime/clock.h"
#include "meshrpc/security/base64url.h"

namespace meshrpc::security {
namespace {

namespace json = boost::json;

constexpr std::string_view kAlgorithm = "HS256";
constexpr size_t kSignatureBytes = 32;  // SHA-256 output

constexpr std::array<std::string_view, 7> kRegisteredClaims = {"sub", "iss", "aud", "exp",
                                                               "nbf", "iat", "jti"};

bool is_registered(std::string_view name) {
  return std::find(kRegisteredClaims.begin(), kRegisteredClaims.end(), name) !=
         kRegisteredClaims.end();
}

Status check_key(std::string_view key) {
  if (key.size() >= kMinKeyBytes) return Status();
  return invalid_argument_error("HS256 key is " + std::to_string(key.size()) + " bytes; at least " +
                                std::to_string(kMinKeyBytes) + " are required (RFC 7518 3.2)");
}

// HMAC-SHA256 of `input` under `key`; empty only if OpenSSL fails (allocation).
std::string hmac_sha256(std::string_view key, std::string_view input) {
  std::string mac(EVP_MAX_MD_SIZE, '\0');
  unsigned int length = 0;
  if (key.size() > INT_MAX ||
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(input.data()), input.size(),
           reinterpret_cast<unsigned char*>(mac.data()), &length) == nullptr) {
    return {};
  }
  mac.resize(length);
  return mac;
}

Status malformed(std::string_view why) {
  return unauthenticated_error("malformed token: " + std::string(why));
}

// The JSON object a base64url part holds.
Result<json::object> decode_part(std::string_view part, std::string_view name) {
  std::optional<std::string> text = base64url_decode(part);
  if (!text) return malformed(std::string(name) + " is not base64url without padding");
  json::error_code ec;
  json::value value = json::parse(*text, ec);
  if (ec) return malformed(std::string(name) + " is not JSON: " + ec.message());
  if (!value.is_object()) return malformed(std::string(name) + " is not a JSON object");
  return std::move(value.as_object());
}

// A NumericDate: a JSON number of seconds (RFC 7519 allows fractions; they are dropped).
Result<std::optional<int64_t>> numeric_date(const json::object& claims, std::string_view name) {
  const json::value* value = claims.if_contains(name);
  if (value == nullptr) return std::optional<int64_t>();
  if (value->is_int64()) return std::optional<int64_t>(value->get_int64());
  if (value->is_uint64() && value->get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return std::optional<int64_t>(static_cast<int64_t>(value->get_uint64()));
  }
  // 2^62 seconds is far past any real date and keeps the double to int64 cast defined.
  if (value->is_double() && std::isfinite(value->get_double()) &&
      std::fabs(value->get_double()) < 4.6e18) {
    return std::optional<int64_t>(static_cast<int64_t>(std::floor(value->get_double())));
  }
  return malformed("claim " + std::string(name) + " is not a number of seconds");
}

Status string_claim(const json::object& claims, std::string_view name, std::string& out) {
  const json::value* value = claims.if_contains(name);
  if (value == nullptr) return Status();
  if (!value->is_string()) return malformed("claim " + std::string(name) + " is not a string");
  out = value->as_string();
  return Status();
}

// A scalar's text for TokenClaims::extra; nullopt for objects, arrays and null.
std::optional<std::string> scalar_text(const json::value& value) {
  if (value.is_string()) return std::string(value.as_string());
  if (value.is_number() || value.is_bool()) return json::serialize(value);
  return std::nullopt;
}

Result<TokenClaims> claims_from_json(const json::object& object) {
  TokenClaims claims;
  MESHRPC_RETURN_IF_ERROR(string_claim(object, "sub", claims.subject));
  MESHRPC_RETURN_IF_ERROR(string_claim(object, "iss", claims.issuer));
  MESHRPC_RETURN_IF_ERROR(string_claim(object, "jti", claims.token_id));
  if (const json::value* aud = object.if_contains("aud")) {
    if (aud->is_string()) {
      claims.audience.emplace_back(aud->as_string());
    } else if (aud->is_array()) {
      for (const json::value& entry : aud->as_array()) {
        if (!entry.is_string()) return malformed("claim aud holds a non-string");
        claims.audience.emplace_back(entry.as_string());
      }
    } else {
      return malformed("claim aud is neither a string nor an array of strings");
    }
  }
  MESHRPC_ASSIGN_OR_RETURN(claims.expires_at, numeric_date(object, "exp"));
  MESHRPC_ASSIGN_OR_RETURN(claims.not_before, numeric_date(object, "nbf"));
  MESHRPC_ASSIGN_OR_RETURN(claims.issued_at, numeric_date(object, "iat"));
  for (const auto& [key, value] : object) {
    if (is_registered(key)) continue;
    if (value.is_array()) {
      for (const json::value& entry : value.as_array()) {
        if (auto text = scalar_text(entry))
          claims.extra.emplace(std::string(key), std::move(*text));
      }
    } else if (auto text = scalar_text(value)) {
      claims.extra.emplace(std::string(key), std::move(*text));
    }
  }
  return claims;
}

json::object claims_to_json(const TokenClaims& claims) {
  json::object object;
  if (!claims.issuer.empty()) object["iss"] = claims.issuer;
  if (!claims.subject.empty()) object["sub"] = claims.subject;
  if (claims.audience.size() == 1) {
    object["aud"] = claims.audience.front();
  } else if (!claims.audience.empty()) {
    json::array audience;
    for (const auto& entry : claims.audience) audience.emplace_back(entry);
    object["aud"] = std::move(audience);
  }
  if (claims.expires_at) object["exp"] = *claims.expires_at;
  if (claims.not_before) object["nbf"] = *claims.not_before;
  if (claims.issued_at) object["iat"] = *claims.issued_at;
  if (!claims.token_id.empty()) object["jti"] = claims.token_id;
  for (auto it = claims.extra.begin(); it != claims.extra.end();) {
    auto [first, last] = claims.extra.equal_range(it->first);
    if (std::next(first) == last) {
      object[first->first] = first->second;
    } else {
      json::array values;
      for (auto entry = first; entry != last; ++entry) values.emplace_back(entry->second);
      object[first->first] = std::move(values);
    }
    it = last;
  }
  return object;
}

}  // namespace

const std::string* TokenClaims::find(std::string_view key) const {
  auto found = extra.find(std::string(key));
  return found == extra.end() ? nullptr : &found->second;
}

// --- signing --------------------------------------------------------------------------------

Result<TokenSigner> TokenSigner::create(std::string key, std::string key_id) {
  MESHRPC_RETURN_IF_ERROR(check_key(key));
  return TokenSigner(std::move(key), std::move(key_id));
}

Result<std::string> TokenSigner::sign(const TokenClaims& claims) const {
  for (const auto& [name, value] : claims.extra) {
    if (is_registered(name)) {
      return invalid_argument_error("extra claim '" + name +
                                    "' is a registered claim; set its TokenClaims field instead");
    }
  }
  json::object header;
  header["alg"] = kAlgorithm;
  header["typ"] = "JWT";
  if (!key_id_.empty()) header["kid"] = key_id_;
  std::string token = base64url_encode(json::serialize(header)) + "." +
                      base64url_encode(json::serialize(claims_to_json(claims)));
  const std::string mac = hmac_sha256(key_, token);
  if (mac.size() != kSignatureBytes) return internal_error("OpenSSL HMAC-SHA256 failed");
  token += "." + base64url_encode(mac);
  return token;
}

Result<std::string> sign_token(const TokenClaims& claims, std::string_view key,
                               std::string_view key_id) {
  MESHRPC_ASSIGN_OR_RETURN(TokenSigner signer,
                           TokenSigner::create(std::string(key), std::string(key_id)));
  return signer.sign(claims);
}

int64_t system_unix_seconds() {
  // Token times are calendar times (Env's clock is monotonic), so the default comes from the
  // system's calendar clock, read in runtime/ as every clock is.
  return runtime::unix_seconds_now();
}

// --- verification ---------------------------------------------------------------------------

TokenVerifier::TokenVerifier(TokenVerifierOptions options) : options_(std::move(options)) {}

Status TokenVerifier::add_key(std::string key_id, std::string key) {
  MESHRPC_RETURN_IF_ERROR(check_key(key).with_context("key '" + key_id + "'"));
  std::unique_lock lock(mutex_);
  for (const auto& existing : keys_) {
    if (existing->id == key_id) return already_exists_error("key id '" + key_id + "' is taken");
  }
  if (keys_.size() >= kMaxKeys) {
    return resource_exhausted_error("verifier holds " + std::to_string(keys_.size()) +
                                    " keys, kMaxKeys; remove a retired key first");
  }
  keys_.push_back(std::make_shared<const Key>(Key{std::move(key_id), std::move(key)}));
  return Status();
}

Status TokenVerifier::remove_key(std::string_view key_id) {
  std::unique_lock lock(mutex_);
  auto found =
      std::find_if(keys_.begin(), keys_.end(), [&](const auto& key) { return key->id == key_id; });
  if (found == keys_.end()) return not_found_error("no key with id '" + std::string(key_id) + "'");
  keys_.erase(found);
  return Status();
}

size_t TokenVerifier::key_count() const {
  std::shared_lock lock(mutex_);
  return keys_.size();
}

Result<std::vector<std::shared_ptr<const TokenVerifier::Key>>> TokenVerifier::keys_for(
    const std::string* key_id) const {
  std::shared_lock lock(mutex_);
  if (keys_.empty()) return unauthenticated_error("token verifier has no keys");
  if (key_id == nullptr) return keys_;
  for (const auto& key : keys_) {
    if (key->id == *key_id) return std::vector<std::shared_ptr<const Key>>{key};
  }
  return unauthenticated_error("token key id '" + *key_id + "' is unknown");
}

Result<TokenClaims> TokenVerifier::verify(std::string_view token) const {
  if (token.size() > options_.max_token_bytes) {
    return unauthenticated_error("token is " + std::to_string(token.size()) +
                                 " bytes; max_token_bytes is " +
                                 std::to_string(options_.max_token_bytes));
  }
  const size_t first_dot = token.find('.');
  const size_t second_dot =
      first_dot == std::string_view::npos ? first_dot : token.find('.', first_dot + 1);
  if (second_dot == std::string_view::npos || token.find('.', second_dot + 1) != token.npos) {
    const auto parts = std::count(token.begin(), token.end(), '.') + 1;
    return malformed(std::to_string(parts) +
                     " dot-separated parts; a signed JWT (JWS compact form) has 3");
  }
  const std::string_view signing_input = token.substr(0, second_dot);
  MESHRPC_ASSIGN_OR_RETURN(json::object header, decode_part(token.substr(0, first_dot), "header"));

  // The algorithm is checked before any key is used: the header is the attacker's.
  const json::value* alg = header.if_contains("alg");
  if (alg == nullptr || !alg->is_string()) return malformed("header has no alg");
  if (alg->as_string() != kAlgorithm) {
    return unauthenticated_error("token alg '" + std::string(alg->as_string()) +
                                 "' is not accepted; only HS256 is");
  }
  // RFC 7515 4.1.11: extensions listed in "crit" must be understood; this verifier knows none.
  if (header.contains("crit")) return unauthenticated_error("token header has crit extensions");
  std::string key_id_text;
  const std::string* key_id = nullptr;
  if (const json::value* kid = header.if_contains("kid")) {
    if (!kid->is_string()) return malformed("header kid is not a string");
    key_id_text = kid->as_string();
    key_id = &key_id_text;
  }

  std::optional<std::string> signature = base64url_decode(token.substr(second_dot + 1));
  if (!signature) return malformed("signature is not base64url without padding");
  if (signature->size() != kSignatureBytes) {
    return unauthenticated_error("token signature is " + std::to_string(signature->size()) +
                                 " bytes; HS256 signatures are 32");
  }
  MESHRPC_ASSIGN_OR_RETURN(auto keys, keys_for(key_id));
  bool verified = false;
  for (const auto& key : keys) {
    const std::string mac = hmac_sha256(key->secret, signing_input);
    if (mac.size() != kSignatureBytes) return internal_error("OpenSSL HMAC-SHA256 failed");
    verified |= CRYPTO_memcmp(mac.data(), signature->data(), kSignatureBytes) == 0;
  }
  if (!verified) return unauthenticated_error("token signature does not verify");

  // Only now, signed by us, is the payload parsed.
  MESHRPC_ASSIGN_OR_RETURN(
      json::object payload,
      decode_part(token.substr(first_dot + 1, second_dot - first_dot - 1), "payload"));
  MESHRPC_ASSIGN_OR_RETURN(TokenClaims claims, claims_from_json(payload));
  claims.key_id = std::move(key_id_text);
  MESHRPC_RETURN_IF_ERROR(check_times(claims));
  MESHRPC_RETURN_IF_ERROR(check_issuer_and_audience(claims));
  return claims;
}

Status TokenVerifier::check_times(const TokenClaims& claims) const {
  const int64_t now = options_.clock ? options_.clock() : system_unix_seconds();
  const int64_t leeway = options_.leeway.count();
  const std::string now_text = ", now " + std::to_string(now);
  if (!claims.expires_at) {
    if (options_.require_expiry) return unauthenticated_error("token has no exp claim");
  } else if (now - leeway >= *claims.expires_at) {
    return unauthenticated_error("token expired at " + std::to_string(*claims.expires_at) +
                                 now_text);
  }
  if (claims.not_before && now + leeway < *claims.not_before) {
    return unauthenticated_error("token not valid before " + std::to_string(*claims.not_before) +
                                 now_text);
  }
  if (claims.issued_at && now + leeway < *claims.issued_at) {
    return unauthenticated_error("token issued at " + std::to_string(*claims.issued_at) +
                                 ", in the future" + now_text);
  }
  return Status();
}

Status TokenVerifier::check_issuer_and_audience(const TokenClaims& claims) const {
  if (!options_.issuer.empty() && claims.issuer != options_.issuer) {
    return unauthenticated_error(
        (claims.issuer.empty() ? "token has no issuer" : "token issuer '" + claims.issuer + "'") +
        "; '" + options_.issuer + "' is required");
  }
  if (!options_.audience.empty() && std::find(claims.audience.begin(), claims.audience.end(),
                                              options_.audience) == claims.audience.end()) {
    return unauthenticated_error("token is not meant for audience '" + options_.audience + "'" +
                                 (claims.audience.empty() ? " (it names none)" : ""));
  }
  return Status();
}

}  // namespace meshrpc::security
