#include "meshrpc/core/sync_client.h"

#include <future>
#include <utility>

#include "meshrpc/runtime/real_env.h"
#include "meshrpc/transport/tcp.h"

namespace meshrpc::sync {
namespace {

std::unique_ptr<transport::Network> make_network(runtime::Env& env) {
  if (auto* real = dynamic_cast<runtime::RealEnv*>(&env)) {
    return std::make_unique<transport::TcpNetwork>(*real);
  }
  return nullptr;
}

core::CallResult failed(Status status) {
  core::CallResult result;
  result.status = std::move(status);
  result.not_processed = true;  // never sent
  return result;
}

}  // namespace

Client::Client(runtime::Env& env, ClientOptions options)
    : env_(env),
      options_(std::move(options)),
      owned_network_(make_network(env)),
      network_(owned_network_.get()) {}

Client::Client(runtime::Env& env, transport::Network& network, ClientOptions options)
    : env_(env), options_(std::move(options)), network_(&network) {}

Client::~Client() = default;

Status Client::check_may_block() const {
  if (env_.is_simulated()) {
    return failed_precondition_error(
        "sync::Client cannot block under a simulated env: virtual time only advances when "
        "the simulation's thread returns, so the call would never complete; use "
        "core::Channel::async_call");
  }
  if (env_.in_env_thread()) {
    return failed_precondition_error(
        "sync::Client called on one of the env's io threads: blocking it would deadlock the "
        "io thread that must deliver the reply; use core::Channel::async_call there");
  }
  if (network_ == nullptr) {
    return failed_precondition_error(
        "sync::Client has no network: its env is not a RealEnv, so pass a transport::Network");
  }
  return Status();
}

Result<core::Channel*> Client::channel(const transport::Address& address) {
  if (network_ == nullptr) {
    return failed_precondition_error(
        "sync::Client has no network: its env is not a RealEnv, so pass a transport::Network");
  }
  std::lock_guard lock(mutex_);
  auto it = channels_.find(address);
  if (it != channels_.end()) return it->second.get();
  if (channels_.size() >= options_.max_channels) {
    return resource_exhausted_error("sync::Client has channels to max_channels " +
                                    std::to_string(options_.max_channels) +
                                    " addresses; no channel for " + address.to_string());
  }
  auto channel = std::make_unique<core::Channel>(env_, *network_, address, options_.channel);
  core::Channel* raw = channel.get();
  channels_.emplace(address, std::move(channel));
  return raw;
}

core::CallResult Client::call_detailed(const transport::Address& address, std::string method,
                                       Buffer request, const core::CallOptions& options) {
  if (Status status = check_may_block(); !status.ok()) return failed(std::move(status));
  Result<core::Channel*> channel = this->channel(address);
  if (!channel.ok()) return failed(std::move(channel).status());

  core::CallOptions bounded = options;
  if (!bounded.timeout && bounded.deadline == runtime::kInfiniteFuture) {
    bounded.timeout = options_.default_timeout;
  }
  // The handler has no associated executor: it runs on the channel's, never on this thread.
  std::promise<core::CallResult> done;
  std::future<core::CallResult> result = done.get_future();
  (*channel)->async_call(std::move(method), std::move(request), std::move(bounded),
                         [&done](core::CallResult r) { done.set_value(std::move(r)); });
  return result.get();
}

Result<Buffer> Client::call(const transport::Address& address, std::string method, Buffer request,
                            const core::CallOptions& options) {
  return call_detailed(address, std::move(method), std::move(request), options).into_result();
}

Result<Buffer> Client::call(const transport::Address& address, std::string method,
                            std::string_view request, const core::CallOptions& options) {
  return call(address, std::move(method), Buffer::copy_of(request), options);
}

}  // namespace meshrpc::sync
