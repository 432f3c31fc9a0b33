#include "meshrpc/core/trace.h"

#include <algorithm>
#include <charconv>

namespace meshrpc::core {

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

void append_hex(std::string& out, uint64_t value, int digits) {
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) {
    out += kHexDigits[(value >> shift) & 0xf];
  }
}

// Exactly `hex.size()` (<= 16) lower-case hex digits into a value; nullopt on any other character.
std::optional<uint64_t> parse_hex(std::string_view hex) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), value, 16);
  if (ec != std::errc() || end != hex.data() + hex.size()) return std::nullopt;
  // W3C: lower-case hex only (from_chars would take upper case too).
  const bool lower_hex = std::all_of(hex.begin(), hex.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
  if (!lower_hex) return std::nullopt;
  return value;
}

// Layout of a version-00 traceparent: "vv-" + 32 + "-" + 16 + "-" + "ff".
constexpr size_t kVersion00Size = 2 + 1 + 32 + 1 + 16 + 1 + 2;

}  // namespace

std::string TraceId::to_hex() const {
  std::string out;
  out.reserve(32);
  append_hex(out, high, 16);
  append_hex(out, low, 16);
  return out;
}

std::optional<TraceId> TraceId::from_hex(std::string_view hex) {
  if (hex.size() != 32) return std::nullopt;
  auto high = parse_hex(hex.substr(0, 16));
  auto low = parse_hex(hex.substr(16));
  if (!high || !low) return std::nullopt;
  TraceId id{*high, *low};
  if (!id.valid()) return std::nullopt;
  return id;
}

std::string span_id_hex(uint64_t span_id) {
  std::string out;
  out.reserve(16);
  append_hex(out, span_id, 16);
  return out;
}

std::string TraceParent::to_string() const {
  std::string out;
  out.reserve(kVersion00Size);
  out += "00-";
  out += trace_id.to_hex();
  out += '-';
  append_hex(out, parent_id, 16);
  out += '-';
  append_hex(out, flags, 2);
  return out;
}

std::optional<TraceParent> TraceParent::parse(std::string_view text) {
  if (text.size() < kVersion00Size) return std::nullopt;
  if (text[2] != '-' || text[35] != '-' || text[52] != '-') return std::nullopt;
  auto version = parse_hex(text.substr(0, 2));
  if (!version || *version == 0xff) return std::nullopt;
  // Version 00 is exactly this long; a later version may add fields after a '-'.
  if (text.size() > kVersion00Size && (*version == 0 || text[kVersion00Size] != '-')) {
    return std::nullopt;
  }
  auto trace_id = TraceId::from_hex(text.substr(3, 32));
  auto parent_id = parse_hex(text.substr(36, 16));
  auto flags = parse_hex(text.substr(53, 2));
  if (!trace_id || !parent_id || *parent_id == 0 || !flags) return std::nullopt;
  return TraceParent{*trace_id, *parent_id, static_cast<uint8_t>(*flags)};
}

uint64_t new_span_id(runtime::Env& env) {
  uint64_t id = 0;
  while (id == 0) id = env.random_u64();
  return id;
}

TraceId new_trace_id(runtime::Env& env) {
  TraceId id;
  while (!id.valid()) id = TraceId{env.random_u64(), env.random_u64()};
  return id;
}

std::optional<TraceParent> find_traceparent(const Metadata& metadata) {
  for (const auto& [key, value] : metadata) {
    if (key == kTraceparentKey) return TraceParent::parse(value);
  }
  return std::nullopt;
}

void set_traceparent(Metadata& metadata, const TraceParent& value) {
  std::erase_if(metadata, [](const auto& entry) { return entry.first == kTraceparentKey; });
  metadata.emplace_back(std::string(kTraceparentKey), value.to_string());
}

}  // namespace meshrpc::core
