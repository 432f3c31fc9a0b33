#include "meshrpc/transport/address.h"

#include <charconv>

namespace meshrpc::transport {

Result<Address> Address::parse(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) {
    return invalid_argument_error("address '" + std::string(text) + "' has no ':port'");
  }
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return invalid_argument_error("address '" + std::string(text) +
                                  "': an IPv6 host must be written in brackets, [::1]:80");
  }
  if (host.empty()) {
    return invalid_argument_error("address '" + std::string(text) + "' has an empty host");
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    return invalid_argument_error("address '" + std::string(text) + "': port '" +
                                  std::string(port_text) + "' is not a number in 0..65535");
  }
  return Address{std::string(host), static_cast<uint16_t>(port)};
}

std::string Address::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

}  // namespace meshrpc::transport
