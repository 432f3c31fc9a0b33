#include "args.h"

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "meshrpc/core/method_name.h"

namespace meshrpc::meshctl {

Result<transport::Address> parse_server_address(std::string_view text) {
  Result<transport::Address> address = transport::Address::parse(text);
  if (!address.ok()) {
    return invalid_argument_error(
        "address '" + std::string(text) +
        "' is not HOST:PORT or [IPV6]:PORT: " + std::string(address.status().message()));
  }
  if (address->port == 0) {
    return invalid_argument_error("address '" + std::string(text) + "' has port 0");
  }
  return address;
}

Result<std::string> parse_method_path(std::string_view text) {
  // canonical_method_name knows the dotted and the path forms; "pkg.Svc/Method" is the path
  // form without its leading slash.
  std::string canonical =
      (!text.empty() && text.front() != '/' && text.find('/') != std::string_view::npos)
          ? "/" + std::string(text)
          : core::canonical_method_name(text);
  Result<core::MethodNameParts> parts = core::split_method_name(canonical);
  if (!parts.ok() || parts->service.empty() || parts->method.empty()) {
    return invalid_argument_error("method '" + std::string(text) +
                                  "' is not package.Service.Method, package.Service/Method or "
                                  "/package.Service/Method");
  }
  return canonical;
}

Result<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return invalid_argument_error("duration '" + std::string(text) + "' " + std::string(why) +
                                  " (examples: 500ms, 2s, 1.5s, 1m)");
  };
  size_t unit_at = 0;
  while (unit_at < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[unit_at])) || text[unit_at] == '.')) {
    ++unit_at;
  }
  double number = 0;
  const std::string_view digits = text.substr(0, unit_at);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    return bad("does not start with a number");
  }
  struct Unit {
    std::string_view name;
    double nanoseconds;
  };
  static constexpr std::array<Unit, 6> kUnits = {
      {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}}};
  const std::string_view unit = text.substr(unit_at);
  for (const Unit& known : kUnits) {
    if (unit != known.name) continue;
    const double nanoseconds = number * known.nanoseconds;
    // 24 h: far beyond any call or benchmark; keeps the value clear of int64 overflow.
    if (!(nanoseconds >= 1) || nanoseconds > 24 * 3600e9) {
      return bad("must be at least 1ns and at most 24h");
    }
    return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(nanoseconds)));
  }
  return bad("has no unit among ns, us, ms, s, m, h");
}

Result<std::pair<std::string, std::string>> parse_metadata(std::string_view text) {
  const size_t equals = text.find('=');
  if (equals == std::string_view::npos || equals == 0) {
    return invalid_argument_error("metadata '" + std::string(text) + "' is not KEY=VALUE");
  }
  std::string key(text.substr(0, equals));
  for (char& c : key) {
    const auto u = static_cast<unsigned char>(c);
    if (!std::isalnum(u) && c != '-' && c != '_' && c != '.') {
      return invalid_argument_error("metadata key '" + key +
                                    "' may hold only letters, digits, '-', '_' and '.'");
    }
    c = static_cast<char>(std::tolower(u));
  }
  std::string value(text.substr(equals + 1));
  if (value.find_first_of("\r\n") != std::string::npos) {
    return invalid_argument_error("metadata value of '" + key + "' holds a line break");
  }
  return std::pair{std::move(key), std::move(value)};
}

std::string with_thousands(uint64_t value) {
  std::string digits = std::to_string(value);
  std::string out;
  out.reserve(digits.size() + digits.size() / 3);
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string format_latency(std::chrono::nanoseconds latency) {
  const auto ns = static_cast<double>(latency.count());
  std::array<char, 32> text{};
  if (ns < 1e3) {
    std::snprintf(text.data(), text.size(), "%.0fns", ns);
  } else if (ns < 1e6) {
    std::snprintf(text.data(), text.size(), "%.1fus", ns / 1e3);
  } else if (ns < 1e9) {
    std::snprintf(text.data(), text.size(), "%.2fms", ns / 1e6);
  } else {
    std::snprintf(text.data(), text.size(), "%.2fs", ns / 1e9);
  }
  return text.data();
}

}  // namespace meshrpc::meshctl
