// The connection preface, and telling a meshrpc connection from HTTP/1.1 on the same port.
//
// A client's first 8 bytes on a connection are kPreface:
//
//   +------+-----+-----+-----+-----+------+------+------+
//   | 0x89 | 'M' | 'R' | 'P' | 'C' | 0x0D | 0x0A | 0x1A |
//   +------+-----+-----+-----+-----+------+------+------+
//
// 0x89 is not ASCII, so no HTTP request starts like this and a server can sniff the protocol
// from the first byte; "MRPC" names it to a human reading a capture; CR LF and 0x1A (DOS
// end-of-file) are damaged by anything that rewrites line endings or truncates text, as in
// the PNG signature. Then frames follow, the first a SETTINGS.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

#include "meshrpc/base/buffer.h"

namespace meshrpc::wire {

inline constexpr std::array<char, 8> kPreface = {'\x89', 'M',    'R',    'P',
                                                 'C',    '\x0D', '\x0A', '\x1A'};

inline constexpr std::string_view preface_view() { return {kPreface.data(), kPreface.size()}; }

// Bytes that always suffice to classify a connection: the preface, and the longest HTTP
// method token we sniff with its space ("OPTIONS ", "CONNECT ").
inline constexpr size_t kClassifyBytes = 8;

enum class ConnectionStart {
  kMeshrpc,        // the first 8 bytes are kPreface: consume them, then decode frames
  kHttp,           // starts with an HTTP/1.1 method token and a space: hand to the HTTP server
  kNeedMoreBytes,  // a prefix of either: read more (at most kClassifyBytes in total)
  kGarbage,        // neither: close the connection
};

// Classifies the first bytes of a connection (any number; only the first kClassifyBytes are
// looked at). Pure; never reads past `first_bytes`.
ConnectionStart classify_connection_start(std::string_view first_bytes);
// The same over the front of a read buffer, without consuming it.
ConnectionStart classify_connection_start(const Buffer& first_bytes);

}  // namespace meshrpc::wire
