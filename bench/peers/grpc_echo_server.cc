// grpc_echo_server: the gRPC C++ peer, written with gRPC's fastest server API (completion-queue
// async). Each of --threads threads owns one ServerCompletionQueue and the slots armed on it:
// echo slots wait for an Echo call and finish it with the request message itself as the reply
// (no copy); stream slots wait for a Stream call and write its request back until the client
// cancels. Every slot re-arms when its call ends. The structure follows gRPC's own benchmark
// server (test/cpp/qps/server_async.cc), including its shutdown protocol.
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
constexpr int kEchoSlotsPerQueue = 256;
// A stream holds its slot until the client cancels, so this bounds the streams each queue
// serves at once (more wait until one ends): a stream row opens one, and 64 matches the most
// calls any row keeps in flight.
constexpr int kStreamSlotsPerQueue = 64;
// In-flight calls get this long to finish when the server is told to stop. A stream never
// finishes by itself: one still open then is cancelled when the grace runs out.
constexpr std::chrono::seconds kShutdownGrace{1};

// What every tag on a queue points to. A slot serves one call at a time, lives until its queue
// has been drained after shutdown, and is used only by its queue's thread.
class Slot {
 public:
  Slot() = default;
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  virtual ~Slot() = default;

  // Handles the completion of this slot's one pending operation.
  virtual void on_event(bool ok) = 0;
};

// An Echo call: armed (waiting for a call), then finishing.
class EchoSlot final : public Slot {
 public:
  EchoSlot(EchoService::AsyncService& service, grpc::ServerCompletionQueue& queue)
      : service_(service), queue_(queue) {
    arm();
  }

  // `ok` false means the server is shutting down.
  void on_event(bool ok) override {
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

// A Stream call: armed (waiting for a call), writing the request back one message at a time
// (the async API allows one outstanding Write per call, so each Write waits for the previous
// one's tag), then finishing. A Write fails (ok false) once the client cancels, which is how
// every stream ends.
//
// Plain Write, as an application streaming messages would: WriteOptions().set_buffer_hint()
// would let gRPC hold messages back and coalesce them, trading the latency of every message
// for throughput, which no other framework in the comparison is asked to do.
class StreamSlot final : public Slot {
 public:
  StreamSlot(EchoService::AsyncService& service, grpc::ServerCompletionQueue& queue)
      : service_(service), queue_(queue) {
    arm();
  }

  void on_event(bool ok) override {
    switch (state_) {
      case State::kArmed:
        if (!ok) return;  // the server is shutting down
        state_ = State::kWriting;
        writer_->Write(message_, this);
        break;
      case State::kWriting:
        if (ok) {
          writer_->Write(message_, this);
        } else {
          // The status never reaches a client that cancelled; Finish only ends the call.
          state_ = State::kFinishing;
          writer_->Finish(grpc::Status::OK, this);
        }
        break;
      case State::kFinishing:
        arm();
        break;
    }
  }

 private:
  enum class State { kArmed, kWriting, kFinishing };

  void arm() {
    state_ = State::kArmed;
    context_.emplace();
    writer_.emplace(&*context_);
    service_.RequestStream(&*context_, &message_, &*writer_, &queue_, &queue_, this);
  }

  EchoService::AsyncService& service_;
  grpc::ServerCompletionQueue& queue_;
  // Both are single-use per call, so each call gets fresh ones.
  std::optional<grpc::ServerContext> context_;
  std::optional<grpc::ServerAsyncWriter<EchoMessage>> writer_;
  EchoMessage message_;  // the request, written back as every streamed message
  State state_ = State::kArmed;
};

// A queue, its thread's slots, and the flag that stops the thread re-arming slots once
// shutdown begins (a slot must never post to a queue that has been shut down).
struct QueueState {
  std::unique_ptr<grpc::ServerCompletionQueue> queue;
  std::vector<std::unique_ptr<Slot>> slots;
  std::mutex mutex;
  bool shutting_down = false;  // guarded by mutex
};

void poll_queue(QueueState& state) {
  void* tag = nullptr;
  bool ok = false;
  while (state.queue->Next(&tag, &ok)) {
    std::lock_guard lock(state.mutex);
    if (state.shutting_down) return;
    static_cast<Slot*>(tag)->on_event(ok);
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
    for (int i = 0; i < kEchoSlotsPerQueue; ++i) {
      state->slots.push_back(std::make_unique<EchoSlot>(service, *state->queue));
    }
    for (int i = 0; i < kStreamSlotsPerQueue; ++i) {
      state->slots.push_back(std::make_unique<StreamSlot>(service, *state->queue));
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
