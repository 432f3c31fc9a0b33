#include "meshrpc/membership/keyring.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "meshrpc/base/status_macros.h"

namespace meshrpc::membership {
namespace {

static_assert(Keyring::kMaxMessageBytes + Keyring::kSealOverhead <= INT_MAX, "EVP lengths are int");

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

bool valid_key_size(size_t size) { return size == 16 || size == 24 || size == 32; }

Status check_key_size(size_t size) {
  if (valid_key_size(size)) return Status();
  return invalid_argument_error("keyring key is " + std::to_string(size) +
                                " bytes; AES-GCM keys are 16, 24 or 32 bytes");
}

const EVP_CIPHER* cipher_for(size_t key_size) {
  switch (key_size) {
    case 16:
      return EVP_aes_128_gcm();
    case 24:
      return EVP_aes_192_gcm();
    default:
      return EVP_aes_256_gcm();
  }
}

// An OpenSSL call failed for a reason other than authentication (allocation, a bug): the
// error queue is drained into the message so it does not leak into unrelated calls later.
Status openssl_error(std::string_view what) {
  std::string message = "OpenSSL " + std::string(what) + " failed";
  if (const unsigned long code = ERR_get_error(); code != 0) {
    std::array<char, 256> text{};
    ERR_error_string_n(code, text.data(), text.size());
    message += ": ";
    message += text.data();
  }
  ERR_clear_error();
  return internal_error(message);
}

const unsigned char* bytes_of(std::span<const std::byte> span) {
  return reinterpret_cast<const unsigned char*>(span.data());
}
unsigned char* bytes_of(std::span<std::byte> span) {
  return reinterpret_cast<unsigned char*>(span.data());
}

// A context keyed with `key` and `nonce`, for encryption or decryption, with `aad` fed in.
Result<CipherCtx> start_gcm(bool encrypt, std::string_view key,
                            std::span<const std::byte, 12> nonce, std::span<const std::byte> aad) {
  MESHRPC_RETURN_IF_ERROR(check_key_size(key.size()));
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return openssl_error("EVP_CIPHER_CTX_new");
  const auto* key_bytes = reinterpret_cast<const unsigned char*>(key.data());
  // Cipher first, then the nonce length, then key and nonce: the documented GCM sequence
  // (12 is the default, set anyway so the contract does not rest on a default).
  if (EVP_CipherInit_ex(ctx.get(), cipher_for(key.size()), nullptr, nullptr, nullptr,
                        encrypt ? 1 : 0) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()),
                          nullptr) != 1 ||
      EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, key_bytes, bytes_of(nonce), -1) != 1) {
    return openssl_error("AES-GCM init");
  }
  if (!aad.empty()) {
    int written = 0;
    if (EVP_CipherUpdate(ctx.get(), nullptr, &written, bytes_of(aad),
                         static_cast<int>(aad.size())) != 1) {
      return openssl_error("AES-GCM associated data");
    }
  }
  return ctx;
}

// GCM is a stream mode: Update writes exactly as many bytes as it reads, Final none.
Status run_gcm(EVP_CIPHER_CTX* ctx, std::span<const std::byte> in, unsigned char* out) {
  if (in.empty()) return Status();  // a null `out` with input would mean "more AAD"
  int written = 0;
  if (EVP_CipherUpdate(ctx, out, &written, bytes_of(in), static_cast<int>(in.size())) != 1 ||
      static_cast<size_t>(written) != in.size()) {
    return openssl_error("AES-GCM update");
  }
  return Status();
}

}  // namespace

namespace detail {

Status aes_gcm_seal(std::string_view key, std::span<const std::byte, 12> nonce,
                    std::span<const std::byte> aad, std::span<const std::byte> plaintext,
                    std::span<std::byte> out) {
  if (plaintext.size() > Keyring::kMaxMessageBytes || aad.size() > Keyring::kMaxSealedBytes ||
      out.size() != plaintext.size() + Keyring::kTagBytes) {
    return invalid_argument_error("aes_gcm_seal: bad lengths");
  }
  MESHRPC_ASSIGN_OR_RETURN(CipherCtx ctx, start_gcm(true, key, nonce, aad));
  MESHRPC_RETURN_IF_ERROR(run_gcm(ctx.get(), plaintext, bytes_of(out)));
  int written = 0;
  if (EVP_EncryptFinal_ex(ctx.get(), bytes_of(out) + plaintext.size(), &written) != 1 ||
      written != 0) {
    return openssl_error("AES-GCM final");
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(Keyring::kTagBytes),
                          bytes_of(out) + plaintext.size()) != 1) {
    return openssl_error("AES-GCM get tag");
  }
  return Status();
}

Status aes_gcm_open(std::string_view key, std::span<const std::byte, 12> nonce,
                    std::span<const std::byte> aad, std::span<const std::byte> sealed,
                    std::span<std::byte> out) {
  if (sealed.size() < Keyring::kTagBytes ||
      sealed.size() > Keyring::kMaxMessageBytes + Keyring::kTagBytes ||
      aad.size() > Keyring::kMaxSealedBytes || out.size() != sealed.size() - Keyring::kTagBytes) {
    return invalid_argument_error("aes_gcm_open: bad lengths");
  }
  const auto ciphertext = sealed.first(sealed.size() - Keyring::kTagBytes);
  const auto tag = sealed.last(Keyring::kTagBytes);
  MESHRPC_ASSIGN_OR_RETURN(CipherCtx ctx, start_gcm(false, key, nonce, aad));
  MESHRPC_RETURN_IF_ERROR(run_gcm(ctx.get(), ciphertext, bytes_of(out)));
  // OpenSSL takes the expected tag through a non-const pointer but only reads it.
  auto* tag_bytes = const_cast<unsigned char*>(bytes_of(tag));
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag.size()),
                          tag_bytes) != 1) {
    return openssl_error("AES-GCM set tag");
  }
  int written = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), bytes_of(out) + ciphertext.size(), &written) != 1) {
    ERR_clear_error();  // a tag mismatch is an expected outcome, not an OpenSSL fault
    return unauthenticated_error("AES-GCM tag mismatch");
  }
  return Status();
}

}  // namespace detail

Result<Keyring> Keyring::create(std::vector<std::string> keys) {
  if (keys.empty()) return invalid_argument_error("a keyring needs at least one key");
  Keyring keyring;
  Status status;
  for (const std::string& key : keys) {
    status = keyring.install(key);
    if (!status.ok()) break;
  }
  for (std::string& key : keys) OPENSSL_cleanse(key.data(), key.size());
  if (!status.ok()) return status;
  return keyring;
}

Result<std::string> Keyring::decode_key(std::string_view base64) {
  // Checked here rather than left to EVP_DecodeBlock, which skips surrounding whitespace and
  // decodes '=' anywhere as zero bits: a key is exactly the characters written.
  const auto invalid = [&](std::string_view why) {
    return invalid_argument_error("keyring key is not standard padded base64 (" + std::string(why) +
                                  ")");
  };
  if (base64.empty() || base64.size() % 4 != 0) {
    return invalid("length " + std::to_string(base64.size()) + " is not a positive multiple of 4");
  }
  size_t padding = 0;
  if (base64.back() == '=') padding = base64[base64.size() - 2] == '=' ? 2 : 1;
  const auto is_alphabet = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
  };
  const std::string_view data = base64.substr(0, base64.size() - padding);
  if (!std::all_of(data.begin(), data.end(), is_alphabet)) {
    return invalid("a character outside A-Z a-z 0-9 + / or '=' before the end");
  }
  // 4 characters always decode to 3 bytes; the bytes '=' stands for come off the end. Keys
  // are at most 44 characters, well inside EVP_DecodeBlock's int length.
  if (base64.size() > 64) return invalid("longer than any AES key");
  std::string key(base64.size() / 4 * 3, '\0');
  const int decoded = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(key.data()),
                                      reinterpret_cast<const unsigned char*>(base64.data()),
                                      static_cast<int>(base64.size()));
  if (decoded < 0 || static_cast<size_t>(decoded) != key.size()) {
    ERR_clear_error();
    return invalid("rejected by the decoder");
  }
  key.resize(key.size() - padding);
  if (Status status = check_key_size(key.size()); !status.ok()) {
    OPENSSL_cleanse(key.data(), key.size());
    return status;
  }
  return key;
}

Keyring::Keyring(Keyring&& other) noexcept {
  std::unique_lock lock(other.mutex_);
  keys_ = other.keys_;
  key_count_ = other.key_count_;
  other.wipe();
}

Keyring& Keyring::operator=(Keyring&& other) noexcept {
  if (this == &other) return *this;
  std::scoped_lock lock(mutex_, other.mutex_);
  wipe();
  keys_ = other.keys_;
  key_count_ = other.key_count_;
  other.wipe();
  return *this;
}

Keyring::~Keyring() { wipe(); }

void Keyring::wipe() {
  OPENSSL_cleanse(keys_.data(), sizeof(keys_));
  for (Key& key : keys_) key.size = 0;
  key_count_ = 0;
}

size_t Keyring::find(std::string_view key) const {
  for (size_t i = 0; i < key_count_; ++i) {
    // Constant time, so comparing keys says nothing about how much of a guess was right.
    if (keys_[i].size == key.size() &&
        CRYPTO_memcmp(keys_[i].bytes.data(), key.data(), key.size()) == 0) {
      return i;
    }
  }
  return key_count_;
}

Status Keyring::install(std::string_view key) {
  MESHRPC_RETURN_IF_ERROR(check_key_size(key.size()));
  if (find(key) < key_count_) return Status();
  if (key_count_ == kMaxKeys) {
    return resource_exhausted_error("keyring already holds kMaxKeys " + std::to_string(kMaxKeys) +
                                    " keys; remove one first");
  }
  Key& slot = keys_[key_count_++];
  std::copy(key.begin(), key.end(), reinterpret_cast<char*>(slot.bytes.data()));
  slot.size = key.size();
  return Status();
}

Status Keyring::add_key(std::string key) {
  std::unique_lock lock(mutex_);
  Status status = install(key);
  OPENSSL_cleanse(key.data(), key.size());
  return status;
}

Status Keyring::use_key(std::string_view key) {
  std::unique_lock lock(mutex_);
  const size_t index = find(key);
  if (index == key_count_) return not_found_error("use_key: key is not installed in the keyring");
  // The new primary moves to the front; the others keep their order behind it.
  std::rotate(keys_.begin(), keys_.begin() + static_cast<ptrdiff_t>(index),
              keys_.begin() + static_cast<ptrdiff_t>(index) + 1);
  return Status();
}

Status Keyring::remove_key(std::string_view key) {
  std::unique_lock lock(mutex_);
  const size_t index = find(key);
  if (index == key_count_)
    return not_found_error("remove_key: key is not installed in the keyring");
  if (index == 0) {
    return failed_precondition_error(
        "remove_key: the key is the primary; make another key primary (use_key) first");
  }
  // Shift the removed key to the end, then overwrite its one remaining copy.
  std::rotate(keys_.begin() + static_cast<ptrdiff_t>(index),
              keys_.begin() + static_cast<ptrdiff_t>(index) + 1,
              keys_.begin() + static_cast<ptrdiff_t>(key_count_));
  --key_count_;
  OPENSSL_cleanse(&keys_[key_count_], sizeof(Key));
  keys_[key_count_].size = 0;
  return Status();
}

size_t Keyring::key_count() const {
  std::shared_lock lock(mutex_);
  return key_count_;
}

bool Keyring::contains(std::string_view key) const {
  std::shared_lock lock(mutex_);
  return find(key) < key_count_;
}

bool Keyring::is_primary(std::string_view key) const {
  std::shared_lock lock(mutex_);
  return key_count_ > 0 && find(key) == 0;
}

Result<Buffer> Keyring::seal(std::span<const std::byte> plaintext, const Nonce& nonce) const {
  return seal_as(kVersion, kMaxPlaintextBytes, plaintext, nonce);
}

Result<Buffer> Keyring::open(std::span<const std::byte> sealed) const {
  return open_as(kVersion, kMaxSealedBytes, sealed);
}

Result<Buffer> Keyring::seal_message(std::span<const std::byte> plaintext,
                                     const Nonce& nonce) const {
  return seal_as(kMessageVersion, kMaxMessageBytes, plaintext, nonce);
}

Result<Buffer> Keyring::open_message(std::span<const std::byte> sealed) const {
  return open_as(kMessageVersion, kMaxMessageBytes + kSealOverhead, sealed);
}

Result<Buffer> Keyring::seal_as(uint8_t version, size_t max_plaintext,
                                std::span<const std::byte> plaintext, const Nonce& nonce) const {
  if (plaintext.size() > max_plaintext) {
    return resource_exhausted_error("plaintext of " + std::to_string(plaintext.size()) +
                                    " bytes exceeds the limit of " + std::to_string(max_plaintext));
  }
  std::shared_lock lock(mutex_);
  if (key_count_ == 0) return failed_precondition_error("seal: keyring has no keys (moved from)");
  const size_t sealed_size = plaintext.size() + kSealOverhead;
  Buffer out;
  std::span<std::byte> dst = std::as_writable_bytes(out.prepare(sealed_size)).first(sealed_size);
  dst[0] = std::byte{version};
  std::copy(nonce.begin(), nonce.end(), dst.begin() + 1);
  MESHRPC_RETURN_IF_ERROR(detail::aes_gcm_seal(keys_[0].view(), nonce, dst.first(1), plaintext,
                                               dst.subspan(1 + kNonceBytes)));
  out.commit(sealed_size);
  return out;
}

Result<Buffer> Keyring::open_as(uint8_t version, size_t max_sealed,
                                std::span<const std::byte> sealed) const {
  if (sealed.size() < kSealOverhead || sealed.size() > max_sealed) {
    return invalid_argument_error("sealed message of " + std::to_string(sealed.size()) +
                                  " bytes is outside [" + std::to_string(kSealOverhead) + ", " +
                                  std::to_string(max_sealed) + "]");
  }
  const auto found = static_cast<uint8_t>(sealed[0]);
  if (found != version) {
    return invalid_argument_error("keyring format version " + std::to_string(found) + " where " +
                                  std::to_string(version) + " belongs");
  }
  const std::span<const std::byte, kNonceBytes> nonce = sealed.subspan<1, kNonceBytes>();
  const auto body = sealed.subspan(1 + kNonceBytes);
  const size_t plaintext_size = body.size() - kTagBytes;
  Buffer out;
  // Every attempt writes here; only an authenticated result is committed.
  std::span<std::byte> dst =
      std::as_writable_bytes(out.prepare(plaintext_size)).first(plaintext_size);
  std::shared_lock lock(mutex_);
  for (size_t i = 0; i < key_count_; ++i) {
    Status status = detail::aes_gcm_open(keys_[i].view(), nonce, sealed.first(1), body, dst);
    if (status.ok()) {
      out.commit(plaintext_size);
      return out;
    }
    if (status.code() != StatusCode::kUnauthenticated) return status;
  }
  return unauthenticated_error("no key in the keyring (" + std::to_string(key_count_) +
                               " installed) opens the sealed message");
}

}  // namespace meshrpc::membership
