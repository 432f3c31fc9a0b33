// Keyring: the shared keys that encrypt and authenticate gossip datagrams (AES-GCM).
//
// Every member of a cluster holds the same keyring. Datagrams are sealed with the primary
// key and opened with any installed key, so keys rotate without downtime, as in HashiCorp
// memberlist (add the new key everywhere, make it primary everywhere, remove the old one):
// during a rotation a node has sealed with either key and every node can still open both.
//
// Sealed form (version 1), one datagram:
//
//   +---------+------------+----------------------------+-------------+
//   | version |   nonce    |        ciphertext          |   GCM tag   |
//   | 1 byte  |  12 bytes  | plaintext.size() bytes     |  16 bytes   |
//   +---------+------------+----------------------------+-------------+
//
// The version byte is the AEAD associated data: authenticated, not encrypted, so a body
// sealed as one version can never be opened as another (open() refuses unknown versions
// before trying any key). AES-128/192/256 is chosen by the key's length; the
// sealed form does not name the key, so open() tries the primary first, then the others.
//
// What it protects: confidentiality and integrity of each datagram against anyone without a
// key. What it does not: replay (a recorded datagram opens again; SWIM tolerates duplicate
// gossip, and incarnation numbers make stale state lose), traffic analysis (sizes, timing,
// addresses), or a member that holds a key.
//
// Nonces: AES-GCM breaks (authentication key recoverable, plaintexts xor-able) if one nonce is
// used twice under one key. The caller draws a fresh 12-byte nonce per seal from its Env's
// random source; with random nonces keep under about 2^32 seals per key cluster-wide (NIST SP
// 800-38D), i.e. rotate keys long before that: 1,000 nodes x 10 datagrams/s reach 2^32 in
// about 5 days.
//
// Threading: all methods may be called concurrently from any threads. seal/open/key_count
// share a reader lock; add_key/use_key/remove_key take it exclusively, so a rotation waits
// for the seals and opens in flight and never tears one.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "meshrpc/base/buffer.h"
#include "meshrpc/base/result.h"
#include "meshrpc/base/status.h"

namespace meshrpc::membership {

class Keyring {
 public:
  // The first byte of a sealed datagram (seal/open) and of a sealed message
  // (seal_message/open_message). It is authenticated, so neither kind opens as the other.
  static constexpr uint8_t kVersion = 1;
  static constexpr uint8_t kMessageVersion = 2;
  // 12 bytes: GCM's native nonce size (other sizes are hashed into one, for no gain).
  static constexpr size_t kNonceBytes = 12;
  // 16 bytes: the full GCM tag; shorter tags weaken forgery resistance (SP 800-38D app. C).
  static constexpr size_t kTagBytes = 16;
  static constexpr size_t kSealOverhead = 1 + kNonceBytes + kTagBytes;  // 29
  // 65,507: the largest UDP payload over IPv4. A sealed message is one datagram, so nothing
  // longer can arrive, and the bound keeps lengths within OpenSSL's int parameters.
  static constexpr size_t kMaxSealedBytes = 65507;
  static constexpr size_t kMaxPlaintextBytes = kMaxSealedBytes - kSealOverhead;
  // 64 MiB: a push-pull of a million members (about 60 bytes each) fits, and it stays far
  // within OpenSSL's int lengths. The meshrpc call carrying it is bounded by the server's
  // message limit first anyway.
  static constexpr size_t kMaxMessageBytes = size_t{64} << 20;
  // 8 keys: a rotation needs two; more leaves room for staged rotations. Bounded because
  // open() tries every key on a datagram from outside the cluster (one AES-GCM pass each).
  static constexpr size_t kMaxKeys = 8;

  using Nonce = std::array<std::byte, kNonceBytes>;

  // A keyring holding `keys` (raw bytes; 16, 24 or 32 each), keys[0] primary. Duplicates are
  // installed once. INVALID_ARGUMENT if there is no key or one has a bad length (named);
  // RESOURCE_EXHAUSTED past kMaxKeys distinct keys.
  static Result<Keyring> create(std::vector<std::string> keys);

  // The raw bytes of a key as operators write it: standard base64 with padding (as memberlist
  // and Consul print keys, e.g. `openssl rand -base64 32`). INVALID_ARGUMENT for anything
  // else (whitespace, the URL-safe alphabet, missing padding) or a decoded length other than
  // 16, 24 or 32.
  static Result<std::string> decode_key(std::string_view base64);

  Keyring(Keyring&& other) noexcept;
  Keyring& operator=(Keyring&& other) noexcept;
  Keyring(const Keyring&) = delete;
  Keyring& operator=(const Keyring&) = delete;
  // Overwrites the key bytes (OPENSSL_cleanse) so they do not linger in freed memory.
  ~Keyring();

  // Installs `key` as a secondary key: open() accepts it, seal() does not use it yet.
  // OK if already installed (idempotent, the primary unchanged). INVALID_ARGUMENT for a bad
  // length; RESOURCE_EXHAUSTED when kMaxKeys are installed.
  Status add_key(std::string key);
  // Makes an installed key the primary. NOT_FOUND if it is not installed.
  Status use_key(std::string_view key);
  // Uninstalls a secondary key. FAILED_PRECONDITION for the primary (use_key another first);
  // NOT_FOUND if it is not installed.
  Status remove_key(std::string_view key);

  size_t key_count() const;
  // True if `key` is installed / is the primary (for operator tooling and tests).
  bool contains(std::string_view key) const;
  bool is_primary(std::string_view key) const;

  // `plaintext` sealed with the primary key and `nonce`. The nonce must never repeat under
  // one key (see above). RESOURCE_EXHAUSTED past kMaxPlaintextBytes; INTERNAL if OpenSSL
  // fails (allocation).
  Result<Buffer> seal(std::span<const std::byte> plaintext, const Nonce& nonce) const;
  // The plaintext of a sealed message, trying the primary key first, then the others.
  // INVALID_ARGUMENT if it is shorter than kSealOverhead, longer than kMaxSealedBytes or of
  // an unknown version; UNAUTHENTICATED if no installed key opens it (tampered, or sealed
  // with a key this keyring lacks).
  Result<Buffer> open(std::span<const std::byte> sealed) const;

  // seal() and open() for a message carried on a stream (a push-pull call), not a datagram:
  // up to kMaxMessageBytes of plaintext, and marked kMessageVersion, so a recorded datagram
  // cannot be replayed as a push-pull, nor a push-pull as a datagram. Same nonce rule.
  Result<Buffer> seal_message(std::span<const std::byte> plaintext, const Nonce& nonce) const;
  Result<Buffer> open_message(std::span<const std::byte> sealed) const;

 private:
  Result<Buffer> seal_as(uint8_t version, size_t max_plaintext,
                         std::span<const std::byte> plaintext, const Nonce& nonce) const;
  Result<Buffer> open_as(uint8_t version, size_t max_sealed,
                         std::span<const std::byte> sealed) const;

  struct Key {
    std::array<unsigned char, 32> bytes{};
    size_t size = 0;
    std::string_view view() const { return {reinterpret_cast<const char*>(bytes.data()), size}; }
  };

  Keyring() = default;
  // Index of `key` in keys_, or key_count_ if absent. Caller holds mutex_.
  size_t find(std::string_view key) const;
  Status install(std::string_view key);
  void wipe();

  mutable std::shared_mutex mutex_;
  // keys_[0] is the primary; [0, key_count_) are installed. A fixed array, never
  // reallocated, so removing a key can overwrite its only copy.
  std::array<Key, kMaxKeys> keys_{};
  size_t key_count_ = 0;
};

namespace detail {

// The raw AES-GCM primitive under Keyring (12-byte nonce, 16-byte tag), exposed for
// known-answer tests against published vectors. `key` is 16, 24 or 32 bytes.
// Seal writes the ciphertext then the tag: `out` must be plaintext.size() + 16 bytes.
Status aes_gcm_seal(std::string_view key, std::span<const std::byte, 12> nonce,
                    std::span<const std::byte> aad, std::span<const std::byte> plaintext,
                    std::span<std::byte> out);
// Open takes ciphertext then tag and writes sealed.size() - 16 bytes of plaintext to `out`
// (which holds unauthenticated bytes if it fails). UNAUTHENTICATED if the tag does not match.
Status aes_gcm_open(std::string_view key, std::span<const std::byte, 12> nonce,
                    std::span<const std::byte> aad, std::span<const std::byte> sealed,
                    std::span<std::byte> out);

}  // namespace detail

}  // namespace meshrpc::membership
