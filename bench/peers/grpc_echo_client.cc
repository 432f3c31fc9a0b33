// grpc_echo_client: the gRPC C++ peer's client, on gRPC's fastest client API (one
// CompletionQueue, async calls). --inflight slots are spread over --connections channels. In
// unary mode the client is closed-loop: a slot whose call completes starts the next one at
// once. In stream mode each slot opens one Stream call and reads its messages one Read at a
// time until the run ends and the client cancels it. One application thread polls the queue
// (gRPC runs its own internal threads besides).
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
// Once calls are cancelled they complete within milliseconds; the queue is polled in steps
// of this until they do (the run's wake-up times have all passed by then).
constexpr std::chrono::milliseconds kCancelledPollStep{100};

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

// One server stream; used only by the polling thread. A Stream call is started, then read one
// message at a time (the async API allows one outstanding Read per call) until a Read fails,
// then finished to learn why it ended. A slot opens one stream and is not restarted.
class StreamSlot {
 public:
  StreamSlot(EchoService::Stub& stub, const EchoMessage& request, grpc::CompletionQueue& queue)
      : stub_(stub), request_(request), queue_(queue) {}

  void start() { reader_ = stub_.AsyncStream(&context_, request_, &queue_, this); }

  // Handles this stream's completion event; false once the stream has ended.
  bool on_event(bool ok, Clock::time_point now, ClientRun& run) {
    if (state_ == State::kFinishing) {
      if (!cancelled_) {
        run.on_call_failed();
        std::fprintf(stderr, "stream ended (status %d): %s\n", status_.error_code(),
                     status_.error_message().c_str());
      }
      return false;
    }
    if (!ok) {  // the call did not start, or the stream ended
      state_ = State::kFinishing;
      reader_->Finish(&status_, this);
      return true;
    }
    if (state_ == State::kReading) {
      if (reply_.payload().size() == request_.payload().size()) {
        run.on_message(now);
      } else {
        run.on_call_failed();
      }
    }
    state_ = State::kReading;
    reader_->Read(&reply_, this);
    return true;
  }

  // Ends the stream from this side: its pending Read fails and it finishes CANCELLED, which
  // is not an error.
  void cancel() {
    cancelled_ = true;
    context_.TryCancel();
  }

 private:
  enum class State { kStarting, kReading, kFinishing };

  EchoService::Stub& stub_;
  const EchoMessage& request_;
  grpc::CompletionQueue& queue_;
  grpc::ClientContext context_;  // declared before reader_, which lives in its call's arena
  std::unique_ptr<grpc::ClientAsyncReader<EchoMessage>> reader_;
  EchoMessage reply_;
  grpc::Status status_;
  State state_ = State::kStarting;
  bool cancelled_ = false;
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
    const auto wakeup = cancelled ? now + kCancelledPollStep : run.next_wakeup();
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

// Runs until the run is done and every stream, cancelled then, has finished.
void poll_streams(grpc::CompletionQueue& queue, std::vector<std::unique_ptr<StreamSlot>>& slots,
                  ClientRun& run) {
  size_t open = slots.size();
  bool cancelled = false;
  while (open > 0) {
    auto now = Clock::now();
    run.advance(now);
    if (!run.issuing() && !cancelled) {
      for (auto& slot : slots) slot->cancel();
      cancelled = true;
    }
    void* tag = nullptr;
    bool ok = false;
    const auto wakeup = cancelled ? now + kCancelledPollStep : run.next_wakeup();
    const auto status = queue.AsyncNext(&tag, &ok, to_system_clock(wakeup));
    if (status == grpc::CompletionQueue::SHUTDOWN) return;
    if (status == grpc::CompletionQueue::TIMEOUT) continue;
    now = Clock::now();
    run.advance(now);
    if (!static_cast<StreamSlot*>(tag)->on_event(ok, now, run)) --open;
  }
}

// --inflight slots, spread round-robin over the channels.
template <typename SlotType>
std::vector<std::unique_ptr<SlotType>> make_slots(
    uint32_t count, const std::vector<std::unique_ptr<EchoService::Stub>>& stubs,
    const EchoMessage& request, grpc::CompletionQueue& queue) {
  std::vector<std::unique_ptr<SlotType>> slots;
  for (uint32_t i = 0; i < count; ++i) {
    slots.push_back(std::make_unique<SlotType>(*stubs[i % stubs.size()], request, queue));
  }
  return slots;
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
  ClientRun run(flags);
  if (flags.mode == Mode::kStream) {
    auto slots = make_slots<StreamSlot>(flags.inflight, stubs, request, queue);
    for (auto& slot : slots) slot->start();
    poll_streams(queue, slots, run);
  } else {
    auto slots = make_slots<CallSlot>(flags.inflight, stubs, request, queue);
    const auto start = Clock::now();
    for (auto& slot : slots) slot->start(start);
    poll_calls(queue, slots, run);
  }
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
  CLI::App app{"gRPC C++ echo client, unary or streaming (completion-queue async API)"};
  meshrpc::bench::add_client_flags(app, flags);
  CLI11_PARSE(app, argc, argv);
  return meshrpc::bench::run_client(flags);
}
