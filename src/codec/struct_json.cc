#include <openssl/evp.h>

#include <algorithm>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/value_stack.hpp>
#include <charconv>
#include <climits>
#include <cmath>
#include <limits>
#include <system_error>

#include "meshrpc/codec/json_detail.h"

namespace meshrpc::codec::json_detail {

namespace {

// Values quoted in error messages are cut to this many bytes: enough to recognise them, and
// a megabyte-long string in a request does not become a megabyte-long Status.
constexpr size_t kMaxQuotedBytes = 64;

// EVP_EncodeBlock and EVP_DecodeBlock take int lengths: larger inputs go through in chunks
// of these sizes (multiples of 3 and of 4, so no chunk but the last has padding).
constexpr size_t kEncodeChunkBytes = 3 * 16384;
constexpr size_t kDecodeChunkChars = 4 * 16384;

template <typename T>
void append_number(std::string& out, T value) {
  char text[32];  // the longest shortest-form double is 24 characters
  const auto result = std::to_chars(text, text + sizeof(text), value);
  out.append(text, result.ptr);
}

// `text` quoted, cut at kMaxQuotedBytes on a UTF-8 character boundary.
std::string quoted_excerpt(std::string_view text) {
  std::string out;
  if (text.size() <= kMaxQuotedBytes) {
    append_quoted(out, text);
    return out;
  }
  size_t end = kMaxQuotedBytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  append_quoted(out, text.substr(0, end));
  out.insert(out.size() - 1, "...");
  return out;
}

std::string_view as_std(boost::json::string_view text) { return {text.data(), text.size()}; }

// "string \"abc\"", "number 1.5", "an object": what a mismatched value was.
std::string describe(const boost::json::value& value) {
  std::string out;
  switch (value.kind()) {
    case boost::json::kind::null:
      return "null";
    case boost::json::kind::bool_:
      return value.get_bool() ? "true" : "false";
    case boost::json::kind::int64:
      out = "number ";
      append_number(out, value.get_int64());
      return out;
    case boost::json::kind::uint64:
      out = "number ";
      append_number(out, value.get_uint64());
      return out;
    case boost::json::kind::double_:
      out = "number ";
      append_number(out, value.get_double());
      return out;
    case boost::json::kind::string:
      return "string " + quoted_excerpt(as_std(value.get_string()));
    case boost::json::kind::array:
      return "an array";
    case boost::json::kind::object:
      return "an object";
  }
  return "a JSON value";
}

// An integer as sign and magnitude, so int64 and uint64 ranges are both covered.
struct Integer {
  bool negative = false;
  uint64_t magnitude = 0;
};

enum class IntegerParse { kOk, kNotInteger, kTooLarge };

// Decimal text: an optional '-' and digits, nothing else (no '+', spaces or exponent).
IntegerParse parse_decimal(std::string_view text, Integer& out) {
  out.negative = !text.empty() && text.front() == '-';
  if (out.negative) text.remove_prefix(1);
  if (text.empty() || text.front() < '0' || text.front() > '9') return IntegerParse::kNotInteger;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out.magnitude);
  if (end != text.data() + text.size()) return IntegerParse::kNotInteger;
  if (error == std::errc::result_out_of_range) return IntegerParse::kTooLarge;
  return error == std::errc() ? IntegerParse::kOk : IntegerParse::kNotInteger;
}

IntegerParse integer_of(const boost::json::value& value, Integer& out) {
  switch (value.kind()) {
    case boost::json::kind::int64: {
      const int64_t v = value.get_int64();
      out.negative = v < 0;
      // -(v + 1) + 1: no overflow for INT64_MIN.
      out.magnitude = v < 0 ? static_cast<uint64_t>(-(v + 1)) + 1 : static_cast<uint64_t>(v);
      return IntegerParse::kOk;
    }
    case boost::json::kind::uint64:
      out = {false, value.get_uint64()};
      return IntegerParse::kOk;
    case boost::json::kind::double_: {
      // Protobuf accepts 1.0 and 1e3 for integers: any double with no fraction.
      const double d = value.get_double();
      if (!std::isfinite(d) || std::trunc(d) != d) return IntegerParse::kNotInteger;
      if (std::fabs(d) >= 0x1p64) return IntegerParse::kTooLarge;
      out = {d < 0, static_cast<uint64_t>(std::fabs(d))};
      return IntegerParse::kOk;
    }
    case boost::json::kind::string:
      return parse_decimal(as_std(value.get_string()), out);
    default:
      return IntegerParse::kNotInteger;
  }
}

bool to_signed(const Integer& value, int64_t min, int64_t max, int64_t& out) {
  if (value.negative) {
    const uint64_t min_magnitude = static_cast<uint64_t>(-(min + 1)) + 1;
    if (min >= 0 ? value.magnitude != 0 : value.magnitude > min_magnitude) return false;
    out = value.magnitude == 0 ? 0 : -static_cast<int64_t>(value.magnitude - 1) - 1;
    return true;
  }
  if (value.magnitude > static_cast<uint64_t>(max)) return false;
  out = static_cast<int64_t>(value.magnitude);
  return true;
}

bool to_unsigned(const Integer& value, uint64_t max, uint64_t& out) {
  if ((value.negative && value.magnitude != 0) || value.magnitude > max) return false;
  out = value.magnitude;
  return true;
}

template <typename T>
std::string integer_range(T min, T max) {
  std::string out = "an integer in [";
  append_number(out, min);
  out += ", ";
  append_number(out, max);
  out += ']';
  return out;
}

// A JSON number's text or a numeric string as a finite double, correctly rounded.
bool parse_double_text(std::string_view text, double& out) {
  const std::string_view digits = text.substr(!text.empty() && text.front() == '-' ? 1 : 0);
  if (digits.empty() || digits.front() < '0' || digits.front() > '9') return false;  // no "inf"
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc() && end == text.data() + text.size() && std::isfinite(out);
}

// Boost.JSON's own handler (detail/handler.hpp, which builds the value tree) with one change:
// a double is re-read from its text by std::from_chars, which rounds correctly.
class ExactDoubleHandler {
 public:
  static constexpr size_t max_object_size = boost::json::object::max_size();
  static constexpr size_t max_array_size = boost::json::array::max_size();
  static constexpr size_t max_key_size = boost::json::string::max_size();
  static constexpr size_t max_string_size = boost::json::string::max_size();

  explicit ExactDoubleHandler(boost::json::storage_ptr storage) { stack_.reset(storage); }

  boost::json::value release() { return stack_.release(); }

  bool on_document_begin(boost::json::error_code&) { return true; }
  bool on_document_end(boost::json::error_code&) { return true; }
  bool on_object_begin(boost::json::error_code&) { return true; }
  bool on_object_end(size_t n, boost::json::error_code&) {
    stack_.push_object(n);
    return true;
  }
  bool on_array_begin(boost::json::error_code&) { return true; }
  bool on_array_end(size_t n, boost::json::error_code&) {
    stack_.push_array(n);
    return true;
  }
  bool on_key_part(boost::json::string_view s, size_t, boost::json::error_code&) {
    stack_.push_chars(s);
    return true;
  }
  bool on_key(boost::json::string_view s, size_t, boost::json::error_code&) {
    stack_.push_key(s);
    return true;
  }
  bool on_string_part(boost::json::string_view s, size_t, boost::json::error_code&) {
    stack_.push_chars(s);
    return true;
  }
  bool on_string(boost::json::string_view s, size_t, boost::json::error_code&) {
    stack_.push_string(s);
    return true;
  }
  bool on_number_part(boost::json::string_view s, boost::json::error_code&) {
    number_.append(s.data(), s.size());
    return true;
  }
  bool on_int64(int64_t i, boost::json::string_view s, boost::json::error_code&) {
    number_.append(s.data(), s.size());
    // "-0" is an integer to Boost, but a double member must keep its sign (protobuf prints
    // -0.0 so); integer members read the double -0 as 0 all the same.
    if (i == 0 && !number_.empty() && number_.front() == '-')
      stack_.push_double(-0.0);
    else
      stack_.push_int64(i);
    number_.clear();
    return true;
  }
  bool on_uint64(uint64_t u, boost::json::string_view, boost::json::error_code&) {
    number_.clear();
    stack_.push_uint64(u);
    return true;
  }
  bool on_double(double d, boost::json::string_view s, boost::json::error_code&) {
    number_.append(s.data(), s.size());
    double exact = 0;
    // Out of double's range, Boost's value stands (read_double rejects what is not finite).
    if (parse_double_text(number_, exact)) d = exact;
    number_.clear();
    stack_.push_double(d);
    return true;
  }
  bool on_bool(bool b, boost::json::error_code&) {
    stack_.push_bool(b);
    return true;
  }
  bool on_null(boost::json::error_code&) {
    stack_.push_null();
    return true;
  }
  bool on_comment_part(boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_comment(boost::json::string_view, boost::json::error_code&) { return true; }

 private:
  boost::json::value_stack stack_;
  std::string number_;  // the text of a number split across on_number_part calls
};

constexpr bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

}  // namespace

void append_quoted(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + text.size() + 2);
  out += '"';
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out += kHex[static_cast<unsigned char>(c) >> 4];
          out += kHex[static_cast<unsigned char>(c) & 0xF];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void append_base64(std::string& out, std::span<const std::byte> bytes) {
  out += '"';
  const size_t start = out.size();
  // EVP_EncodeBlock writes a terminating NUL after the 4 * ceil(n / 3) characters.
  out.resize(start + (bytes.size() + 2) / 3 * 4 + 1);
  auto* to = reinterpret_cast<unsigned char*>(out.data() + start);
  for (size_t done = 0; done < bytes.size(); done += kEncodeChunkBytes) {
    const size_t n = std::min(kEncodeChunkBytes, bytes.size() - done);
    to += EVP_EncodeBlock(to, reinterpret_cast<const unsigned char*>(bytes.data() + done),
                          static_cast<int>(n));
  }
  out.back() = '"';  // over the NUL
}

void append_signed(std::string& out, int64_t value, bool quoted) {
  if (quoted) out += '"';
  append_number(out, value);
  if (quoted) out += '"';
}

void append_unsigned(std::string& out, uint64_t value, bool quoted) {
  if (quoted) out += '"';
  append_number(out, value);
  if (quoted) out += '"';
}

void append_double(std::string& out, double value) {
  if (std::isnan(value))
    out += "\"NaN\"";
  else if (std::isinf(value))
    out += value > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  else
    append_number(out, value);
}

void append_float(std::string& out, float value) {
  // As a float, not widened: 0.1f prints "0.1", as protobuf prints it, not 0.10000000149011612.
  if (std::isfinite(value))
    append_number(out, value);
  else
    append_double(out, value);
}

bool decode_base64(std::string_view text, std::vector<std::byte>& out) {
  std::string padded(text);
  std::replace(padded.begin(), padded.end(), '-', '+');  // URL-safe alphabet
  std::replace(padded.begin(), padded.end(), '_', '/');
  size_t data_chars = padded.size();
  while (data_chars > 0 && padded[data_chars - 1] == '=') --data_chars;
  const size_t given_padding = padded.size() - data_chars;
  if (given_padding > 2 || (given_padding > 0 && padded.size() % 4 != 0)) return false;
  if (data_chars % 4 == 1) return false;  // 6 bits cannot end a byte
  if (!std::all_of(padded.begin(), padded.begin() + static_cast<ptrdiff_t>(data_chars),
                   is_base64_char)) {
    return false;
  }
  padded.resize(data_chars);
  padded.append((4 - data_chars % 4) % 4, '=');
  // EVP_DecodeBlock decodes '=' as zero bits and counts the bytes they make: 3 per 4
  // characters always. Those padding bytes come off the end afterwards.
  const size_t padding = padded.size() - data_chars;
  out.resize(padded.size() / 4 * 3);
  auto* to = reinterpret_cast<unsigned char*>(out.data());
  for (size_t done = 0; done < padded.size(); done += kDecodeChunkChars) {
    const size_t n = std::min(kDecodeChunkChars, padded.size() - done);
    const int decoded = EVP_DecodeBlock(
        to, reinterpret_cast<const unsigned char*>(padded.data() + done), static_cast<int>(n));
    if (decoded < 0) return false;
    to += decoded;
  }
  out.resize(out.size() - padding);
  return true;
}

std::string json_name(std::string_view member_name) {
  std::string out;
  bool upper_next = false;
  for (const char c : member_name) {
    if (c == '_') {
      upper_next = true;
    } else if (upper_next) {
      out += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
      upper_next = false;
    } else {
      out += c;
    }
  }
  return out;
}

bool key_matches(std::string_view key, std::string_view member_name) {
  if (key == member_name) return true;
  // key == json_name(member_name), without building it.
  size_t k = 0;
  bool upper_next = false;
  for (const char c : member_name) {
    if (c == '_') {
      upper_next = true;
      continue;
    }
    const char expected =
        (upper_next && c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    upper_next = false;
    if (k == key.size() || key[k] != expected) return false;
    ++k;
  }
  return k == key.size();
}

Status parse_json(std::string_view text, std::string_view struct_name, size_t max_depth,
                  boost::json::memory_resource* resource, boost::json::value& out) {
  boost::json::parse_options options;
  options.max_depth = max_depth;
  boost::json::basic_parser<ExactDoubleHandler> parser(options, boost::json::storage_ptr(resource));
  boost::json::error_code error;
  const size_t used = parser.write_some(false, text.data(), text.size(), error);
  if (!error && used < text.size()) error = boost::json::error::extra_data;
  if (error) {
    std::string message = std::string(struct_name) + ": invalid JSON at offset " +
                          std::to_string(used) + ": " + error.message();
    if (error == boost::json::error::too_deep) {
      message += " (more than " + std::to_string(max_depth) + " nested objects and arrays)";
    }
    return invalid_argument_error(message);
  }
  out = parser.handler().release();
  return Status();
}

ReadState::ReadState(std::string_view root, bool ignore_unknown_fields)
    : path_(root), ignore_unknown_fields_(ignore_unknown_fields) {}

size_t ReadState::push_field(std::string_view name) {
  const size_t mark = path_.size();
  path_ += '.';
  path_ += name;
  return mark;
}

size_t ReadState::push_index(size_t index) {
  const size_t mark = path_.size();
  path_ += '[';
  append_number(path_, index);
  path_ += ']';
  return mark;
}

size_t ReadState::push_key(std::string_view key) {
  const size_t mark = path_.size();
  path_ += '[';
  path_ += quoted_excerpt(key);
  path_ += ']';
  return mark;
}

bool ReadState::fail(std::string_view message) {
  error_ = path_;
  error_ += ": ";
  error_ += message;
  return false;
}

Status ReadState::status() const { return invalid_argument_error(error_); }

bool ReadState::mismatch(std::string_view expected, const boost::json::value& got) {
  return fail("expected " + std::string(expected) + ", got " + describe(got));
}

bool ReadState::read_bool(const boost::json::value& value, bool& out) {
  if (!value.is_bool()) return mismatch("true or false", value);
  out = value.get_bool();
  return true;
}

bool ReadState::read_signed(const boost::json::value& value, int64_t min, int64_t max,
                            int64_t& out) {
  Integer integer;
  switch (integer_of(value, integer)) {
    case IntegerParse::kNotInteger:
      return mismatch("an integer", value);
    case IntegerParse::kTooLarge:
      return mismatch(integer_range(min, max), value);
    case IntegerParse::kOk:
      break;
  }
  return to_signed(integer, min, max, out) || mismatch(integer_range(min, max), value);
}

bool ReadState::read_unsigned(const boost::json::value& value, uint64_t max, uint64_t& out) {
  Integer integer;
  switch (integer_of(value, integer)) {
    case IntegerParse::kNotInteger:
      return mismatch("an integer", value);
    case IntegerParse::kTooLarge:
      return mismatch(integer_range(uint64_t{0}, max), value);
    case IntegerParse::kOk:
      break;
  }
  return to_unsigned(integer, max, out) || mismatch(integer_range(uint64_t{0}, max), value);
}

bool ReadState::read_double(const boost::json::value& value, double& out) {
  switch (value.kind()) {
    case boost::json::kind::int64:
      out = static_cast<double>(value.get_int64());
      return true;
    case boost::json::kind::uint64:
      out = static_cast<double>(value.get_uint64());
      return true;
    case boost::json::kind::double_:
      out = value.get_double();
      // Only a number too large for a double (1e999) reaches here not finite.
      return std::isfinite(out) || mismatch("a number in double's range", value);
    case boost::json::kind::string: {
      const std::string_view text = as_std(value.get_string());
      if (text == "NaN") {
        out = std::numeric_limits<double>::quiet_NaN();
      } else if (text == "Infinity") {
        out = std::numeric_limits<double>::infinity();
      } else if (text == "-Infinity") {
        out = -std::numeric_limits<double>::infinity();
      } else if (!parse_double_text(text, out)) {
        return mismatch("a number, \"NaN\", \"Infinity\" or \"-Infinity\"", value);
      }
      return true;
    }
    default:
      return mismatch("a number", value);
  }
}

bool ReadState::read_float(const boost::json::value& value, float& out) {
  double wide = 0;
  if (!read_double(value, wide)) return false;
  constexpr double kMax = std::numeric_limits<float>::max();
  // Doubles a little above FLT_MAX still round to it (protobuf prints FLT_MAX as
  // 3.4028235e+38, which is such a double); from 2^128 - 2^103 on they round to infinity.
  constexpr double kRoundsToInfinity = 0x1.ffffffp127;
  if (std::isfinite(wide) && std::fabs(wide) > kMax) {
    if (std::fabs(wide) >= kRoundsToInfinity) {
      return mismatch("a number in float's range [-3.4028235e+38, 3.4028235e+38]", value);
    }
    wide = std::copysign(kMax, wide);
  }
  out = static_cast<float>(wide);
  return true;
}

bool ReadState::read_string(const boost::json::value& value, std::string& out) {
  if (!value.is_string()) return mismatch("a string", value);
  out.assign(as_std(value.get_string()));
  return true;
}

bool ReadState::read_bytes(const boost::json::value& value, std::vector<std::byte>& out) {
  if (!value.is_string() || !decode_base64(as_std(value.get_string()), out)) {
    return mismatch("a base64 string", value);
  }
  return true;
}

bool ReadState::read_signed_key(std::string_view key, int64_t min, int64_t max, int64_t& out) {
  Integer integer;
  if (parse_decimal(key, integer) == IntegerParse::kOk && to_signed(integer, min, max, out)) {
    return true;
  }
  return fail("expected a map key that is " + integer_range(min, max) + ", got " +
              quoted_excerpt(key));
}

bool ReadState::read_unsigned_key(std::string_view key, uint64_t max, uint64_t& out) {
  Integer integer;
  if (parse_decimal(key, integer) == IntegerParse::kOk && to_unsigned(integer, max, out)) {
    return true;
  }
  return fail("expected a map key that is " + integer_range(uint64_t{0}, max) + ", got " +
              quoted_excerpt(key));
}

const boost::json::object* ReadState::object_of(const boost::json::value& value) {
  if (value.is_object()) return &value.get_object();
  mismatch("an object", value);
  return nullptr;
}

const boost::json::array* ReadState::array_of(const boost::json::value& value) {
  if (value.is_array()) return &value.get_array();
  mismatch("an array", value);
  return nullptr;
}

bool ReadState::unknown_field(std::string_view key) {
  if (ignore_unknown_fields_) return true;
  std::string message = "unknown field ";
  std::string quoted = quoted_excerpt(key);
  quoted.front() = quoted.back() = '\'';
  return fail(message + quoted);
}

bool ReadState::duplicate_field(std::string_view name, std::string_view first_key,
                                std::string_view second_key) {
  return fail("field '" + std::string(name) + "' given twice, as '" + std::string(first_key) +
              "' and '" + std::string(second_key) + "'");
}

}  // namespace meshrpc::codec::json_detail
