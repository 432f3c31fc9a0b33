#include "meshrpc/transport/dns.h"

#include <algorithm>
#include <boost/asio/append.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <memory>
#include <utility>

namespace meshrpc::transport {
namespace {

// One lookup. Threading: every step runs on the handler's associated executor, where the
// caller also emits cancellation, so the state needs no lock. Lifetime: shared by the pending
// resolve; the cancellation slot holds only a weak reference.
class ResolveOp : public std::enable_shared_from_this<ResolveOp> {
 public:
  ResolveOp(const asio::any_io_executor& io_executor, uint16_t port, ResolveHandler handler)
      : io_executor_(io_executor),
        handler_executor_(asio::get_associated_executor(handler, io_executor)),
        handler_(std::move(handler)),
        port_(port),
        resolver_(io_executor) {}

  void start(const std::string& host) {
    asio::cancellation_slot slot = handler_.get_cancellation_slot();
    if (slot.is_connected()) {
      slot.assign([weak = weak_from_this()](asio::cancellation_type) {
        if (auto self = weak.lock()) self->cancel();
      });
    }
    error_code not_literal;
    const asio::ip::address ip = asio::ip::make_address(host, not_literal);
    if (!not_literal) {
      finish(error_code(), {Address{ip.to_string(), port_}});
      return;
    }
    resolver_.async_resolve(
        host, std::to_string(port_), asio::ip::resolver_base::numeric_service,
        asio::bind_executor(handler_executor_,
                            [self = shared_from_this()](
                                error_code ec, asio::ip::tcp::resolver::results_type results) {
                              self->on_resolved(ec, results);
                            }));
  }

 private:
  void on_resolved(error_code ec, const asio::ip::tcp::resolver::results_type& results) {
    if (finished_) return;
    if (ec) return finish(ec, {});
    std::vector<Address> addresses;
    for (const auto& entry : results) {
      Address address{entry.endpoint().address().to_string(), port_};
      if (std::find(addresses.begin(), addresses.end(), address) == addresses.end()) {
        addresses.push_back(std::move(address));
      }
    }
    if (addresses.empty()) return finish(asio::error::host_not_found, {});
    finish(error_code(), std::move(addresses));
  }

  void cancel() {
    if (finished_) return;
    resolver_.cancel();
    finish(asio::error::operation_aborted, {});
  }

  // Posted, never invoked inline: finish() may run inside initiate_resolve() or inside the
  // caller's cancellation emit. Posting through the io executor still completes on the
  // handler's own executor.
  void finish(error_code ec, std::vector<Address> addresses) {
    finished_ = true;
    asio::post(io_executor_, asio::append(std::move(handler_), ec, std::move(addresses)));
  }

  const asio::any_io_executor io_executor_;
  const asio::any_completion_executor handler_executor_;
  ResolveHandler handler_;
  const uint16_t port_;
  asio::ip::tcp::resolver resolver_;
  bool finished_ = false;
};

}  // namespace

void initiate_resolve(asio::any_io_executor executor, std::string host, uint16_t port,
                      ResolveHandler handler) {
  auto op = std::make_shared<ResolveOp>(executor, port, std::move(handler));
  op->start(host);
}

}  // namespace meshrpc::transport
