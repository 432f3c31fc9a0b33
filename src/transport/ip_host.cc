#include "transport/ip_host.h"

namespace meshrpc::transport {

std::optional<asio::ip::address> parse_ip_host(const std::string& host) {
  if (host == "localhost") return asio::ip::address_v4::loopback();
  error_code ec;
  asio::ip::address ip = asio::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  return ip;
}

Address to_address(asio::ip::address ip, uint16_t port) {
  if (ip.is_v6() && ip.to_v6().is_v4_mapped()) {
    ip = asio::ip::make_address_v4(asio::ip::v4_mapped, ip.to_v6());
  }
  return Address{ip.to_string(), port};
}

}  // namespace meshrpc::transport
