#include "meshrpc/security/base64url.h"

#include <openssl/evp.h>

#include <string>

namespace meshrpc::security {
namespace {

// EVP_EncodeBlock/EVP_DecodeBlock take int lengths; tokens are bounded far below this
// (TokenVerifierOptions::max_token_bytes), so larger input is refused rather than chunked.
constexpr size_t kMaxInputBytes = 1 << 24;

bool is_base64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  if (bytes.empty() || bytes.size() > kMaxInputBytes) return {};
  // EVP_EncodeBlock writes 4 * ceil(n / 3) characters and a terminating NUL.
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(written));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  if (text.empty()) return std::string();
  // A length of 1 mod 4 cannot come from any byte string.
  if (text.size() > kMaxInputBytes || text.size() % 4 == 1) return std::nullopt;
  std::string padded;
  padded.reserve(text.size() + 3);
  for (char c : text) {
    if (!is_base64url_char(c)) return std::nullopt;
    padded += c == '-' ? '+' : c == '_' ? '/' : c;
  }
  const size_t pad = (4 - text.size() % 4) % 4;
  padded.append(pad, '=');
  // EVP_DecodeBlock decodes '=' as zero bits and counts them: 3 bytes per 4 characters.
  std::string out(padded.size() / 4 * 3, '\0');
  const int decoded = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(padded.data()),
                                      static_cast<int>(padded.size()));
  if (decoded < 0 || static_cast<size_t>(decoded) != out.size()) return std::nullopt;
  out.resize(out.size() - pad);
  // Canonical: the unused low bits of the last character are zero, so re-encoding gives the
  // same text (otherwise one signature would have several spellings).
  if (base64url_encode(out) != text) return std::nullopt;
  return out;
}

}  // namespace meshrpc::security
