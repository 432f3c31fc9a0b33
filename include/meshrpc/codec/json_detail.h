// The non-template half of struct_json.h: JSON text for numbers, strings and base64, member
// name matching, the parser, and the state a parse carries (its path, for error messages).
// Compiled once in src/codec/struct_json.cc so the templates stay thin. Not for direct use.
#pragma once

#include <boost/json/memory_resource.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "meshrpc/base/status.h"

namespace meshrpc::codec::json_detail {

// ---- writing: each appends one JSON value to `out` ----

// `text` quoted and escaped (RFC 8259). Bytes are copied as they are, so text that is not
// UTF-8 makes JSON that strict parsers, ours included, reject.
void append_quoted(std::string& out, std::string_view text);
// Quoted standard base64 with padding, as protobuf prints bytes.
void append_base64(std::string& out, std::span<const std::byte> bytes);
// `quoted`: 64-bit values are JSON strings in protobuf's mapping (JavaScript numbers hold
// only 53 bits).
void append_signed(std::string& out, int64_t value, bool quoted);
void append_unsigned(std::string& out, uint64_t value, bool quoted);
// The shortest text that reads back to the same value; "NaN", "Infinity" and "-Infinity"
// (quoted) for the values JSON numbers cannot hold.
void append_double(std::string& out, double value);
void append_float(std::string& out, float value);

// ---- base64 ----

// Standard or URL-safe base64 (protobuf accepts both), padded or not, into `out`. False on
// any other character, misplaced padding or an impossible length.
[[nodiscard]] bool decode_base64(std::string_view text, std::vector<std::byte>& out);

// ---- names ----

// protoc's JSON name for a field: underscores dropped, the letter after each one upper-cased
// (chunk_index -> chunkIndex).
std::string json_name(std::string_view member_name);
// Whether a JSON key names the member: its own name or json_name() of it.
bool key_matches(std::string_view key, std::string_view member_name);

// ---- reading ----

// Parses `text` into `out`, allocating from `resource` (which must outlive `out`). JSON
// nested deeper than `max_depth` objects and arrays fails, before it can use the stack.
// INVALID_ARGUMENT naming `struct_name`, the offset and the parser's reason on failure.
// Doubles are read correctly rounded (Boost.JSON 1.81 alone is off by an ulp on about a
// third of shortest-form doubles), so values printed by protobuf come back exactly.
Status parse_json(std::string_view text, std::string_view struct_name, size_t max_depth,
                  boost::json::memory_resource* resource, boost::json::value& out);

// What a parse is doing: the path to the value being read ("Outer.items[2].name") and, once
// something failed, why. One per parse, on one thread.
class ReadState {
 public:
  // `root` is the struct's name, where every path starts.
  ReadState(std::string_view root, bool ignore_unknown_fields);

  bool ignore_unknown_fields() const { return ignore_unknown_fields_; }

  // Extend the path; each returns the mark to pass to pop() to undo it.
  size_t push_field(std::string_view name);
  size_t push_index(size_t index);
  size_t push_key(std::string_view key);
  void pop(size_t mark) { path_.resize(mark); }

  // Records "<path>: <message>" as the error. Returns false, for `return state.fail(...)`.
  bool fail(std::string_view message);
  // INVALID_ARGUMENT with the recorded error.
  Status status() const;

  // Each reads one JSON value as the named type, or fails naming what it expected and what
  // it got: "expected an integer in [0, 255], got number 300".
  bool read_bool(const boost::json::value& value, bool& out);
  // Integers: JSON numbers with no fraction, or decimal strings (how 64-bit values are sent).
  bool read_signed(const boost::json::value& value, int64_t min, int64_t max, int64_t& out);
  bool read_unsigned(const boost::json::value& value, uint64_t max, uint64_t& out);
  // Numbers, numeric strings, or "NaN", "Infinity", "-Infinity".
  bool read_double(const boost::json::value& value, double& out);
  bool read_float(const boost::json::value& value, float& out);
  bool read_string(const boost::json::value& value, std::string& out);
  bool read_bytes(const boost::json::value& value, std::vector<std::byte>& out);
  // Map keys are JSON strings; integer ones are decimal.
  bool read_signed_key(std::string_view key, int64_t min, int64_t max, int64_t& out);
  bool read_unsigned_key(std::string_view key, uint64_t max, uint64_t& out);

  // The object or array `value` is; null after fail() if it is something else.
  const boost::json::object* object_of(const boost::json::value& value);
  const boost::json::array* array_of(const boost::json::value& value);

  // A key no member matches: false after fail() unless unknown fields are ignored.
  bool unknown_field(std::string_view key);
  // A member given twice, e.g. as "chunk_index" and "chunkIndex": fails.
  bool duplicate_field(std::string_view name, std::string_view first_key,
                       std::string_view second_key);

 private:
  bool mismatch(std::string_view expected, const boost::json::value& got);

  std::string path_;
  std::string error_;
  bool ignore_unknown_fields_;
};

}  // namespace meshrpc::codec::json_detail
