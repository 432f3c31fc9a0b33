// async_resolve: the addresses a TCP host name stands for, through the system resolver
// (getaddrinfo on Asio's resolver thread: /etc/hosts, then DNS A and AAAA records).
//
// This is the only door to name lookup for code outside runtime/ and transport/ (DESIGN.md
// principle 2): cluster::DnsResolver uses it to turn "db.internal:7000" into providers.
//
//   transport::async_resolve(executor, "db.internal", 7000,
//       [](error_code ec, std::vector<transport::Address> addresses) { ... });
//   auto [ec, addresses] = co_await transport::async_resolve(ex, host, port,
//                                                            use_nothrow_awaitable);
//
// Results: one Address per distinct IP, host = the IP in text form (IPv6 unbracketed, as in
// Address), port = `port`, in the system resolver's preference order (RFC 6724), duplicates
// removed. Never empty on success. An IP literal is answered without a lookup.
// Errors: host_not_found / host_not_found_try_again / no_data (the name does not resolve, or
// no resolver is reachable), operation_aborted when cancelled through the handler's
// cancellation slot. transport::to_status() maps them (UNAVAILABLE, CANCELLED).
//
// Cancellation: per operation, prompt: the handler completes at once with operation_aborted,
// also while getaddrinfo is still running (it cannot be interrupted; its answer, when it
// comes, is dropped). How long a lookup can take is bounded by the system resolver's own
// timeout (resolv.conf `timeout` x `attempts`: 5 s x 2 by default); race it with a timer for
// a shorter bound.
//
// Threading: may be called from any thread. `executor` owns the Asio resolver object; the
// handler runs on its associated executor (else `executor`), where cancellation must also
// be emitted, as for any Asio operation. Lifetime: the execution context behind `executor`
// (a RealEnv io_context) outlives the operation. RealEnv only: SimEnv hosts have no DNS.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "meshrpc/runtime/asio.h"
#include "meshrpc/transport/address.h"

namespace meshrpc::transport {

using ResolveHandler = asio::any_completion_handler<void(error_code, std::vector<Address>)>;

// The type-erased operation behind async_resolve(), with the same contract. Exposed so that a
// caller can hold "a lookup" as a plain function (cluster::DnsResolverOptions::lookup).
void initiate_resolve(asio::any_io_executor executor, std::string host, uint16_t port,
                      ResolveHandler handler);

template <typename CompletionToken>
auto async_resolve(asio::any_io_executor executor, std::string host, uint16_t port,
                   CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(error_code, std::vector<Address>)>(
      // The host travels by value: with deferred tokens (use_awaitable) initiation runs after
      // this call returns.
      [executor](auto handler, std::string name, uint16_t number) {
        initiate_resolve(executor, std::move(name), number, ResolveHandler(std::move(handler)));
      },
      token, std::move(host), port);
}

}  // namespace meshrpc::transport
