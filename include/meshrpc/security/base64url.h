// Base64url without padding (RFC 4648 section 5, as RFC 7515 section 2 uses it for JWS): the
// encoding of every part of a compact JWT. Built on OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock.
//
// Decoding is strict, because a token's bytes are attacker input: only the 64 URL-safe
// characters, no padding, no whitespace, and a canonical last character (unused low bits zero),
// so one byte string has exactly one spelling.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace meshrpc::security {

std::string base64url_encode(std::string_view bytes);
// The bytes `text` spells, or nullopt when it is not canonical unpadded base64url.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace meshrpc::security
