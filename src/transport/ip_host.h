// IP literals and Addresses, shared by the TCP and UDP implementations. Private to transport/.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "meshrpc/runtime/asio.h"
#include "meshrpc/transport/address.h"

namespace meshrpc::transport {

// The address a literal host names: "localhost" is 127.0.0.1 without asking the resolver
// (it is what tests and single-machine setups use, and must not depend on /etc/hosts).
// nullopt when `host` is not an IP literal.
std::optional<asio::ip::address> parse_ip_host(const std::string& host);

// The Address of an IP endpoint: the host as an IP literal (no brackets). An IPv4 peer of a
// dual-stack socket shows as ::ffff:a.b.c.d; it is named as IPv4, the way it would be dialled.
Address to_address(asio::ip::address ip, uint16_t port);

}  // namespace meshrpc::transport
