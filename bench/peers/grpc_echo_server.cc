// grpc_echo_server: the gRPC C++ peer, written with gRPC's fastest server API (completion-queue
// async). Each of --threads threads owns one ServerCompletionQueue and the call slots armed on
// it; a slot waits for an Echo call, finishes it with the request message itself as the reply
// (no copy), and re-arms. The structure follows gRPC's own benchmark server
// (test/cpp/qps/server_async.cc), including its shutdown protocol.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "../common/server_lifetime.h"
#include "echo.grpc.pb.h"

namespace meshrpc::bench {
namespace {

// Calls each queue can accept without waiting for a slot to re-arm: well above the largest
// row's 64 in flight, as gRPC's own benchmark arms thousands.
constexpr int kSlotsPerQueue = 256;
// In-flight calls get this long to finish when the server is told to stop.
constexpr std::chrono::seconds kShutdownGrace{1};

// One call at a time: armed (waiting for a call), then finishing. Lives until its queue has
// been drained after shutdown; used only by its queue's thread.
class CallSlot {
 public:
  CallSlot(EchoService::AsyncService& service, grpc::ServerCompletionQueue& queue)
      : service_(service), queue_(queue) {
    arm();
  }

  // Handles this slot's completion event; `ok` false means the server is shutting down.
  void on_event(bool ok) {
    if (!ok) return;
    if (!finishing_) {
      finishing_ = true;
      responder_->Finish(message_, grpc::Status::OK, this);
    } else {
      arm();
    }
  }

 private:
  void arm() {
    finishing_ = false;
    context_.emplace();
    responder_.emplace(&*context_);
    service_.RequestEcho(&*context_, &message_, &*responder_, &queue_, &queue_, this);
  }

  EchoService::AsyncService& service_;
  grpc::ServerCompletionQueue& queue_;
  // Both are single-use per call, so each call gets fresh ones.
  std::optional<grpc::ServerContext> context_;
  std::optional<grpc::ServerAsyncResponseWriter<EchoMessage>> responder_;
  EchoMessage message_;  // the request, sent back as the reply
  bool finishing_ = false;
};

// A queue, its thread's slots, and the flag that stops the thread re-arming slots once
// shutdown begins (a slot must never post to a queue that has been shut down).
struct QueueState {
  std::unique_ptr<grpc::ServerCompletionQueue> queue;
  std::vector<std::unique_ptr<CallSlot>> slots;
  std::mutex mutex;
  bool shutting_down = false;  // guarded by mutex
};

void poll_queue(QueueState& state) {
  void* tag = nullptr;
  bool ok = false;
  while (state.queue->Next(&tag, &ok)) {
    std::lock_guard lock(state.mutex);
    if (state.shutting_down) return;
    static_cast<CallSlot*>(tag)->on_event(ok);
  }
}

int run_server(ServerFlags& flags) {
  EchoService::AsyncService service;
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(flags.listen.to_string(), grpc::InsecureServerCredentials(),
                           &bound_port);
  builder.RegisterService(&service);
  std::vector<std::unique_ptr<QueueState>> queues;
  for (uint32_t i = 0; i < flags.threads; ++i) {
    queues.push_back(std::make_unique<QueueState>());
    queues.back()->queue = builder.AddCompletionQueue();
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound_port == 0) {
    std::fprintf(stderr, "gRPC server could not listen on %s\n", flags.listen.to_string().c_str());
    return 1;
  }
  std::vector<std::thread> threads;
  for (auto& state : queues) {
    for (int i = 0; i < kSlotsPerQueue; ++i) {
      state->slots.push_back(std::make_unique<CallSlot>(service, *state->queue));
    }
    threads.emplace_back(poll_queue, std::ref(*state));
  }
  flags.listen.port = static_cast<uint16_t>(bound_port);
  announce_listening(flags.listen);
  wait_for_termination(flags.max_lifetime_s);

  for (auto& state : queues) {
    std::lock_guard lock(state->mutex);
    state->shutting_down = true;
  }
  server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  for (auto& state : queues) state->queue->Shutdown();
  for (auto& thread : threads) thread.join();
  for (auto& state : queues) {
    void* tag = nullptr;
    bool ok = false;
    while (state->queue->Next(&tag, &ok)) {
    }
  }
  return 0;
}

}  // namespace
}  // namespace meshrpc::bench

int main(int argc, char** argv) {
  meshrpc::bench::block_termination_signals();
  meshrpc::bench::ServerFlags flags;
  CLI::App app{"gRPC C++ echo server (completion-queue async API)"};
  meshrpc::bench::add_server_flags(app, flags);
  CLI11_PARSE(app, argc, argv);
  return meshrpc::bench::run_server(flags);
}
