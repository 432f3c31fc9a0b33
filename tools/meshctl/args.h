// Parsing of meshctl's command-line values: addresses, method names, durations, metadata.
// Pure functions; a bad value is INVALID_ARGUMENT with a message naming it, which meshctl
// reports as a usage error (exit 64).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>

#include "meshrpc/base/result.h"
#include "meshrpc/transport/address.h"

namespace meshrpc::meshctl {

// Exit code of a usage error (BSD sysexits.h EX_USAGE): above every Status code (0..16), so a
// script can tell "you called meshctl wrong" from "the call failed".
inline constexpr int kExitUsage = 64;

// "host:port", "1.2.3.4:7001", "[::1]:7001"; the port must not be 0.
Result<transport::Address> parse_server_address(std::string_view text);

// "pkg.Svc.Method", "pkg.Svc/Method" or "/pkg.Svc/Method" -> "/pkg.Svc/Method", the gateway's
// HTTP path.
Result<std::string> parse_method_path(std::string_view text);

// "2s", "500ms", "1m", "1.5s", "250us", "1h": a number (decimals allowed) and a unit among
// ns, us, ms, s, m, h. Must be positive and at most 24 h.
Result<std::chrono::nanoseconds> parse_duration(std::string_view text);

// "key=value" -> {key, value}. The key is lower-cased (HTTP header names are case-insensitive)
// and limited to letters, digits, '-', '_' and '.', since it travels as the header name
// "meshrpc-meta-<key>"; the value may be empty but holds no CR/LF.
Result<std::pair<std::string, std::string>> parse_metadata(std::string_view text);

// 1234567 -> "1,234,567".
std::string with_thousands(uint64_t value);

// A latency for people: "850ns", "52.1us", "1.23ms", "2.50s".
std::string format_latency(std::chrono::nanoseconds latency);

}  // namespace meshrpc::meshctl
