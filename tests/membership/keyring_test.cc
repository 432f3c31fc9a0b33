// Keyring: AES-GCM sealing of gossip datagrams, tamper detection, key rotation between nodes
// without downtime, key validation and base64 decoding, and known answers from the GCM spec.
#include "meshrpc/membership/keyring.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "meshrpc/base/status_matchers.h"

namespace meshrpc::membership {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::AnyOf;
using ::testing::HasSubstr;

std::span<const std::byte> bytes_of(std::string_view s) { return std::as_bytes(std::span(s)); }

std::string key_of(size_t size, char fill) { return std::string(size, fill); }

Keyring::Nonce nonce_of(uint64_t n) {
  Keyring::Nonce nonce{};
  for (size_t i = 0; i < 8; ++i) nonce[i] = static_cast<std::byte>(n >> (8 * i));
  return nonce;
}

Keyring make_keyring(std::vector<std::string> keys) {
  Result<Keyring> keyring = Keyring::create(std::move(keys));
  EXPECT_THAT(keyring, IsOk());
  return std::move(keyring).value();
}

// Seals `text` with a fresh nonce and returns the sealed bytes as a string.
std::string seal_text(const Keyring& keyring, std::string_view text, uint64_t nonce) {
  Result<Buffer> sealed = keyring.seal(bytes_of(text), nonce_of(nonce));
  EXPECT_THAT(sealed, IsOk());
  return sealed.ok() ? sealed->to_string() : std::string();
}

Result<std::string> open_text(const Keyring& keyring, std::string_view sealed) {
  Result<Buffer> opened = keyring.open(bytes_of(sealed));
  if (!opened.ok()) return opened.status();
  return opened->to_string();
}

std::string from_hex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

class KeyringKeySizeTest : public ::testing::TestWithParam<size_t> {};

TEST_P(KeyringKeySizeTest, RoundTripsPayloadsOfEverySize) {
  const Keyring keyring = make_keyring({key_of(GetParam(), 'k')});
  const std::string large(Keyring::kMaxPlaintextBytes, 'x');
  for (const std::string& text : {std::string(), std::string("ping"), large}) {
    const std::string sealed = seal_text(keyring, text, 7);
    EXPECT_EQ(sealed.size(), text.size() + Keyring::kSealOverhead);
    EXPECT_THAT(open_text(keyring, sealed), ::meshrpc::testing::IsOkAndHolds(text));
  }
}

INSTANTIATE_TEST_SUITE_P(KeyringAesKeySizes, KeyringKeySizeTest, ::testing::Values(16, 24, 32));

TEST(Keyring, SealedFormIsVersionNonceCiphertextTag) {
  const Keyring keyring = make_keyring({key_of(16, 'k')});
  const std::string text = "alive node-3 incarnation 9";
  const std::string sealed = seal_text(keyring, text, 0x0102030405);
  ASSERT_EQ(sealed.size(), 1 + 12 + text.size() + 16);
  EXPECT_EQ(sealed[0], '\x01');
  const Keyring::Nonce nonce = nonce_of(0x0102030405);
  EXPECT_EQ(sealed.substr(1, 12), std::string(reinterpret_cast<const char*>(nonce.data()), 12));
  EXPECT_EQ(sealed.find(text), std::string::npos) << "the payload must not appear in clear";
  // The body is exactly the raw primitive's output with the version byte as associated data.
  std::string expected(text.size() + 16, '\0');
  const std::byte version{1};
  ASSERT_THAT(detail::aes_gcm_seal(key_of(16, 'k'), nonce, std::span(&version, 1), bytes_of(text),
                                   std::as_writable_bytes(std::span(expected))),
              IsOk());
  EXPECT_EQ(sealed.substr(13), expected);
}

TEST(Keyring, RejectsEveryTamperedByte) {
  const Keyring keyring = make_keyring({key_of(32, 'k')});
  const std::string sealed = seal_text(keyring, "suspect node-7", 1);
  for (size_t i = 0; i < sealed.size(); ++i) {
    for (const int flip : {0x01, 0x80}) {
      std::string tampered = sealed;
      tampered[i] = static_cast<char>(tampered[i] ^ flip);
      // Byte 0 is the version: an unknown one is refused before any key is tried.
      const StatusCode expected =
          i == 0 ? StatusCode::kInvalidArgument : StatusCode::kUnauthenticated;
      EXPECT_THAT(open_text(keyring, tampered), StatusIs(expected)) << "byte " << i;
    }
  }
}

TEST(Keyring, RejectsTruncatedAndExtendedMessages) {
  const Keyring keyring = make_keyring({key_of(16, 'k')});
  const std::string sealed = seal_text(keyring, "ack 42", 1);
  EXPECT_THAT(open_text(keyring, sealed.substr(0, Keyring::kSealOverhead - 1)),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("28 bytes")));
  EXPECT_THAT(open_text(keyring, ""), StatusIs(StatusCode::kInvalidArgument));
  // Still long enough to parse, but the tag no longer covers what is there.
  EXPECT_THAT(open_text(keyring, sealed.substr(0, sealed.size() - 1)),
              StatusIs(StatusCode::kUnauthenticated));
  EXPECT_THAT(open_text(keyring, sealed + "x"), StatusIs(StatusCode::kUnauthenticated));
  EXPECT_THAT(
      open_text(keyring, std::string(Keyring::kMaxSealedBytes + 1, '\x01')),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr(std::to_string(Keyring::kMaxSealedBytes))));
}

TEST(Keyring, RefusesPlaintextPastTheDatagramLimit) {
  const Keyring keyring = make_keyring({key_of(16, 'k')});
  const std::string text(Keyring::kMaxPlaintextBytes + 1, 'x');
  EXPECT_THAT(keyring.seal(bytes_of(text), nonce_of(1)),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("exceeds the limit")));
}

TEST(Keyring, KeyringWithoutTheKeyCannotOpen) {
  const Keyring ours = make_keyring({key_of(16, 'a')});
  const Keyring theirs = make_keyring({key_of(16, 'b'), key_of(32, 'c')});
  EXPECT_THAT(open_text(theirs, seal_text(ours, "join", 1)),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("2 installed")));
}

TEST(Keyring, DifferentNoncesGiveDifferentCiphertexts) {
  const Keyring keyring = make_keyring({key_of(16, 'k')});
  const std::string first = seal_text(keyring, "same payload", 1);
  const std::string second = seal_text(keyring, "same payload", 2);
  EXPECT_NE(first.substr(13), second.substr(13));
  // The same nonce repeats the output exactly: the nonce is the only source of variation,
  // which is why the caller must never reuse one.
  EXPECT_EQ(seal_text(keyring, "same payload", 1), first);
}

TEST(KeyringRotation, RotatesBetweenTwoNodesWithoutDowntime) {
  const std::string k1 = key_of(32, '1');
  const std::string k2 = key_of(32, '2');
  Keyring a = make_keyring({k1});
  Keyring b = make_keyring({k1});
  uint64_t nonce = 0;
  // Every packet either node sends, the other must open, at every step.
  const auto exchange = [&](std::string_view step) {
    SCOPED_TRACE(step);
    EXPECT_THAT(open_text(b, seal_text(a, "from a", ++nonce)),
                ::meshrpc::testing::IsOkAndHolds(std::string("from a")));
    EXPECT_THAT(open_text(a, seal_text(b, "from b", ++nonce)),
                ::meshrpc::testing::IsOkAndHolds(std::string("from b")));
  };
  exchange("both on k1");
  const std::string old_packet = seal_text(a, "sealed with k1", ++nonce);

  ASSERT_THAT(a.add_key(k2), IsOk());
  ASSERT_THAT(b.add_key(k2), IsOk());
  EXPECT_TRUE(a.is_primary(k1));
  exchange("k2 installed on both, k1 still primary");

  ASSERT_THAT(a.use_key(k2), IsOk());
  EXPECT_TRUE(a.is_primary(k2));
  exchange("a seals with k2, b with k1");

  ASSERT_THAT(b.use_key(k2), IsOk());
  exchange("both seal with k2");
  EXPECT_THAT(open_text(b, old_packet), IsOk()) << "k1 still installed";

  ASSERT_THAT(a.remove_key(k1), IsOk());
  ASSERT_THAT(b.remove_key(k1), IsOk());
  EXPECT_EQ(a.key_count(), 1u);
  EXPECT_FALSE(b.contains(k1));
  exchange("k1 removed from both");
  EXPECT_THAT(open_text(a, old_packet), StatusIs(StatusCode::kUnauthenticated));
  EXPECT_THAT(open_text(b, old_packet), StatusIs(StatusCode::kUnauthenticated));
}

TEST(KeyringRotation, UseKeyKeepsTheOtherKeysInstalled) {
  Keyring keyring = make_keyring({key_of(16, 'a'), key_of(16, 'b'), key_of(16, 'c')});
  ASSERT_THAT(keyring.use_key(key_of(16, 'c')), IsOk());
  EXPECT_TRUE(keyring.is_primary(key_of(16, 'c')));
  EXPECT_EQ(keyring.key_count(), 3u);
  for (const char fill : {'a', 'b', 'c'}) EXPECT_TRUE(keyring.contains(key_of(16, fill)));
  const Keyring only_c = make_keyring({key_of(16, 'c')});
  EXPECT_THAT(open_text(only_c, seal_text(keyring, "x", 1)), IsOk()) << "seals with c";
}

TEST(KeyringRotation, RefusesToRemoveThePrimary) {
  Keyring keyring = make_keyring({key_of(16, 'a'), key_of(16, 'b')});
  EXPECT_THAT(keyring.remove_key(key_of(16, 'a')),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("primary")));
  EXPECT_EQ(keyring.key_count(), 2u);
}

TEST(KeyringRotation, ReportsKeysThatAreNotInstalled) {
  Keyring keyring = make_keyring({key_of(16, 'a')});
  EXPECT_THAT(keyring.use_key(key_of(16, 'z')), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(keyring.remove_key(key_of(16, 'z')), StatusIs(StatusCode::kNotFound));
  // Same leading bytes, different length: a different key.
  EXPECT_THAT(keyring.use_key(key_of(24, 'a')), StatusIs(StatusCode::kNotFound));
  EXPECT_TRUE(keyring.is_primary(key_of(16, 'a')));
}

TEST(KeyringRotation, AddKeyIsIdempotentAndNeverChangesThePrimary) {
  Keyring keyring = make_keyring({key_of(16, 'a'), key_of(16, 'a'), key_of(24, 'b')});
  EXPECT_EQ(keyring.key_count(), 2u);
  EXPECT_THAT(keyring.add_key(key_of(24, 'b')), IsOk());
  EXPECT_THAT(keyring.add_key(key_of(16, 'a')), IsOk());
  EXPECT_EQ(keyring.key_count(), 2u);
  EXPECT_TRUE(keyring.is_primary(key_of(16, 'a')));
}

TEST(KeyringRotation, BoundsTheNumberOfKeys) {
  Keyring keyring = make_keyring({key_of(16, 'a')});
  for (size_t i = 1; i < Keyring::kMaxKeys; ++i) {
    ASSERT_THAT(keyring.add_key(key_of(16, static_cast<char>('a' + i))), IsOk());
  }
  EXPECT_THAT(keyring.add_key(key_of(16, 'z')),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("kMaxKeys 8")));
  ASSERT_THAT(keyring.remove_key(key_of(16, 'b')), IsOk());
  EXPECT_THAT(keyring.add_key(key_of(16, 'z')), IsOk());
}

TEST(Keyring, RefusesBadKeyLengthsNamingTheLength) {
  EXPECT_THAT(Keyring::create({}), StatusIs(StatusCode::kInvalidArgument, HasSubstr("one key")));
  for (const size_t size : std::vector<size_t>{0, 1, 15, 17, 20, 31, 33, 64}) {
    EXPECT_THAT(Keyring::create({key_of(size, 'k')}),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr(std::to_string(size) + " bytes")));
  }
  EXPECT_THAT(Keyring::create({key_of(16, 'k'), key_of(12, 'k')}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("12 bytes")));
  Keyring keyring = make_keyring({key_of(16, 'k')});
  EXPECT_THAT(keyring.add_key(key_of(33, 'k')),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("33 bytes")));
  EXPECT_EQ(keyring.key_count(), 1u);
}

TEST(Keyring, MovedKeyringKeepsItsKeys) {
  Keyring source = make_keyring({key_of(16, 'a'), key_of(32, 'b')});
  const std::string sealed = seal_text(source, "payload", 1);
  Keyring moved(std::move(source));
  EXPECT_EQ(moved.key_count(), 2u);
  EXPECT_THAT(open_text(moved, sealed), IsOk());
  Keyring assigned = make_keyring({key_of(24, 'c')});
  assigned = std::move(moved);
  EXPECT_TRUE(assigned.is_primary(key_of(16, 'a')));
  EXPECT_THAT(open_text(assigned, sealed), IsOk());
}

struct DecodeCase {
  std::string_view base64;
  size_t decoded_bytes;  // 0: must be rejected
};

TEST(KeyringDecodeKey, AcceptsOnlyPaddedStandardBase64OfAesKeySizes) {
  const DecodeCase cases[] = {
      // 16 bytes: 22 characters and "==".
      {"AAAAAAAAAAAAAAAAAAAAAA==", 16},
      {"AAECAwQFBgcICQoLDA0ODw==", 16},
      // 24 bytes: no padding.
      {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYX", 24},
      // 32 bytes: 43 characters and "=" (a memberlist/Consul `keygen` key).
      {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", 32},
      {"+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/8=", 32},
      // Padding missing, wrong or in the middle.
      {"AAECAwQFBgcICQoLDA0ODw", 0},
      {"AAECAwQFBgcICQoLDA0ODw=", 0},
      {"AAECAwQFBgcICQoLDA0ODw===", 0},
      {"AAECAwQFBgcICQoLDA0O=w==", 0},
      {"AAECAwQFBgcICQoLDA0OD===", 0},
      // Outside the alphabet: URL-safe characters, whitespace, anything else.
      {"AAECAwQFBgcICQoLDA0OD-==", 0},
      {"AAECAwQFBgcICQoLDA0OD_==", 0},
      {" AAECAwQFBgcICQoLDA0ODw==", 0},
      {"AAECAwQFBgcICQoLDA0ODw==\n", 0},
      {"AAECAwQFBgcI\nCQoLDA0ODw==", 0},
      {"AAECAwQFBgcICQoLDA0OD!==", 0},
      // Valid base64, but not an AES key length: 15, 17 and 12 bytes.
      {"AAECAwQFBgcICQoLDA0O", 0},
      {"AAECAwQFBgcICQoLDA0ODxA=", 0},
      {"AAECAwQFBgcICQoL", 0},
      {"", 0},
      {"====", 0},
  };
  for (const DecodeCase& c : cases) {
    SCOPED_TRACE(std::string(c.base64));
    Result<std::string> key = Keyring::decode_key(c.base64);
    if (c.decoded_bytes == 0) {
      EXPECT_THAT(key, StatusIs(StatusCode::kInvalidArgument));
    } else {
      ASSERT_THAT(key, IsOk());
      EXPECT_EQ(key->size(), c.decoded_bytes);
    }
  }
}

TEST(KeyringDecodeKey, DecodesTheExactBytes) {
  std::string expected;
  for (int i = 0; i < 32; ++i) expected.push_back(static_cast<char>(i));
  EXPECT_THAT(Keyring::decode_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
              ::meshrpc::testing::IsOkAndHolds(expected));
  EXPECT_THAT(Keyring::decode_key("AAECAwQFBgcICQoLDA0ODw=="),
              ::meshrpc::testing::IsOkAndHolds(expected.substr(0, 16)));
  EXPECT_THAT(Keyring::decode_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"),
              ::meshrpc::testing::IsOkAndHolds(expected.substr(0, 24)));
}

TEST(KeyringDecodeKey, NamesTheDecodedLength) {
  EXPECT_THAT(Keyring::decode_key("AAECAwQFBgcICQoLDA0ODxA="),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("17 bytes")));
}

// Known answers from "The Galois/Counter Mode of Operation (GCM)" (McGrew & Viega), the
// test cases NIST's GCM validation uses.
struct GcmVector {
  const char* name;
  std::string_view key, iv, aad, plaintext, ciphertext, tag;
};

const GcmVector kGcmVectors[] = {
    {"TestCase2_AES128_ZeroBlock", "00000000000000000000000000000000", "000000000000000000000000",
     "", "00000000000000000000000000000000", "0388dace60b6a392f328c2b971b2fe78",
     "ab6e47d42cec13bdf53a67b21257bddf"},
    {"TestCase4_AES128_WithAad", "feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24"
     "49a6b525b16aedf5aa0de657ba637b39",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5a"
     "ac84aa051ba30b396a0aac973d58e091",
     "5bc94fbc3221a5db94fae95ae7121a47"},
    {"TestCase8_AES192_ZeroBlock", "000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "00000000000000000000000000000000",
     "98e7247c07f0fe411c267e4384b0f600", "2ff58d80033927ab8ef4d4587514f0fb"},
    {"TestCase14_AES256_ZeroBlock",
     "0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "", "00000000000000000000000000000000", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"},
};

TEST(KeyringAesGcm, MatchesPublishedKnownAnswers) {
  for (const GcmVector& v : kGcmVectors) {
    SCOPED_TRACE(v.name);
    const std::string key = from_hex(v.key), iv = from_hex(v.iv), aad = from_hex(v.aad);
    const std::string plaintext = from_hex(v.plaintext);
    const std::string expected = from_hex(v.ciphertext) + from_hex(v.tag);
    const std::span<const std::byte, 12> nonce(bytes_of(iv).data(), 12);

    std::string sealed(plaintext.size() + 16, '\0');
    ASSERT_THAT(detail::aes_gcm_seal(key, nonce, bytes_of(aad), bytes_of(plaintext),
                                     std::as_writable_bytes(std::span(sealed))),
                IsOk());
    EXPECT_EQ(sealed, expected);

    std::string opened(plaintext.size(), '\0');
    ASSERT_THAT(detail::aes_gcm_open(key, nonce, bytes_of(aad), bytes_of(expected),
                                     std::as_writable_bytes(std::span(opened))),
                IsOk());
    EXPECT_EQ(opened, plaintext);

    std::string forged = expected;
    forged.back() = static_cast<char>(forged.back() ^ 1);
    EXPECT_THAT(detail::aes_gcm_open(key, nonce, bytes_of(aad), bytes_of(forged),
                                     std::as_writable_bytes(std::span(opened))),
                StatusIs(StatusCode::kUnauthenticated));
  }
}

// The driver seals and opens on its executor while an operator rotates from another thread:
// every packet sealed during the rotation opens (run under TSan to check the locking).
TEST(KeyringRotation, SealAndOpenStayAvailableDuringConcurrentRotation) {
  const std::string k1 = key_of(16, '1');
  const std::string k2 = key_of(16, '2');
  Keyring keyring = make_keyring({k1, k2});
  std::atomic<bool> done{false};
  std::thread rotator([&] {
    for (int i = 0; i < 2000; ++i) {
      EXPECT_THAT(keyring.use_key(i % 2 == 0 ? k2 : k1), IsOk());
    }
    done.store(true);
  });
  int failures = 0;
  uint64_t nonce = 0;
  while (!done.load() || nonce < 100) {
    Result<Buffer> sealed = keyring.seal(bytes_of("probe"), nonce_of(++nonce));
    if (!sealed.ok() || !keyring.open(bytes_of(sealed->to_string())).ok()) ++failures;
  }
  rotator.join();
  EXPECT_EQ(failures, 0);
}

}  // namespace
}  // namespace meshrpc::membership

namespace meshrpc::membership {
namespace {

std::string seal_message_text(const Keyring& keyring, std::string_view text, uint64_t nonce) {
  Result<Buffer> sealed = keyring.seal_message(std::as_bytes(std::span(text)), nonce_of(nonce));
  EXPECT_TRUE(sealed.ok()) << sealed.status().to_string();
  return sealed.ok() ? std::string(sealed->flatten()) : std::string();
}

TEST(KeyringMessages, RoundTripMessagesPastTheDatagramLimit) {
  const Keyring keyring = make_keyring({key_of(32, 'k')});
  const std::string large(Keyring::kMaxSealedBytes * 3, 'x');
  const std::string sealed = seal_message_text(keyring, large, 1);
  ASSERT_EQ(sealed.size(), large.size() + Keyring::kSealOverhead);
  EXPECT_EQ(static_cast<uint8_t>(sealed[0]), Keyring::kMessageVersion);
  Result<Buffer> opened = keyring.open_message(std::as_bytes(std::span(sealed)));
  ASSERT_TRUE(opened.ok()) << opened.status().to_string();
  EXPECT_EQ(opened->flatten(), large);
}

TEST(KeyringMessages, DatagramsAndMessagesNeverOpenAsEachOther) {
  const Keyring keyring = make_keyring({key_of(32, 'k')});
  const std::string datagram = seal_text(keyring, "ping", 1);
  const std::string message = seal_message_text(keyring, "ping", 2);
  EXPECT_THAT(keyring.open_message(std::as_bytes(std::span(datagram))),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("version 1")));
  EXPECT_THAT(open_text(keyring, message),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("version 2")));
  // The version byte is authenticated: rewriting it does not make one pass as the other.
  std::string relabelled = datagram;
  relabelled[0] = static_cast<char>(Keyring::kMessageVersion);
  EXPECT_THAT(keyring.open_message(std::as_bytes(std::span(relabelled))),
              StatusIs(StatusCode::kUnauthenticated));
}

TEST(KeyringMessages, MessageFromAnotherKeyIsUnauthenticatedAndTamperingIsCaught) {
  const Keyring ours = make_keyring({key_of(32, 'a')});
  const Keyring theirs = make_keyring({key_of(32, 'b')});
  const std::string sealed = seal_message_text(theirs, "full state", 3);
  EXPECT_THAT(ours.open_message(std::as_bytes(std::span(sealed))),
              StatusIs(StatusCode::kUnauthenticated));
  std::string tampered = seal_message_text(ours, "full state", 4);
  tampered[Keyring::kSealOverhead] ^= 0x01;
  EXPECT_THAT(ours.open_message(std::as_bytes(std::span(tampered))),
              StatusIs(StatusCode::kUnauthenticated));
}

}  // namespace
}  // namespace meshrpc::membership
