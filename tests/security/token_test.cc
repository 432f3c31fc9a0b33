// HS256 JWTs: interoperability with RFC 7515's example and an independently computed token,
// round trips, every rejection the verifier promises, key rotation by kid, static tokens and
// the strict base64url underneath.
#include "meshrpc/security/token.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/security/base64url.h"
#include "meshrpc/security/static_tokens.h"

namespace meshrpc::security {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr int64_t kNow = 1'790'000'000;
const std::string kKey = "0123456789abcdef0123456789abcdef";  // 32 bytes
const std::string kOtherKey = "fedcba9876543210fedcba9876543210";

// A token with exactly this header and payload JSON, HMAC-signed with `key`: what an attacker
// or a foreign library could send.
std::string craft(std::string_view header, std::string_view payload, std::string_view key) {
  const std::string input = base64url_encode(header) + "." + base64url_encode(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &length);
  return input + "." + base64url_encode(std::string_view(reinterpret_cast<char*>(mac), length));
}

constexpr char kHs256Header[] = R"({"alg":"HS256","typ":"JWT"})";

TokenVerifierOptions options_at(int64_t now) {
  TokenVerifierOptions options;
  options.clock = [now] { return now; };
  return options;
}

// Not movable (it holds a lock): handed out on the heap.
std::unique_ptr<TokenVerifier> verifier_with(TokenVerifierOptions options,
                                             const std::string& key = kKey) {
  auto verifier = std::make_unique<TokenVerifier>(std::move(options));
  EXPECT_THAT(verifier->add_key("k1", key), IsOk());
  return verifier;
}

TokenClaims alice(int64_t expires_at = kNow + 3600) {
  TokenClaims claims;
  claims.subject = "alice";
  claims.expires_at = expires_at;
  return claims;
}

// --- interoperability -----------------------------------------------------------------------

TEST(TokenInterop, VerifiesTheRfc7515AppendixA1Example) {
  // RFC 7515 A.1: an HS256 JWS from the specification, key given as a JWK "k".
  const std::string token =
      "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
      "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl"
      "fQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  std::optional<std::string> key = base64url_decode(
      "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow");
  ASSERT_TRUE(key.has_value());
  auto verifier = verifier_with(options_at(1'300'819'000), *key);
  Result<TokenClaims> claims = verifier->verify(token);
  ASSERT_THAT(claims, IsOk());
  EXPECT_EQ(claims->issuer, "joe");
  EXPECT_EQ(claims->expires_at, 1'300'819'380);
  EXPECT_THAT(claims->extra, ElementsAre(Pair("http://example.com/is_root", "true")));
}

TEST(TokenInterop, SignsExactlyWhatAnIndependentImplementationSigns) {
  // Computed with Python's base64 and hmac modules from the same header and claims.
  const std::string expected =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0."
      "eyJpc3MiOiJhdXRoLmV4YW1wbGUub3JnIiwic3ViIjoiYWxpY2UiLCJhdWQiOiJrdiIsImV4cCI6MTc5MDAwMDAwMCwi"
      "aWF0IjoxNzg5OTk2NDAwLCJyb2xlIjoiYWRtaW4ifQ.7FeO6KBUG6xQgtWU0zVEfxv6ooj9M_uIJ-7sLvOQ6oQ";
  TokenClaims claims;
  claims.issuer = "auth.example.org";
  claims.subject = "alice";
  claims.audience = {"kv"};
  claims.expires_at = 1'790'000'000;
  claims.issued_at = 1'789'996'400;
  claims.extra.emplace("role", "admin");
  EXPECT_THAT(sign_token(claims, kKey, "k1"), ::meshrpc::testing::IsOkAndHolds(expected));
}

// --- round trip -----------------------------------------------------------------------------

TEST(TokenVerifier, SignedTokenRoundTripsEveryClaim) {
  TokenClaims claims = alice();
  claims.issuer = "auth";
  claims.audience = {"kv", "web"};
  claims.not_before = kNow - 10;
  claims.issued_at = kNow - 10;
  claims.token_id = "t-1";
  claims.extra.emplace("tenant", "acme");
  claims.extra.emplace("roles", "reader");
  claims.extra.emplace("roles", "writer");
  Result<std::string> token = sign_token(claims, kKey, "k1");
  ASSERT_THAT(token, IsOk());

  Result<TokenClaims> verified = verifier_with(options_at(kNow))->verify(*token);
  ASSERT_THAT(verified, IsOk());
  EXPECT_EQ(verified->subject, "alice");
  EXPECT_EQ(verified->issuer, "auth");
  EXPECT_THAT(verified->audience, ElementsAre("kv", "web"));
  EXPECT_EQ(verified->expires_at, kNow + 3600);
  EXPECT_EQ(verified->not_before, kNow - 10);
  EXPECT_EQ(verified->issued_at, kNow - 10);
  EXPECT_EQ(verified->token_id, "t-1");
  EXPECT_EQ(verified->key_id, "k1");
  EXPECT_THAT(verified->extra, ElementsAre(Pair("roles", "reader"), Pair("roles", "writer"),
                                           Pair("tenant", "acme")));
  ASSERT_NE(verified->find("tenant"), nullptr);
  EXPECT_EQ(*verified->find("tenant"), "acme");
}

TEST(TokenVerifier, NonStringClaimsBecomeTheirJsonTextAndObjectsAreLeftOut) {
  const std::string token = craft(
      kHs256Header,
      R"({"sub":"a","exp":1790003600,"level":3,"ok":false,"groups":["x",2],"nested":{"a":1}})",
      kKey);
  Result<TokenClaims> claims = verifier_with(options_at(kNow))->verify(token);
  ASSERT_THAT(claims, IsOk());
  EXPECT_THAT(claims->extra, ElementsAre(Pair("groups", "x"), Pair("groups", "2"),
                                         Pair("level", "3"), Pair("ok", "false")));
}

TEST(TokenSigner, RefusesARegisteredClaimNameInExtra) {
  TokenClaims claims = alice();
  claims.extra.emplace("exp", "never");
  EXPECT_THAT(sign_token(claims, kKey), StatusIs(StatusCode::kInvalidArgument, HasSubstr("exp")));
}

// --- algorithm confusion --------------------------------------------------------------------

TEST(TokenVerifier, RejectsAlgNone) {
  const std::string payload = R"({"sub":"mallory","exp":1790003600})";
  const std::string unsigned_token =
      base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." + base64url_encode(payload) + ".";
  EXPECT_THAT(verifier_with(options_at(kNow))->verify(unsigned_token),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("alg 'none' is not accepted")));
}

TEST(TokenVerifier, RejectsRs256EvenWhenHmacSignedWithTheVerifierKey) {
  // The classic confusion: an RS256 header whose "public key" the attacker hopes we use as an
  // HMAC secret. Even a correct HMAC must not be accepted under another alg.
  const std::string token =
      craft(R"({"alg":"RS256","typ":"JWT"})", R"({"sub":"mallory","exp":1790003600})", kKey);
  EXPECT_THAT(verifier_with(options_at(kNow))->verify(token),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("alg 'RS256' is not accepted")));
  const std::string es256 =
      craft(R"({"alg":"ES256"})", R"({"sub":"mallory","exp":1790003600})", kKey);
  EXPECT_THAT(verifier_with(options_at(kNow))->verify(es256),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("ES256")));
}

TEST(TokenVerifier, RejectsLowercaseAlgAndMissingAlg) {
  auto verifier = verifier_with(options_at(kNow));
  EXPECT_THAT(
      verifier->verify(craft(R"({"alg":"hs256"})", R"({"sub":"a","exp":1790003600})", kKey)),
      StatusIs(StatusCode::kUnauthenticated, HasSubstr("'hs256'")));
  EXPECT_THAT(verifier->verify(craft(R"({"typ":"JWT"})", R"({"sub":"a","exp":1790003600})", kKey)),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("no alg")));
}

TEST(TokenVerifier, RejectsCriticalHeaderExtensions) {
  const std::string token =
      craft(R"({"alg":"HS256","crit":["exp"],"exp":1})", R"({"sub":"a","exp":1790003600})", kKey);
  EXPECT_THAT(verifier_with(options_at(kNow))->verify(token),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("crit")));
}

// --- signatures -----------------------------------------------------------------------------

TEST(TokenVerifier, RejectsATamperedPayload) {
  Result<std::string> token = sign_token(alice(), kKey);
  ASSERT_THAT(token, IsOk());
  const size_t first = token->find('.');
  const size_t second = token->find('.', first + 1);
  const std::string forged = token->substr(0, first + 1) +
                             base64url_encode(R"({"sub":"admin","exp":1790003600})") +
                             token->substr(second);
  EXPECT_THAT(verifier_with(options_at(kNow))->verify(forged),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("signature does not verify")));
}

TEST(TokenVerifier, RejectsATokenSignedWithAnotherKey) {
  Result<std::string> token = sign_token(alice(), kOtherKey, "k1");
  ASSERT_THAT(token, IsOk());
  EXPECT_THAT(verifier_with(options_at(kNow))->verify(*token),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("signature does not verify")));
}

TEST(TokenVerifier, RejectsATruncatedSignature) {
  Result<std::string> token = sign_token(alice(), kKey);
  ASSERT_THAT(token, IsOk());
  const size_t dot = token->rfind('.');
  const std::string signature = base64url_decode(token->substr(dot + 1)).value_or("");
  ASSERT_EQ(signature.size(), 32u);
  const std::string truncated =
      token->substr(0, dot + 1) + base64url_encode(std::string_view(signature).substr(0, 30));
  EXPECT_THAT(verifier_with(options_at(kNow))->verify(truncated),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("signatures are 32")));
}

// --- times ----------------------------------------------------------------------------------

TEST(TokenVerifier, RejectsAnExpiredTokenNamingBothTimes) {
  Result<std::string> token = sign_token(alice(kNow), kKey);
  ASSERT_THAT(token, IsOk());
  EXPECT_THAT(
      verifier_with(options_at(kNow + 100))->verify(*token),
      StatusIs(StatusCode::kUnauthenticated, "token expired at 1790000000, now 1790000100"));
}

TEST(TokenVerifier, ToleratesClockSkewUpToTheLeeway) {
  Result<std::string> token = sign_token(alice(kNow), kKey);
  ASSERT_THAT(token, IsOk());
  EXPECT_THAT(verifier_with(options_at(kNow + 29))->verify(*token), IsOk());
  EXPECT_THAT(verifier_with(options_at(kNow + 30))->verify(*token),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("expired")));
  TokenVerifierOptions strict = options_at(kNow);
  strict.leeway = std::chrono::seconds(0);
  EXPECT_THAT(verifier_with(strict)->verify(*token),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("expired")));
}

TEST(TokenVerifier, RejectsATokenNotYetValid) {
  TokenClaims claims = alice();
  claims.not_before = kNow + 60;
  Result<std::string> token = sign_token(claims, kKey);
  ASSERT_THAT(token, IsOk());
  EXPECT_THAT(
      verifier_with(options_at(kNow))->verify(*token),
      StatusIs(StatusCode::kUnauthenticated, "token not valid before 1790000060, now 1790000000"));
  EXPECT_THAT(verifier_with(options_at(kNow + 31))->verify(*token), IsOk());  // within leeway
}

TEST(TokenVerifier, RejectsATokenIssuedInTheFuture) {
  TokenClaims claims = alice();
  claims.issued_at = kNow + 600;
  Result<std::string> token = sign_token(claims, kKey);
  ASSERT_THAT(token, IsOk());
  EXPECT_THAT(verifier_with(options_at(kNow))->verify(*token),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("in the future")));
}

TEST(TokenVerifier, RequiresExpiryUnlessConfiguredNotTo) {
  TokenClaims claims;
  claims.subject = "service";
  Result<std::string> token = sign_token(claims, kKey);
  ASSERT_THAT(token, IsOk());
  EXPECT_THAT(verifier_with(options_at(kNow))->verify(*token),
              StatusIs(StatusCode::kUnauthenticated, "token has no exp claim"));
  TokenVerifierOptions lenient = options_at(kNow);
  lenient.require_expiry = false;
  EXPECT_THAT(verifier_with(lenient)->verify(*token), IsOk());
}

TEST(TokenVerifier, RejectsANonNumericExpiry) {
  const std::string token = craft(kHs256Header, R"({"sub":"a","exp":"tomorrow"})", kKey);
  EXPECT_THAT(verifier_with(options_at(kNow))->verify(token),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("exp is not a number")));
}

// --- issuer and audience --------------------------------------------------------------------

TEST(TokenVerifier, RequiresTheConfiguredIssuer) {
  TokenVerifierOptions options = options_at(kNow);
  options.issuer = "auth.example.org";
  auto verifier = verifier_with(options);
  TokenClaims claims = alice();
  claims.issuer = "evil.example.org";
  EXPECT_THAT(verifier->verify(*sign_token(claims, kKey)),
              StatusIs(StatusCode::kUnauthenticated,
                       "token issuer 'evil.example.org'; 'auth.example.org' is required"));
  EXPECT_THAT(verifier->verify(*sign_token(alice(), kKey)),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("no issuer")));
  claims.issuer = "auth.example.org";
  EXPECT_THAT(verifier->verify(*sign_token(claims, kKey)), IsOk());
}

TEST(TokenVerifier, RequiresTheConfiguredAudienceAmongSeveral) {
  TokenVerifierOptions options = options_at(kNow);
  options.audience = "kv";
  auto verifier = verifier_with(options);
  TokenClaims claims = alice();
  claims.audience = {"web"};
  EXPECT_THAT(verifier->verify(*sign_token(claims, kKey)),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("audience 'kv'")));
  claims.audience = {"web", "kv"};
  EXPECT_THAT(verifier->verify(*sign_token(claims, kKey)), IsOk());
}

// --- malformed and oversize -----------------------------------------------------------------

TEST(TokenVerifier, RejectsMalformedTokens) {
  auto verifier = verifier_with(options_at(kNow));
  const std::string good = *sign_token(alice(), kKey);
  const std::string header = good.substr(0, good.find('.'));
  const std::string rest = good.substr(good.find('.'));
  const std::string payload = base64url_encode(R"({"sub":"a","exp":1790003600})");
  const struct {
    std::string token;
    std::string reason;
  } cases[] = {
      {"", "1 dot-separated parts"},
      {"abc", "1 dot-separated parts"},
      {"a.b", "2 dot-separated parts"},
      {good + ".x.y", "5 dot-separated parts"},  // JWE compact form
      {"!!!" + rest, "header is not base64url"},
      {header + "=" + rest, "header is not base64url"},  // padding
      {base64url_encode("{not json") + rest, "header is not JSON"},
      {base64url_encode("[1,2]") + rest, "header is not a JSON object"},
      {craft(kHs256Header, "[]", kKey), "payload is not a JSON object"},
      {craft(kHs256Header, "nope", kKey), "payload is not JSON"},
      {header + "." + payload + ".AAAA*AAA", "signature is not base64url"},
      {craft(R"({"alg":"HS256","kid":7})", "{}", kKey), "kid is not a string"},
      {craft(kHs256Header, R"({"sub":"a","exp":1790003600,"aud":5})", kKey), "aud"},
  };
  for (const auto& c : cases) {
    EXPECT_THAT(verifier->verify(c.token),
                StatusIs(StatusCode::kUnauthenticated, HasSubstr(c.reason)))
        << c.token;
  }
}

TEST(TokenVerifier, RejectsAnOversizeTokenBeforeDecodingIt) {
  TokenClaims claims = alice();
  claims.extra.emplace("padding", std::string(9000, 'x'));
  Result<std::string> token = sign_token(claims, kKey);
  ASSERT_THAT(token, IsOk());
  EXPECT_THAT(verifier_with(options_at(kNow))->verify(*token),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("max_token_bytes is 8192")));
  TokenVerifierOptions roomy = options_at(kNow);
  roomy.max_token_bytes = 16 << 10;
  EXPECT_THAT(verifier_with(roomy)->verify(*token), IsOk());
}

// --- keys -----------------------------------------------------------------------------------

TEST(TokenKeys, KeysShorterThan32BytesAreRefused) {
  const std::string short_key(31, 'k');
  EXPECT_THAT(TokenSigner::create(short_key),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("31 bytes; at least 32")));
  EXPECT_THAT(sign_token(alice(), short_key), StatusIs(StatusCode::kInvalidArgument));
  TokenVerifier verifier;
  EXPECT_THAT(verifier.add_key("k1", short_key),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("key 'k1'")));
  EXPECT_EQ(verifier.key_count(), 0u);
}

TEST(TokenKeys, DuplicateKeyIdsAndTooManyKeysAreRefused) {
  TokenVerifier verifier;
  ASSERT_THAT(verifier.add_key("k1", kKey), IsOk());
  EXPECT_THAT(verifier.add_key("k1", kOtherKey), StatusIs(StatusCode::kAlreadyExists));
  for (size_t i = 1; i < TokenVerifier::kMaxKeys; ++i) {
    ASSERT_THAT(verifier.add_key("extra-" + std::to_string(i), kKey), IsOk());
  }
  EXPECT_THAT(verifier.add_key("one-too-many", kKey),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("kMaxKeys")));
  EXPECT_THAT(verifier.remove_key("absent"), StatusIs(StatusCode::kNotFound));
}

TEST(TokenKeys, RotationVerifiesEachTokenWithTheKeyItsKidNames) {
  TokenVerifier verifier(options_at(kNow));
  ASSERT_THAT(verifier.add_key("old", kKey), IsOk());
  ASSERT_THAT(verifier.add_key("new", kOtherKey), IsOk());
  const std::string old_token = *sign_token(alice(), kKey, "old");
  const std::string new_token = *sign_token(alice(), kOtherKey, "new");
  EXPECT_THAT(verifier.verify(old_token), IsOk());
  EXPECT_THAT(verifier.verify(new_token), IsOk());
  // The kid names exactly one key: the right key under another kid does not verify.
  EXPECT_THAT(verifier.verify(*sign_token(alice(), kKey, "new")),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("signature")));
  EXPECT_THAT(verifier.verify(*sign_token(alice(), kKey, "retired")),
              StatusIs(StatusCode::kUnauthenticated, "token key id 'retired' is unknown"));

  ASSERT_THAT(verifier.remove_key("old"), IsOk());
  EXPECT_THAT(verifier.verify(old_token),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("'old' is unknown")));
  EXPECT_THAT(verifier.verify(new_token), IsOk());
}

TEST(TokenKeys, ATokenWithoutKidIsTriedAgainstEveryKey) {
  TokenVerifier verifier(options_at(kNow));
  ASSERT_THAT(verifier.add_key("old", kKey), IsOk());
  ASSERT_THAT(verifier.add_key("new", kOtherKey), IsOk());
  EXPECT_THAT(verifier.verify(*sign_token(alice(), kKey)), IsOk());
  EXPECT_THAT(verifier.verify(*sign_token(alice(), kOtherKey)), IsOk());
  EXPECT_THAT(verifier.verify(*sign_token(alice(), std::string(32, 'z'))),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("signature")));
}

TEST(TokenKeys, AVerifierWithoutKeysRejectsEverything) {
  EXPECT_THAT(TokenVerifier(options_at(kNow)).verify(*sign_token(alice(), kKey)),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("no keys")));
}

// --- static tokens --------------------------------------------------------------------------

TEST(StaticTokens, FindsThePrincipalOfAKnownTokenOnly) {
  StaticTokens tokens;
  ASSERT_THAT(tokens.add("ci-token-0123456789", "ci"), IsOk());
  ASSERT_THAT(tokens.add("ops-token-0123456789", "ops"), IsOk());
  EXPECT_EQ(tokens.find("ci-token-0123456789"), "ci");
  EXPECT_EQ(tokens.find("ops-token-0123456789"), "ops");
  EXPECT_EQ(tokens.find("ci-token-012345678"), std::nullopt);  // a prefix is not the token
  EXPECT_EQ(tokens.find(""), std::nullopt);
}

TEST(StaticTokens, RefusesShortTokensEmptyNamesAndDuplicates) {
  StaticTokens tokens;
  EXPECT_THAT(tokens.add("short", "ci"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("5 bytes; at least 16")));
  EXPECT_THAT(tokens.add("long-enough-token-1", ""), StatusIs(StatusCode::kInvalidArgument));
  ASSERT_THAT(tokens.add("long-enough-token-1", "ci"), IsOk());
  EXPECT_THAT(tokens.add("long-enough-token-1", "other"), StatusIs(StatusCode::kAlreadyExists));
  EXPECT_EQ(tokens.size(), 1u);
}

// --- base64url ------------------------------------------------------------------------------

TEST(Base64Url, RoundTripsEveryLengthWithoutPadding) {
  std::string bytes;
  for (int i = 0; i < 70; ++i) {
    const std::string encoded = base64url_encode(bytes);
    EXPECT_EQ(encoded.find_first_of("=+/"), std::string::npos) << encoded;
    EXPECT_EQ(base64url_decode(encoded), bytes) << encoded;
    bytes.push_back(static_cast<char>(i * 37 + 251));
  }
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
}

TEST(Base64Url, RejectsPaddingForeignCharactersAndNonCanonicalSpellings) {
  EXPECT_EQ(base64url_decode("QQ"), "A");
  EXPECT_EQ(base64url_decode("QQ=="), std::nullopt);
  EXPECT_EQ(base64url_decode("QR"), std::nullopt);   // same byte, non-zero unused bits
  EXPECT_EQ(base64url_decode("Q"), std::nullopt);    // 1 mod 4
  EXPECT_EQ(base64url_decode("+/8"), std::nullopt);  // standard, not URL-safe, alphabet
  EXPECT_EQ(base64url_decode("QQ "), std::nullopt);
}

}  // namespace
}  // namespace meshrpc::security
