// grpc_echo_client: the gRPC C++ peer's closed-loop client, on gRPC's fastest client API (one
// CompletionQueue, async unary calls). --inflight call slots are spread over --connections
// channels; a slot whose call completes starts the next one at once. One application thread
// polls the queue (gRPC runs its own internal threads besides).
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../common/client_run.h"
#include "echo.grpc.pb.h"

namespace meshrpc::bench {
namespace {

using Clock = ClientRun::Clock;

// How long a channel may take to connect before the run is abandoned.
constexpr std::chrono::seconds kConnectTimeout{5};

// One outstanding call at a time; used only by the polling thread.
class CallSlot {
 public:
  CallSlot(EchoService::Stub& stub, const EchoMessage& request, grpc::CompletionQueue& queue)
      : stub_(stub), request_(request), queue_(queue) {}

  void start(Clock::time_point now) {
    started_ = now;
    in_flight_ = true;
    context_.emplace();  // a ClientContext serves one call only
    reader_ = stub_.AsyncEcho(&*context_, request_, &queue_);
    reader_->Finish(&reply_, &status_, this);
  }

  // The call finished; true when it echoed the request's payload back.
  bool finish() {
    in_flight_ = false;
    return status_.ok() && reply_.payload().size() == request_.payload().size();
  }

  void cancel() {
    if (in_flight_) context_->TryCancel();
  }
  [[nodiscard]] bool in_flight() const { return in_flight_; }
  [[nodiscard]] Clock::time_point started() const { return started_; }
  [[nodiscard]] const grpc::Status& status() const { return status_; }

 private:
  EchoService::Stub& stub_;
  const EchoMessage& request_;
  grpc::CompletionQueue& queue_;
  std::optional<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<EchoMessage>> reader_;
  EchoMessage reply_;
  grpc::Status status_;
  Clock::time_point started_;
  bool in_flight_ = false;
};

// Channels to one target share a connection unless each has its own subchannel pool.
std::shared_ptr<grpc::Channel> open_channel(const Endpoint& target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel =
      grpc::CreateCustomChannel(target.to_string(), grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + kConnectTimeout)) {
    std::fprintf(stderr, "could not connect to %s within %lld s\n", target.to_string().c_str(),
                 static_cast<long long>(kConnectTimeout.count()));
    return nullptr;
  }
  return channel;
}

std::chrono::system_clock::time_point to_system_clock(Clock::time_point t) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(t - Clock::now());
}

// Runs until the run is done and every call has finished or been cancelled.
void poll_calls(grpc::CompletionQueue& queue, std::vector<std::unique_ptr<CallSlot>>& slots,
                ClientRun& run) {
  size_t in_flight = slots.size();
  bool cancelled = false;
  while (in_flight > 0) {
    auto now = Clock::now();
    run.advance(now);
    if (!run.issuing() && now >= run.drain_deadline() && !cancelled) {
      for (auto& slot : slots) slot->cancel();
      cancelled = true;  // cancelled calls complete promptly, so the loop still ends
    }
    void* tag = nullptr;
    bool ok = false;
    // Once cancelled, calls complete within milliseconds; poll in short steps until they do.
    const auto wakeup = cancelled ? now + std::chrono::milliseconds(100) : run.next_wakeup();
    const auto status = queue.AsyncNext(&tag, &ok, to_system_clock(wakeup));
    if (status == grpc::CompletionQueue::SHUTDOWN) return;
    if (status == grpc::CompletionQueue::TIMEOUT) continue;
    now = Clock::now();
    run.advance(now);
    auto* slot = static_cast<CallSlot*>(tag);
    --in_flight;
    if (!slot->finish()) {
      if (!cancelled) {
        run.on_call_failed();
        std::fprintf(stderr, "call failed: %s\n", slot->status().error_message().c_str());
      }
      continue;  // a failed slot is not restarted: the run is already reported as failed
    }
    run.on_call_done(slot->started(), now);
    if (run.issuing()) {
      slot->start(now);
      ++in_flight;
    }
  }
}

int run_client(const ClientFlags& flags) {
  std::vector<std::unique_ptr<EchoService::Stub>> stubs;
  for (uint32_t i = 0; i < flags.connections; ++i) {
    auto channel = open_channel(flags.target);
    if (!channel) return 1;
    stubs.push_back(EchoService::NewStub(channel));
  }
  EchoMessage request;
  request.set_payload(std::string(flags.payload_bytes, 'x'));
  grpc::CompletionQueue queue;
  std::vector<std::unique_ptr<CallSlot>> slots;
  for (uint32_t i = 0; i < flags.inflight; ++i) {
    slots.push_back(std::make_unique<CallSlot>(*stubs[i % stubs.size()], request, queue));
  }
  ClientRun run(flags);
  const auto start = Clock::now();
  for (auto& slot : slots) slot->start(start);
  poll_calls(queue, slots, run);
  queue.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (queue.Next(&tag, &ok)) {
  }
  return run.report();
}

}  // namespace
}  // namespace meshrpc::bench

int main(int argc, char** argv) {
  meshrpc::bench::ClientFlags flags;
  CLI::App app{"gRPC C++ closed-loop echo client (completion-queue async API)"};
  meshrpc::bench::add_client_flags(app, flags);
  CLI11_PARSE(app, argc, argv);
  return meshrpc::bench::run_client(flags);
}
