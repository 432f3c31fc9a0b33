#include "meshrpc/membership/cluster.h"

#include <array>
#include <atomic>
#include <boost/asio/append.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include "meshrpc/base/logging.h"
#include "meshrpc/base/status_macros.h"
#include "meshrpc/codec/codec.h"
#include "meshrpc/codec/struct_codec.h"
#include "meshrpc/codec/unary_call.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/membership/messages.h"
#include "meshrpc/membership/swim.h"
#include "meshrpc/runtime/random.h"
#include "meshrpc/transport/datagram.h"
#include "meshrpc/transport/errors.h"

namespace meshrpc::membership {

namespace {

std::span<const std::byte> as_bytes(std::string_view text) {
  return std::as_bytes(std::span<const char>(text.data(), text.size()));
}

bool is_wildcard(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "::";
}

// A watcher and the lock that lets unwatch() wait for a call in progress.
struct WatcherSlot {
  std::recursive_mutex mutex;
  bool active = true;
  Cluster::Watcher watcher;
};

}  // namespace

struct Cluster::State : std::enable_shared_from_this<Cluster::State> {
  State(runtime::Env& env, transport::Network& network, ClusterOptions options)
      : env(env), network(network), options(std::move(options)), random(env.random_u64()) {}

  // --- on any thread --------------------------------------------------------------------------
  // Posts a flush of what the core has to send: after an input from another thread.
  void kick() {
    asio::post(executor, [self = shared_from_this()] {
      self->flush();
      self->rearm();
    });
  }
  bool is_stopped() const {
    std::lock_guard lock(mutex);
    return stopped;
  }

  // --- on the executor ------------------------------------------------------------------------
  void flush();
  void rearm();
  void send(Outgoing out);
  void deliver(const std::vector<MemberEvent>& events);
  awaitable<void> timer_loop();
  awaitable<void> receive_loop();
  void on_datagram(transport::Datagram datagram);
  awaitable<Status> push_pull(transport::Address to, bool join);
  void spawn(awaitable<void> task);
  void task_ended() {
    std::lock_guard lock(mutex);
    --tasks;
    changed.notify_all();
  }

  Result<PushPull> answer_push_pull(const PushPull& request);
  // A fresh AES-GCM nonce from the node's random source.
  Keyring::Nonce draw_nonce();
  // What goes on the wire for a push-pull message: itself, or with a keyring, sealed.
  Result<PushPull> seal_push_pull(const PushPull& message);
  // The message a wire push-pull carries. UNAUTHENTICATED (and counted) when it is sealed and
  // no key opens it, when it is in the clear and we have a keyring, or sealed and we have
  // none: either way its sender is not in our cluster.
  Result<PushPull> open_push_pull(const PushPull& wire);
  void write_metrics(MetricWriter& writer) const;

  runtime::Env& env;
  transport::Network& network;
  const ClusterOptions options;
  asio::any_io_executor executor;  // the gossip socket's, set by start()
  std::unique_ptr<transport::DatagramSocket> socket;

  mutable std::mutex mutex;
  std::condition_variable changed;
  std::optional<Swim> swim;  // guarded by mutex; set by start()
  runtime::Random random;    // guarded by mutex
  Tags tags;                 // guarded by mutex; given before start()
  ClusterStats stats;        // guarded by mutex
  bool stopped = false;      // guarded by mutex
  size_t tasks = 0;          // guarded by mutex: coroutines still running
  std::map<WatchId, std::shared_ptr<WatcherSlot>> watchers;  // guarded by mutex
  WatchId next_watch_id = 1;                                 // guarded by mutex

  // The push-pulls in flight, so that stop() can cancel them: a call left waiting on a dead
  // peer would keep its coroutine, and through it this state, alive until its timeout (and
  // forever if its host is torn down first, as a simulated crash does).
  std::map<uint64_t, asio::cancellation_signal*> push_pulls_in_flight;  // guarded by mutex
  uint64_t next_push_pull_id = 0;                                       // guarded by mutex
  void cancel_push_pulls();

  // Executor only: the timer loop's wait, cancelled when an input brings the deadline closer.
  asio::cancellation_signal timer_cancel;
  runtime::TimePoint armed = runtime::TimePoint::max();

  MetricRegistry::Registration metrics_registration;
};

void Cluster::State::spawn(awaitable<void> task) {
  {
    std::lock_guard lock(mutex);
    ++tasks;
  }
  asio::co_spawn(executor, std::move(task),
                 [self = shared_from_this()](std::exception_ptr) { self->task_ended(); });
}

void Cluster::State::flush() {
  std::vector<Outgoing> outgoing;
  std::vector<PushPullRequest> push_pulls;
  std::vector<MemberEvent> events;
  {
    std::lock_guard lock(mutex);
    if (!swim) return;
    outgoing = swim->take_outgoing();
    push_pulls = swim->take_push_pulls();
    events = swim->take_events();
    if (stopped) return;
  }
  for (Outgoing& out : outgoing) send(std::move(out));
  for (const PushPullRequest& request : push_pulls) {
    spawn([](std::shared_ptr<State> self, PushPullRequest request) -> awaitable<void> {
      Status status = co_await self->push_pull(request.to, request.join);
      if (!status.ok()) {
        MESHRPC_LOG_DEBUG("membership: push-pull with {} failed: {}", request.to.to_string(),
                          status.to_string());
      }
    }(shared_from_this(), request));
  }
  deliver(events);
}

void Cluster::State::rearm() {
  runtime::TimePoint deadline;
  {
    std::lock_guard lock(mutex);
    if (!swim || stopped) return;
    deadline = swim->next_deadline();
  }
  if (deadline < armed) timer_cancel.emit(asio::cancellation_type::all);
}

void Cluster::State::send(Outgoing out) {
  Result<Buffer> encoded = codec::encode(out.packet);
  if (!encoded.ok()) return;  // a bug: our own packets always encode
  Buffer payload = std::move(*encoded);
  if (options.keyring) {
    const std::string_view plain = payload.flatten();
    Result<Buffer> sealed = options.keyring->seal(as_bytes(plain), draw_nonce());
    if (!sealed.ok()) return;
    payload = std::move(*sealed);
  }
  {
    std::lock_guard lock(mutex);
    ++stats.packets_sent;
    stats.bytes_sent += payload.size();
  }
  socket->async_send_to(std::move(payload), out.to, [](error_code, size_t) {
    // A send's failure is a lost datagram, which SWIM is built to survive.
  });
}

void Cluster::State::deliver(const std::vector<MemberEvent>& events) {
  if (events.empty()) return;
  std::vector<std::shared_ptr<WatcherSlot>> slots;
  {
    std::lock_guard lock(mutex);
    for (const auto& [id, slot] : watchers) slots.push_back(slot);
  }
  for (const MemberEvent& event : events) {
    MESHRPC_LOG_INFO("membership: {} {} at {} (incarnation {})", event.member.node_id,
                     member_event_name(event.kind), event.member.address.to_string(),
                     event.member.incarnation);
    for (const auto& slot : slots) {
      std::lock_guard lock(slot->mutex);
      if (slot->active) slot->watcher(event);
    }
  }
}

awaitable<void> Cluster::State::timer_loop() {
  for (;;) {
    runtime::TimePoint deadline;
    {
      std::lock_guard lock(mutex);
      if (stopped) co_return;
      deadline = swim->next_deadline();
    }
    armed = deadline;
    co_await env.async_wait_until(
        deadline, asio::bind_cancellation_slot(timer_cancel.slot(), use_nothrow_awaitable));
    armed = runtime::TimePoint::max();
    {
      std::lock_guard lock(mutex);
      if (stopped) co_return;
      swim->tick(env.now(), random);
    }
    flush();
  }
}

awaitable<void> Cluster::State::receive_loop() {
  for (;;) {
    auto [ec, datagram] = co_await socket->async_receive_from(use_nothrow_awaitable);
    if (is_stopped() || ec == asio::error::operation_aborted) co_return;
    if (ec) continue;  // a transient socket error: the next datagram may be fine
    on_datagram(std::move(datagram));
  }
}

void Cluster::State::on_datagram(transport::Datagram datagram) {
  const size_t bytes = datagram.payload.size();
  Result<Buffer> plain = std::move(datagram.payload);
  if (options.keyring) plain = options.keyring->open(as_bytes(plain->flatten()));
  Result<Packet> packet =
      plain.ok() ? codec::decode<Packet>(*plain) : Result<Packet>(plain.status());
  {
    std::lock_guard lock(mutex);
    ++stats.packets_received;
    stats.bytes_received += bytes;
    if (!plain.ok()) ++stats.packets_rejected_by_keyring;
    if (plain.ok() && !packet.ok()) ++stats.packets_malformed;
    if (!packet.ok() || stopped || !swim) return;
    swim->receive(datagram.from, *packet, env.now(), random);
  }
  flush();
  rearm();
}

Keyring::Nonce Cluster::State::draw_nonce() {
  Keyring::Nonce nonce;
  std::lock_guard lock(mutex);
  const uint64_t a = random.next_u64();
  const uint64_t b = random.next_u64();
  for (size_t i = 0; i < 8; ++i) nonce[i] = static_cast<std::byte>(a >> (8 * i));
  for (size_t i = 0; i < 4; ++i) nonce[8 + i] = static_cast<std::byte>(b >> (8 * i));
  return nonce;
}

Result<PushPull> Cluster::State::seal_push_pull(const PushPull& message) {
  if (!options.keyring) return message;
  MESHRPC_ASSIGN_OR_RETURN(Buffer encoded, codec::encode(message));
  MESHRPC_ASSIGN_OR_RETURN(
      Buffer sealed, options.keyring->seal_message(as_bytes(encoded.flatten()), draw_nonce()));
  PushPull wire;
  wire.sealed = sealed.to_string();
  return wire;
}

Result<PushPull> Cluster::State::open_push_pull(const PushPull& wire) {
  Result<PushPull> message = wire;
  if (options.keyring && wire.sealed.empty()) {
    message = unauthenticated_error("push-pull in the clear, but this cluster's gossip is sealed");
  } else if (!options.keyring && !wire.sealed.empty()) {
    message = unauthenticated_error("sealed push-pull, but this node has no keyring");
  } else if (options.keyring) {
    Result<Buffer> plain = options.keyring->open_message(as_bytes(wire.sealed));
    message = plain.ok() ? codec::decode<PushPull>(*plain) : Result<PushPull>(plain.status());
    if (message.ok() && !message->sealed.empty()) {
      message = invalid_argument_error("push-pull sealed twice");
    }
  }
  if (!message.ok()) {
    std::lock_guard lock(mutex);
    ++stats.push_pulls_rejected_by_keyring;
  }
  return message;
}

awaitable<Status> Cluster::State::push_pull(transport::Address to, bool join) {
  PushPull request;
  {
    std::lock_guard lock(mutex);
    if (!swim) co_return unavailable_error("cluster not started");
    request = swim->make_push_pull(join);
  }
  Result<PushPull> wire_request = seal_push_pull(request);
  if (!wire_request.ok()) co_return wire_request.status();
  core::ChannelOptions channel_options;
  channel_options.metrics = nullptr;
  core::Channel channel(env, network, to, channel_options);
  core::CallOptions call;
  call.timeout = options.push_pull_timeout;
  asio::cancellation_signal cancel;
  uint64_t id = 0;
  {
    std::lock_guard lock(mutex);
    if (stopped) co_return cancelled_error("cluster stopped");
    id = next_push_pull_id++;
    push_pulls_in_flight.emplace(id, &cancel);
  }
  auto [wire_reply] = co_await codec::async_unary_call<PushPull>(
      channel, std::string(kPushPullMethod), *wire_request, call,
      asio::bind_cancellation_slot(cancel.slot(), use_nothrow_awaitable));
  {
    std::lock_guard lock(mutex);
    push_pulls_in_flight.erase(id);
  }
  const size_t request_bytes = codec::encoded_size(*wire_request);
  const size_t reply_bytes = wire_reply.ok() ? codec::encoded_size(*wire_reply) : 0;
  Result<PushPull> reply =
      wire_reply.ok() ? open_push_pull(*wire_reply) : Result<PushPull>(wire_reply.status());
  {
    std::lock_guard lock(mutex);
    ++stats.push_pulls;
    stats.push_pull_bytes_sent += request_bytes;
    stats.push_pull_bytes_received += reply_bytes;
    if (!reply.ok()) {
      ++stats.push_pulls_failed;
      co_return reply.status().with_context("push-pull with " + to.to_string());
    }
    if (swim && !stopped) swim->merge_push_pull(*reply, env.now());
  }
  flush();
  rearm();
  co_return Status();
}

void Cluster::State::cancel_push_pulls() {
  std::map<uint64_t, asio::cancellation_signal*> in_flight;
  {
    std::lock_guard lock(mutex);
    in_flight.swap(push_pulls_in_flight);
  }
  // Outside the lock: a cancelled call may resume its coroutine right here.
  for (auto& [id, signal] : in_flight) signal->emit(asio::cancellation_type::all);
}

Result<PushPull> Cluster::State::answer_push_pull(const PushPull& wire_request) {
  MESHRPC_ASSIGN_OR_RETURN(PushPull request, open_push_pull(wire_request));
  PushPull reply;
  {
    std::lock_guard lock(mutex);
    if (!swim || stopped) return unavailable_error("this node is not in the cluster");
    swim->merge_push_pull(request, env.now());
    reply = swim->make_push_pull(false);
  }
  MESHRPC_ASSIGN_OR_RETURN(PushPull wire_reply, seal_push_pull(reply));
  const size_t request_bytes = codec::encoded_size(wire_request);
  const size_t reply_bytes = codec::encoded_size(wire_reply);
  {
    std::lock_guard lock(mutex);
    stats.push_pull_bytes_received += request_bytes;
    stats.push_pull_bytes_sent += reply_bytes;
  }
  kick();
  return wire_reply;
}

void Cluster::State::write_metrics(MetricWriter& writer) const {
  std::lock_guard lock(mutex);
  if (!swim) return;
  std::array<size_t, 4> by_state{};
  for (const NodeStatus& member : swim->members()) {
    ++by_state[static_cast<size_t>(member.state) % by_state.size()];
  }
  for (MemberState state :
       {MemberState::kAlive, MemberState::kSuspect, MemberState::kDead, MemberState::kLeft}) {
    writer.gauge("meshrpc_membership_members", "Members known, by state (this node included).",
                 {{"state", std::string(member_state_name(state))}},
                 static_cast<double>(by_state[static_cast<size_t>(state)]));
  }
  writer.gauge("meshrpc_membership_health_score",
               "Lifeguard local health score: 0 healthy; higher stretches this node's timeouts.",
               {}, swim->health_score());
  const SwimStats& core = swim->stats();
  writer.counter("meshrpc_membership_probes_total", "Direct probes sent.", {}, core.probes);
  writer.counter("meshrpc_membership_probes_failed_total",
                 "Probes that got no ack, directly or indirectly.", {}, core.probes_failed);
  writer.counter("meshrpc_membership_suspicions_total", "Members this node suspected.", {},
                 core.suspicions);
  writer.counter("meshrpc_membership_refutations_total",
                 "Times this node refuted a suspicion or death claimed about it.", {},
                 core.refutations);
  writer.counter("meshrpc_membership_declared_dead_total",
                 "Members whose suspicion timed out on this node.", {}, core.declared_dead);
  writer.counter("meshrpc_membership_packets_sent_total", "Gossip datagrams sent.", {},
                 stats.packets_sent);
  writer.counter("meshrpc_membership_packets_received_total", "Gossip datagrams received.", {},
                 stats.packets_received);
  writer.counter("meshrpc_membership_bytes_sent_total", "Bytes of gossip datagrams sent.", {},
                 stats.bytes_sent);
  writer.counter("meshrpc_membership_bytes_received_total", "Bytes of gossip datagrams received.",
                 {}, stats.bytes_received);
  writer.counter("meshrpc_membership_packets_rejected_total",
                 "Datagrams dropped: no key of the keyring opened them, or they did not decode.",
                 {{"reason", "keyring"}}, stats.packets_rejected_by_keyring);
  writer.counter("meshrpc_membership_packets_rejected_total",
                 "Datagrams dropped: no key of the keyring opened them, or they did not decode.",
                 {{"reason", "malformed"}}, stats.packets_malformed);
  writer.counter("meshrpc_membership_push_pulls_total", "Full-state exchanges this node started.",
                 {}, stats.push_pulls);
  writer.counter("meshrpc_membership_push_pull_bytes_sent_total",
                 "Encoded bytes of push-pull messages sent (requests and replies).", {},
                 stats.push_pull_bytes_sent);
  writer.counter("meshrpc_membership_push_pull_bytes_received_total",
                 "Encoded bytes of push-pull messages received (requests and replies).", {},
                 stats.push_pull_bytes_received);
  writer.counter("meshrpc_membership_push_pulls_rejected_total",
                 "Push-pull requests refused and replies dropped: the keyring did not open them.",
                 {}, stats.push_pulls_rejected_by_keyring);
  writer.counter("meshrpc_membership_push_pulls_failed_total",
                 "Full-state exchanges this node started that failed.", {},
                 stats.push_pulls_failed);
}

// --- Cluster ------------------------------------------------------------------------------

Cluster::Cluster(runtime::Env& env, transport::Network& network, codec::Server& server,
                 ClusterOptions options)
    : state_(std::make_shared<State>(env, network, std::move(options))) {
  state_->tags = state_->options.tags;
  // The server may outlive us: it holds the handler, the handler holds us weakly.
  server.handle<PushPull, PushPull>(
      kPushPullMethod,
      [weak = std::weak_ptr<State>(state_)](core::ServerContext&,
                                            const PushPull& request) -> Result<PushPull> {
        std::shared_ptr<State> state = weak.lock();
        if (!state) return unavailable_error("this node left the cluster");
        return state->answer_push_pull(request);
      },
      {.idempotency = core::Idempotency::kIdempotent});
  if (state_->options.metrics != nullptr) {
    state_->metrics_registration = state_->options.metrics->add(
        [state = state_.get()](MetricWriter& writer) { state->write_metrics(writer); });
  }
}

Cluster::~Cluster() {
  state_->metrics_registration = {};
  stop();
  std::shared_ptr<State> state = state_;
  if (state->env.is_simulated() || state->env.in_env_thread()) return;
  std::unique_lock lock(state->mutex);
  state->changed.wait(lock, [&] { return state->tasks == 0; });
}

Status Cluster::start(const transport::Address& bound) {
  State& state = *state_;
  transport::Address advertise = state.options.advertise;
  if (advertise.host.empty()) advertise.host = bound.host;
  if (advertise.port == 0) advertise.port = bound.port;
  if (is_wildcard(advertise.host)) {
    return invalid_argument_error("cluster: " + bound.to_string() +
                                  " is a wildcard address; set ClusterOptions::advertise to an "
                                  "address the other members can reach");
  }
  Result<std::unique_ptr<transport::DatagramSocket>> socket = state.network.open_datagram(bound);
  if (!socket.ok()) return socket.status().with_context("cluster: gossip socket");
  state.socket = std::move(*socket);
  state.executor = state.socket->get_executor();
  NodeStatus self;
  self.node_id = state.options.node_id.empty() ? advertise.to_string() : state.options.node_id;
  self.address = advertise;
  {
    std::lock_guard lock(state.mutex);
    if (state.swim) return failed_precondition_error("cluster already started");
    self.tags = state.tags;
    state.swim.emplace(state.options.swim, std::move(self), state.env.now());
  }
  asio::post(state.executor, [self = state_] {
    self->spawn(self->timer_loop());
    self->spawn(self->receive_loop());
  });
  return Status();
}

void Cluster::update_tags(Tags tags) {
  {
    std::lock_guard lock(state_->mutex);
    state_->tags = tags;
    if (!state_->swim) return;
    state_->swim->update_tags(std::move(tags), state_->env.now());
  }
  state_->kick();
}

void Cluster::initiate_join(std::vector<transport::Address> seeds,
                            asio::any_completion_handler<void(Status)> handler) {
  std::shared_ptr<State> state = state_;
  if (!state->socket) {
    asio::post(state->env.pick_executor(),
               asio::append(std::move(handler),
                            failed_precondition_error("cluster: join before start()")));
    return;
  }
  state->spawn([](std::shared_ptr<State> state, std::vector<transport::Address> seeds,
                  asio::any_completion_handler<void(Status)> handler) -> awaitable<void> {
    Status result = unavailable_error("cluster: no seed to join");
    bool joined = false;
    for (const transport::Address& seed : seeds) {
      Status status = co_await state->push_pull(seed, /*join=*/true);
      if (status.ok()) {
        joined = true;
      } else {
        result = std::move(status);
      }
    }
    Status status = joined ? Status() : std::move(result);
    asio::post(state->executor, asio::append(std::move(handler), std::move(status)));
  }(state, std::move(seeds), std::move(handler)));
}

void Cluster::initiate_leave(asio::any_completion_handler<void(Status)> handler) {
  std::shared_ptr<State> state = state_;
  if (!state->socket) {
    asio::post(state->env.pick_executor(), asio::append(std::move(handler), Status()));
    return;
  }
  state->spawn([](std::shared_ptr<State> state,
                  asio::any_completion_handler<void(Status)> handler) -> awaitable<void> {
    {
      std::lock_guard lock(state->mutex);
      if (!state->stopped) state->swim->leave(state->env.now());
    }
    state->flush();
    state->rearm();
    // The timer loop keeps gossiping; wait until the update has been sent its full count.
    const runtime::TimePoint give_up = state->env.now() + state->options.leave_timeout;
    for (;;) {
      {
        std::lock_guard lock(state->mutex);
        if (state->stopped || state->swim->pending_updates() == 0) break;
      }
      if (state->env.now() >= give_up) break;
      co_await state->env.async_wait_for(state->options.swim.gossip_interval,
                                         use_nothrow_awaitable);
    }
    {
      std::lock_guard lock(state->mutex);
      state->stopped = true;
    }
    if (state->socket) state->socket->close();
    state->timer_cancel.emit(asio::cancellation_type::all);
    asio::post(state->executor, asio::append(std::move(handler), Status()));
  }(state, std::move(handler)));
}

std::vector<NodeStatus> Cluster::members() const {
  std::lock_guard lock(state_->mutex);
  if (!state_->swim) return {};
  return state_->swim->members();
}

std::function<std::vector<NodeStatus>()> Cluster::members_view() const {
  return [weak = std::weak_ptr<State>(state_)]() -> std::vector<NodeStatus> {
    std::shared_ptr<State> state = weak.lock();
    if (!state) return {};
    std::lock_guard lock(state->mutex);
    return state->swim ? state->swim->members() : std::vector<NodeStatus>{};
  };
}

std::function<std::pair<std::string, uint32_t>()> Cluster::self_view() const {
  return [weak = std::weak_ptr<State>(state_),
          id = state_->options.node_id]() -> std::pair<std::string, uint32_t> {
    std::shared_ptr<State> state = weak.lock();
    if (!state) return {id, 0};
    std::lock_guard lock(state->mutex);
    if (!state->swim) return {id, 0};
    return {state->swim->self().node_id, state->swim->health_score()};
  };
}

runtime::Env& Cluster::env() const { return state_->env; }

NodeStatus Cluster::self() const {
  std::lock_guard lock(state_->mutex);
  if (!state_->swim) {
    NodeStatus self;
    self.node_id = state_->options.node_id;
    self.tags = state_->tags;
    return self;
  }
  return state_->swim->self();
}

uint32_t Cluster::health_score() const {
  std::lock_guard lock(state_->mutex);
  return state_->swim ? state_->swim->health_score() : 0;
}

ClusterStats Cluster::stats() const {
  std::lock_guard lock(state_->mutex);
  return state_->stats;
}

Cluster::WatchId Cluster::watch(Watcher watcher) {
  auto slot = std::make_shared<WatcherSlot>();
  slot->watcher = std::move(watcher);
  std::lock_guard lock(state_->mutex);
  const WatchId id = state_->next_watch_id++;
  state_->watchers.emplace(id, std::move(slot));
  return id;
}

void Cluster::unwatch(WatchId id) {
  std::shared_ptr<WatcherSlot> slot;
  {
    std::lock_guard lock(state_->mutex);
    auto it = state_->watchers.find(id);
    if (it == state_->watchers.end()) return;
    slot = std::move(it->second);
    state_->watchers.erase(it);
  }
  std::lock_guard lock(slot->mutex);  // waits for a call in progress on another thread
  slot->active = false;
}

void Cluster::stop() {
  {
    std::lock_guard lock(state_->mutex);
    if (state_->stopped) return;
    state_->stopped = true;
  }
  if (!state_->socket) return;
  auto halt = [state = state_] {
    state->socket->close();
    state->timer_cancel.emit(asio::cancellation_type::all);
    state->cancel_push_pulls();
  };
  // A simulated host may be crashing (its process destroyed, its queued work dropped with
  // it): act at once, on the simulation's only thread. Elsewhere the executor owns these.
  if (state_->env.is_simulated()) {
    halt();
  } else {
    asio::post(state_->executor, std::move(halt));
  }
}

}  // namespace meshrpc::membership
