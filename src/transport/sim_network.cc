#include "meshrpc/transport/sim_network.h"

#include <algorithm>
#include <any>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <deque>
#include <optional>
#include <vector>

#include "meshrpc/base/buffer.h"
#include "transport/sim_datagram.h"
#include "transport/sim_network_state.h"

namespace meshrpc::transport {

using runtime::SimHost;
using runtime::TimePoint;

using sim_detail::is_cancel;
using sim_detail::post_completion;

// One direction of a connection: bytes written by one end, read by the other.
struct SimNetwork::Connection {
  // Bytes (or the end of stream) on their way, delivered in order no earlier than `due`.
  struct Segment {
    TimePoint due;
    Buffer bytes;
    bool fin = false;
  };
  struct Direction {
    SimHost* from = nullptr;
    SimHost* to = nullptr;
    Buffer readable;             // delivered, not yet read
    size_t in_flight_bytes = 0;  // written, not yet delivered
    TimePoint last_delivery{};   // deliveries never overtake each other
    std::deque<Segment> segments;
    bool pump_scheduled = false;  // an event will deliver the front segment
    bool fin_sent = false;
    bool fin_delivered = false;
    bool reset_delivered = false;
  };

  uint64_t id = 0;
  Address addresses[2];     // local address of end 0 (client) and end 1 (server)
  Direction directions[2];  // directions[i]: written by end i, read by end 1 - i
  SimStream* ends[2] = {nullptr, nullptr};
};

// --- SimStream --------------------------------------------------------------------------

class SimNetwork::SimStream final : public ByteStream {
 public:
  SimStream(std::shared_ptr<State> net, std::shared_ptr<Connection> connection, int side,
            asio::any_io_executor executor)
      : net_holder_(std::move(net)),
        net_(*net_holder_),
        connection_(std::move(connection)),
        side_(side),
        executor_(executor),
        host_(connection_->directions[side].from) {
    connection_->ends[side_] = this;
    net_.streams_.insert(this);
  }
  ~SimStream() override {
    close();
    net_.streams_.erase(this);
  }

  // The network is going away: pending operations are destroyed, never completed.
  void drop_pending(std::vector<std::any>& graveyard) {
    if (read_handler_)
      graveyard.emplace_back(std::make_shared<ReadHandler>(std::move(*read_handler_)));
    if (write_handler_)
      graveyard.emplace_back(std::make_shared<WriteHandler>(std::move(*write_handler_)));
    if (wait_handler_) {
      graveyard.emplace_back(std::make_shared<WaitHandler>(std::move(*wait_handler_)));
    }
    read_handler_.reset();
    write_handler_.reset();
    wait_handler_.reset();
  }

  executor_type get_executor() override { return executor_; }

  void shutdown_send() override {
    Connection::Direction& out = outbound();
    if (closed_ || out.fin_sent || net_.torn_down_) return;
    out.fin_sent = true;
    if (link(out).blackhole) return;
    out.segments.push_back(Connection::Segment{next_delivery_time(out, 0), Buffer(), true});
    schedule_pump(net_holder_, connection_, side_);
  }

  // The host's process crashed: its kernel closes the socket, with a reset when data was
  // left unread (as Linux does), else with a FIN. Pending operations end with it.
  void on_host_crash() {
    if (closed_) return;
    if (inbound().readable.empty()) {
      close();
    } else {
      abort();
    }
  }
  SimHost* host() const { return host_; }

  // Delivers the direction's due segments in order, unless the link is cut (the direction
  // waits for the heal) or clogged (it waits out the clog).
  static void pump(const std::shared_ptr<State>& net, const std::shared_ptr<Connection>& connection,
                   int side) {
    Connection::Direction& direction = connection->directions[side];
    direction.pump_scheduled = false;
    if (net->torn_down_ || direction.segments.empty()) return;
    if (net->is_cut(direction.from->name(), direction.to->name())) {
      net->stalled_.emplace_back(connection, side);
      return;
    }
    const TimePoint now = net->sim_.now();
    const TimePoint clear = net->clogged_until(direction.from->name(), direction.to->name());
    if (clear > now) {
      direction.pump_scheduled = true;
      net->sim_.schedule_at(clear, [net, connection, side] { pump(net, connection, side); });
      return;
    }
    while (!direction.segments.empty() && direction.segments.front().due <= now) {
      Connection::Segment segment = std::move(direction.segments.front());
      direction.segments.pop_front();
      if (segment.fin) {
        direction.fin_delivered = true;
        net->sim_.trace(*direction.to, "fin " + std::to_string(connection->id));
        if (SimStream* reader = connection->ends[1 - side]) reader->on_readable();
      } else {
        deliver(*net, *connection, side, std::move(segment.bytes));
      }
    }
    schedule_pump(net, connection, side);
  }

  static void schedule_pump(const std::shared_ptr<State>& net,
                            const std::shared_ptr<Connection>& connection, int side) {
    Connection::Direction& direction = connection->directions[side];
    if (direction.pump_scheduled || direction.segments.empty()) return;
    direction.pump_scheduled = true;
    net->sim_.schedule_at(direction.segments.front().due,
                          [net, connection, side] { pump(net, connection, side); });
  }

  void close() override {
    if (closed_) return;
    shutdown_send();
    finish_local(asio::error::operation_aborted);
  }

  void abort() override {
    if (closed_) return;
    Connection::Direction& out = outbound();
    if (net_.torn_down_ || link(out).blackhole) {
      return finish_local(asio::error::operation_aborted);
    }
    // A reset overtakes data in flight: the peer discards whatever arrives after it. One
    // sent across a cut is lost (nothing retransmits a reset).
    const TimePoint at = std::max(net_.sim_.now() + draw_delay(out),
                                  net_.clogged_until(out.from->name(), out.to->name()));
    std::shared_ptr<Connection> connection = connection_;
    net_.sim_.schedule_at(at, [net = net_holder_, connection, side = side_] {
      Connection::Direction& direction = connection->directions[side];
      if (net->is_cut(direction.from->name(), direction.to->name())) return;
      net->sim_.trace(*direction.to, "reset " + std::to_string(connection->id));
      if (SimStream* peer = connection->ends[1 - side]) peer->on_reset();
    });
    finish_local(asio::error::operation_aborted);
  }

  Address local_address() const override { return connection_->addresses[side_]; }
  Address remote_address() const override { return connection_->addresses[1 - side_]; }

  // Data or end of stream arrived for this end.
  void on_readable() {
    try_complete_read();
    try_complete_wait();
  }
  // The peer aborted: unread data is gone and both directions fail.
  void on_reset() {
    reset_ = true;
    inbound().readable.clear();
    try_complete_read();
    try_complete_wait();
    try_complete_write();
  }
  // The peer read bytes, freeing room in our outbound direction.
  void on_space() { try_complete_write(); }

 protected:
  void initiate_read(std::span<const asio::mutable_buffer> buffers, ReadHandler handler) override {
    read_buffers_.assign(buffers.begin(), buffers.end());
    read_handler_.emplace(std::move(handler));
    install_canceller(*read_handler_, &SimStream::cancel_read);
    try_complete_read();
  }

  void initiate_wait_readable(WaitHandler handler) override {
    wait_handler_.emplace(std::move(handler));
    install_canceller(*wait_handler_, &SimStream::cancel_wait);
    try_complete_wait();
  }

  void initiate_write(std::span<const asio::const_buffer> buffers, WriteHandler handler) override {
    write_buffers_.assign(buffers.begin(), buffers.end());
    write_handler_.emplace(std::move(handler));
    install_canceller(*write_handler_, &SimStream::cancel_write);
    try_complete_write();
  }

 private:
  Connection::Direction& outbound() { return connection_->directions[side_]; }
  Connection::Direction& inbound() { return connection_->directions[1 - side_]; }
  const LinkConfig& link(const Connection::Direction& d) const {
    return net_.link_config(d.from->name(), d.to->name());
  }
  runtime::Duration draw_delay(const Connection::Direction& d) {
    const LinkConfig& config = link(d);
    return net_.sim_.random().uniform_duration(config.delay_min, config.delay_max);
  }
  // When `bytes` written now arrive: after the link has carried what is queued on it (with a
  // bandwidth cap), its delay, and a retransmission if the segment is lost; never before
  // what the connection sent earlier.
  TimePoint next_delivery_time(Connection::Direction& d, size_t bytes) {
    const LinkConfig& config = link(d);
    const TimePoint sent = net_.transmitted(d.from->name(), d.to->name(), config, bytes);
    TimePoint due = sent + draw_delay(d);
    if (config.loss_rate > 0 && net_.sim_.random().bernoulli(config.loss_rate)) {
      due += config.retransmit_timeout;
    }
    d.last_delivery = std::max(due, d.last_delivery);
    return d.last_delivery;
  }

  template <typename Handler>
  void install_canceller(Handler& handler, void (SimStream::*cancel)()) {
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected()) {
      slot.assign([this, cancel](asio::cancellation_type type) {
        if (is_cancel(type)) (this->*cancel)();
      });
    }
  }
  template <typename Handler, typename... Results>
  void complete(std::optional<Handler>& pending, Results... results) {
    Handler handler = std::move(*pending);
    pending.reset();
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected()) slot.clear();
    post_completion(executor_, std::move(handler), results...);
  }
  void cancel_read() {
    if (read_handler_) complete(read_handler_, error_code(asio::error::operation_aborted), 0UL);
  }
  void cancel_wait() {
    if (wait_handler_) complete(wait_handler_, error_code(asio::error::operation_aborted));
  }
  void try_complete_wait() {
    if (!wait_handler_) return;
    if (closed_) return complete(wait_handler_, error_code(asio::error::operation_aborted));
    const Connection::Direction& in = inbound();
    if (reset_ || in.fin_delivered || !in.readable.empty()) complete(wait_handler_, error_code());
  }
  void cancel_write() {
    if (write_handler_) complete(write_handler_, error_code(asio::error::operation_aborted), 0UL);
  }

  void try_complete_read() {
    if (!read_handler_) return;
    Connection::Direction& in = inbound();
    size_t wanted = 0;
    for (const auto& b : read_buffers_) wanted += b.size();
    if (closed_) return complete(read_handler_, error_code(asio::error::operation_aborted), 0UL);
    if (reset_) return complete(read_handler_, error_code(asio::error::connection_reset), 0UL);
    if (wanted == 0) return complete(read_handler_, error_code(), 0UL);
    if (in.readable.empty()) {
      if (in.fin_delivered) complete(read_handler_, error_code(asio::error::eof), 0UL);
      return;
    }
    size_t copied = 0;
    for (const auto& b : read_buffers_) {
      const size_t n = std::min(b.size(), in.readable.size());
      in.readable.copy_front(static_cast<char*>(b.data()), n);
      in.readable.consume(n);
      copied += n;
      if (in.readable.empty()) break;
    }
    complete(read_handler_, error_code(), copied);
    if (SimStream* writer = connection_->ends[1 - side_]) writer->on_space();
  }

  void try_complete_write() {
    if (!write_handler_) return;
    Connection::Direction& out = outbound();
    if (closed_) return complete(write_handler_, error_code(asio::error::operation_aborted), 0UL);
    if (reset_) return complete(write_handler_, error_code(asio::error::connection_reset), 0UL);
    if (out.fin_sent) return complete(write_handler_, error_code(asio::error::broken_pipe), 0UL);
    size_t total = 0;
    for (const auto& b : write_buffers_) total += b.size();
    if (total == 0) return complete(write_handler_, error_code(), 0UL);
    const LinkConfig& config = link(out);
    const size_t used = out.in_flight_bytes + out.readable.size();
    const size_t room = used >= config.buffer_bytes ? 0 : config.buffer_bytes - used;
    if (room == 0) return;  // on_space() retries when the reader makes room
    send(std::min({total, room, config.max_write_bytes}));
  }

  void send(size_t bytes) {
    Connection::Direction& out = outbound();
    Buffer chunk;
    size_t left = bytes;
    for (const auto& b : write_buffers_) {
      const size_t n = std::min(left, b.size());
      chunk.append_copy(b.data(), n);
      left -= n;
      if (left == 0) break;
    }
    if (link(out).blackhole) {
      complete(write_handler_, error_code(), bytes);  // sent, and lost on the way
      return;
    }
    out.in_flight_bytes += bytes;
    out.segments.push_back(Connection::Segment{next_delivery_time(out, bytes), std::move(chunk)});
    schedule_pump(net_holder_, connection_, side_);
    complete(write_handler_, error_code(), bytes);
  }

  static void deliver(State& net, Connection& connection, int side, Buffer chunk) {
    Connection::Direction& direction = connection.directions[side];
    direction.in_flight_bytes -= chunk.size();
    net.sim_.trace(*direction.to, "deliver " + std::to_string(connection.id) + " " +
                                      std::to_string(side) + " " + std::to_string(chunk.size()));
    SimStream* reader = connection.ends[1 - side];
    if (reader == nullptr || reader->reset_) {
      // Nobody will read these bytes; TCP answers data for a closed socket with a reset.
      if (SimStream* writer = connection.ends[side]) writer->on_reset();
      return;
    }
    // The bytes only: the chunk's writable tail block must not stay with an emptied queue.
    direction.readable.append(static_cast<const Buffer&>(chunk));
    reader->on_readable();
  }

  // Ends this end's use of the connection; pending operations end with `ec`.
  void finish_local(error_code ec) {
    closed_ = true;
    if (read_handler_) complete(read_handler_, ec, 0UL);
    if (wait_handler_) complete(wait_handler_, ec);
    if (write_handler_) complete(write_handler_, ec, 0UL);
    connection_->ends[side_] = nullptr;
    inbound().readable.clear();
  }

  std::shared_ptr<State> net_holder_;
  State& net_;
  std::shared_ptr<Connection> connection_;
  int side_;
  asio::any_io_executor executor_;
  SimHost* host_;  // where this end's process runs
  bool closed_ = false;
  bool reset_ = false;
  std::vector<asio::mutable_buffer> read_buffers_;
  std::vector<asio::const_buffer> write_buffers_;
  std::optional<ReadHandler> read_handler_;
  std::optional<WriteHandler> write_handler_;
  std::optional<WaitHandler> wait_handler_;
};

// --- SimListener ------------------------------------------------------------------------

class SimNetwork::SimListener final : public Listener {
 public:
  SimListener(std::shared_ptr<State> net, SimHost& host, Address address, int backlog)
      : net_holder_(std::move(net)),
        net_(*net_holder_),
        host_(host),
        address_(std::move(address)),
        backlog_(backlog) {
    net_.listeners_[address_] = this;
  }
  ~SimListener() override { close(); }

  Address local_address() const override { return address_; }
  SimHost& host() const { return host_; }
  size_t shard_count() const override { return 1; }
  asio::any_io_executor shard_executor(size_t) override { return host_.pick_executor(); }

  void close() override {
    if (closed_) return;
    closed_ = true;
    net_.listeners_.erase(address_);
    queue_.clear();  // queued, never accepted connections: destroying them closes them
    if (handler_) complete(error_code(asio::error::operation_aborted), nullptr);
  }

  // A connection arrived. False when the backlog is full: the connector is refused.
  bool offer(std::unique_ptr<ByteStream> stream) {
    if (closed_ || static_cast<int>(queue_.size()) >= backlog_) return false;
    queue_.push_back(std::move(stream));
    try_accept();
    return true;
  }

 protected:
  void initiate_accept(size_t, AcceptHandler handler) override {
    if (closed_) {
      return post_completion(host_.pick_executor(), std::move(handler),
                             error_code(asio::error::operation_aborted),
                             std::unique_ptr<ByteStream>());
    }
    handler_.emplace(std::move(handler));
    auto slot = asio::get_associated_cancellation_slot(*handler_);
    if (slot.is_connected()) {
      slot.assign([this](asio::cancellation_type type) {
        if (is_cancel(type) && handler_) {
          complete(error_code(asio::error::operation_aborted), nullptr);
        }
      });
    }
    try_accept();
  }

 private:
  void try_accept() {
    if (!handler_ || queue_.empty()) return;
    std::unique_ptr<ByteStream> stream = std::move(queue_.front());
    queue_.pop_front();
    complete(error_code(), std::move(stream));
  }
  void complete(error_code ec, std::unique_ptr<ByteStream> stream) {
    AcceptHandler handler = std::move(*handler_);
    handler_.reset();
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected()) slot.clear();
    post_completion(host_.pick_executor(), std::move(handler), ec, std::move(stream));
  }

  std::shared_ptr<State> net_holder_;
  State& net_;
  SimHost& host_;
  Address address_;
  int backlog_;
  bool closed_ = false;
  std::deque<std::unique_ptr<ByteStream>> queue_;
  std::optional<AcceptHandler> handler_;
};

// --- HostNetwork ------------------------------------------------------------------------

class SimNetwork::HostNetwork final : public Network {
 public:
  HostNetwork(std::shared_ptr<State> net, SimHost& host)
      : net_holder_(std::move(net)), net_(*net_holder_), host_(host) {}

  using Network::listen;
  Result<std::unique_ptr<Listener>> listen(const Address& requested,
                                           const ListenOptions& options) override {
    if (!requested.host.empty() && requested.host != host_.name() && requested.host != "0.0.0.0") {
      return invalid_argument_error("simulated host " + host_.name() + " cannot listen on " +
                                    requested.to_string());
    }
    Address address{host_.name(), requested.port};
    if (address.port == 0) address.port = next_port(net_.listeners_);
    if (net_.listeners_.count(address) != 0) {
      return already_exists_error("address " + address.to_string() + " is already in use");
    }
    return std::unique_ptr<Listener>(
        std::make_unique<SimListener>(net_holder_, host_, address, options.backlog));
  }

  Result<std::unique_ptr<DatagramSocket>> open_datagram(const Address& requested) override {
    if (!requested.host.empty() && requested.host != host_.name() && requested.host != "0.0.0.0") {
      return invalid_argument_error("simulated host " + host_.name() +
                                    " cannot open a datagram socket on " + requested.to_string());
    }
    Address address{host_.name(), requested.port};
    if (address.port == 0) address.port = next_port(net_.datagram_sockets_);
    if (net_.datagram_sockets_.count(address) != 0) {
      return already_exists_error("datagram address " + address.to_string() + " is already in use");
    }
    return std::unique_ptr<DatagramSocket>(
        std::make_unique<SimDatagramSocket>(net_holder_, host_, address));
  }

 protected:
  void initiate_connect(const Address& address, asio::any_io_executor executor,
                        ConnectHandler handler) override;

 private:
  struct PendingConnect {
    Address target;
    asio::any_io_executor executor;
    std::optional<ConnectHandler> handler;
  };

  // A port not in `bound` (listeners, or datagram sockets: their port spaces are separate).
  template <typename Bound>
  uint16_t next_port(const Bound& bound) {
    // Ephemeral range as Linux uses it; wraps without reuse checks beyond `bound`.
    while (true) {
      const uint16_t port = next_port_++;
      if (next_port_ == 0) next_port_ = kFirstEphemeralPort;
      if (bound.count(Address{host_.name(), port}) == 0) return port;
    }
  }
  void arrive(const std::shared_ptr<PendingConnect>& pending);

 public:
  // The host's process crashed (or the network is going away): its connects in progress
  // are dropped, never completed.
  void on_crash();

 private:
  void finish(const std::shared_ptr<PendingConnect>& pending, error_code ec,
              std::unique_ptr<ByteStream> stream);

  static constexpr uint16_t kFirstEphemeralPort = 32768;
  std::shared_ptr<State> net_holder_;
  State& net_;
  SimHost& host_;
  uint16_t next_port_ = kFirstEphemeralPort;
  // Connects not yet completed. Strong: a request lost on the way (blackhole, cut) has no
  // event holding it, and only the caller's cancellation (its connect timeout) ends it.
  std::vector<std::shared_ptr<PendingConnect>> connects_;
};

void SimNetwork::HostNetwork::initiate_connect(const Address& address,
                                               asio::any_io_executor executor,
                                               ConnectHandler handler) {
  auto pending = std::make_shared<PendingConnect>(
      PendingConnect{address, std::move(executor), std::move(handler)});
  auto slot = asio::get_associated_cancellation_slot(*pending->handler);
  if (slot.is_connected()) {
    // Weak: the slot lives inside the handler that `pending` owns (no cycle).
    slot.assign([this, weak = std::weak_ptr(pending)](asio::cancellation_type type) {
      auto pending = weak.lock();
      if (is_cancel(type) && pending && pending->handler) {
        finish(pending, asio::error::operation_aborted, nullptr);
      }
    });
  }
  SimHost* target = net_.sim_.find_host(address.host);
  if (target == nullptr) {
    // No such host: the connect fails as an unroutable address does.
    net_.sim_.schedule_at(host_, net_.sim_.now(), [this, pending] {
      if (pending->handler) finish(pending, asio::error::host_unreachable, nullptr);
    });
    return;
  }
  connects_.push_back(pending);
  const LinkConfig& link = net_.link_config(host_.name(), target->name());
  // A request lost on the way (blackhole, cut) is not answered; only a timeout (cancellation)
  // ends the connect.
  if (link.blackhole || net_.is_cut(host_.name(), target->name())) return;
  const TimePoint at = std::max(
      net_.sim_.now() + net_.sim_.random().uniform_duration(link.delay_min, link.delay_max),
      net_.clogged_until(host_.name(), target->name()));
  net_.sim_.schedule_at(at, [this, pending] { arrive(pending); });
}

void SimNetwork::HostNetwork::on_crash() {
  std::vector<ConnectHandler> graveyard;
  for (const auto& pending : connects_) {
    if (pending->handler) {
      graveyard.push_back(std::move(*pending->handler));
      pending->handler.reset();
    }
  }
  connects_.clear();
}

// The connection request reaches the target host: a listener takes it or it is refused;
// either way the answer travels back to the client.
void SimNetwork::HostNetwork::arrive(const std::shared_ptr<PendingConnect>& pending) {
  if (!pending->handler) return;  // cancelled while the request travelled
  SimHost& target = *net_.sim_.find_host(pending->target.host);
  auto it = net_.listeners_.find(pending->target);
  std::unique_ptr<ByteStream> client_end;
  error_code ec = asio::error::connection_refused;
  if (it != net_.listeners_.end()) {
    auto connection = std::make_shared<Connection>();
    connection->id = net_.next_connection_id_++;
    connection->addresses[0] = Address{host_.name(), next_port(net_.listeners_)};
    connection->addresses[1] = pending->target;
    connection->directions[0].from = &host_;
    connection->directions[0].to = &target;
    connection->directions[1].from = &target;
    connection->directions[1].to = &host_;
    client_end = std::make_unique<SimStream>(net_holder_, connection, 0, pending->executor);
    auto server_end =
        std::make_unique<SimStream>(net_holder_, connection, 1, target.pick_executor());
    if (it->second->offer(std::move(server_end))) {
      ec = error_code();
      net_.sim_.trace(target, "accept " + std::to_string(connection->id));
    } else {
      client_end.reset();
    }
  }
  const LinkConfig& back = net_.link_config(target.name(), host_.name());
  if (back.blackhole || net_.is_cut(target.name(), host_.name())) return;  // the answer is lost
  const TimePoint at = std::max(
      net_.sim_.now() + net_.sim_.random().uniform_duration(back.delay_min, back.delay_max),
      net_.clogged_until(target.name(), host_.name()));
  auto stream = std::make_shared<std::unique_ptr<ByteStream>>(std::move(client_end));
  net_.sim_.schedule_at(at, [this, pending, ec, stream] {
    if (pending->handler) finish(pending, ec, std::move(*stream));
  });
}

void SimNetwork::HostNetwork::finish(const std::shared_ptr<PendingConnect>& pending, error_code ec,
                                     std::unique_ptr<ByteStream> stream) {
  ConnectHandler handler = std::move(*pending->handler);
  pending->handler.reset();
  std::erase_if(connects_, [](const auto& connect) { return !connect->handler; });
  auto slot = asio::get_associated_cancellation_slot(handler);
  if (slot.is_connected()) slot.clear();
  post_completion(pending->executor, std::move(handler), ec, std::move(stream));
}

// --- SimNetwork -------------------------------------------------------------------------

SimNetwork::SimNetwork(runtime::SimEnv& sim, LinkConfig default_link)
    : state_(std::make_shared<State>(sim, default_link)) {
  crash_observer_ = sim.add_crash_observer([this](runtime::SimHost& host) { on_host_crash(host); });
}

SimNetwork::~SimNetwork() {
  state_->sim_.remove_crash_observer(crash_observer_);
  state_->torn_down_ = true;
  state_->stalled_.clear();
  // Collect first: destroying a handler may destroy streams and sockets, which leave
  // streams_ and datagram_sockets_.
  std::vector<std::any> graveyard;
  for (SimStream* stream : state_->streams_) stream->drop_pending(graveyard);
  std::vector<DatagramSocket::ReceiveHandler> receives;
  drop_datagram_sockets(nullptr, receives);
  graveyard.clear();
  receives.clear();
  for (auto& [name, host] : hosts_) host->on_crash();  // connects in progress: dropped too
}

runtime::SimEnv& SimNetwork::sim() { return state_->sim_; }

Network& SimNetwork::host(runtime::SimHost& host) {
  auto it = hosts_.find(host.name());
  if (it == hosts_.end()) {
    it = hosts_.emplace(host.name(), std::make_unique<HostNetwork>(state_, host)).first;
  }
  return *it->second;
}

Network& SimNetwork::host(std::string_view name) {
  runtime::SimHost* found = state_->sim_.find_host(name);
  if (found == nullptr) found = &state_->sim_.add_host(std::string(name));
  return host(*found);
}

void SimNetwork::on_host_crash(runtime::SimHost& host) {
  std::vector<SimStream*> streams;
  for (SimStream* stream : state_->streams_) {
    if (stream->host() == &host) streams.push_back(stream);
  }
  for (SimStream* stream : streams) stream->on_host_crash();
  std::vector<SimListener*> listeners;
  for (const auto& [address, listener] : state_->listeners_) {
    if (&listener->host() == &host) listeners.push_back(listener);
  }
  for (SimListener* listener : listeners) listener->close();
  std::vector<DatagramSocket::ReceiveHandler> receives;
  drop_datagram_sockets(&host, receives);
  auto it = hosts_.find(host.name());
  if (it != hosts_.end()) it->second->on_crash();
  receives.clear();  // last: destroying a receive's coroutine may destroy anything
}

// Drops the datagram sockets of `host` (of every host if null): see SimDatagramSocket::drop.
void SimNetwork::drop_datagram_sockets(const runtime::SimHost* host,
                                       std::vector<DatagramSocket::ReceiveHandler>& graveyard) {
  std::vector<SimDatagramSocket*> sockets;
  for (const auto& [address, socket] : state_->datagram_sockets_) {
    if (host == nullptr || &socket->host() == host) sockets.push_back(socket);
  }
  for (SimDatagramSocket* socket : sockets) socket->drop(graveyard);
}

void SimNetwork::partition(std::string_view a, std::string_view b) {
  partition_one_way(a, b);
  partition_one_way(b, a);
}

void SimNetwork::partition_one_way(std::string_view from, std::string_view to) {
  state_->cuts_.emplace(std::string(from), std::string(to));
}

void SimNetwork::heal_partition(std::string_view a, std::string_view b) {
  state_->cuts_.erase(State::Link(a, b));
  state_->cuts_.erase(State::Link(b, a));
  after_heal();
}

void SimNetwork::isolate(std::string_view host) { state_->isolated_.emplace(host); }

void SimNetwork::heal_isolation(std::string_view host) {
  auto it = state_->isolated_.find(host);
  if (it != state_->isolated_.end()) state_->isolated_.erase(it);
  after_heal();
}

void SimNetwork::heal_all() {
  state_->cuts_.clear();
  state_->isolated_.clear();
  after_heal();
}

void SimNetwork::clog(std::string_view from, std::string_view to, runtime::Duration duration) {
  TimePoint& until = state_->clogs_[State::Link(from, to)];
  until = std::max(until, state_->sim_.now() + duration);
}

bool SimNetwork::is_cut(std::string_view from, std::string_view to) const {
  return state_->is_cut(from, to);
}

const SimNetwork::DatagramStats& SimNetwork::datagram_stats() const {
  return state_->datagram_stats_;
}

// Directions that waited for a cut to heal deliver again (TCP's retransmission gets through).
void SimNetwork::after_heal() {
  auto stalled = std::move(state_->stalled_);
  state_->stalled_.clear();
  for (auto& [connection, side] : stalled) SimStream::schedule_pump(state_, connection, side);
}

void SimNetwork::set_link(std::string_view from, std::string_view to, LinkConfig config) {
  state_->links_[{std::string(from), std::string(to)}] = config;
}

const LinkConfig& SimNetwork::link_config(std::string_view from, std::string_view to) const {
  return state_->link_config(from, to);
}

}  // namespace meshrpc::transport
