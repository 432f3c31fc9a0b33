// tcp_floor_client: the raw-TCP floor's client. In unary mode it is closed-loop: each request
// is --payload bytes and its reply is the same bytes echoed; with no framing, the k-th reply
// is complete once k * payload bytes have come back. Each connection keeps its share of
// --inflight requests outstanding (pipelined; 1 in flight is ping-pong): every reply read
// triggers the next request, and all requests triggered by one read leave in one write.
//
// In stream mode each connection carries one stream: it sends a stream request
// (kFloorStreamPreamble and the payload size) and then only reads, counting every --payload
// bytes that arrive as one message. A stream cannot share a connection, so --inflight streams
// open --inflight connections whatever --connections says. When the run ends the client
// closes them.
//
// One thread, one level-triggered epoll loop over all connections.
#include <sys/epoll.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>

#include "../common/client_run.h"
#include "tcp_socket.h"

namespace meshrpc::bench {
namespace {

using Clock = ClientRun::Clock;

// Bytes taken per read: 64 in-flight 4 KiB replies (the largest unary row) in one read, and
// four 64 KiB messages of a stream.
constexpr size_t kReadBytes = 256 * 1024;

struct Connection {
  int fd = -1;
  uint32_t inflight = 0;                  // this connection's share of --inflight
  std::deque<Clock::time_point> started;  // send times of outstanding requests, oldest first
  size_t reply_bytes_seen = 0;            // bytes of the oldest reply (or message) so far
  size_t unsent_bytes = 0;                // request bytes not yet written
  bool watching_writable = false;         // EPOLLOUT is in the interest set
};

class FloorClient {
 public:
  explicit FloorClient(const ClientFlags& flags)
      : flags_(flags),
        requests_(static_cast<size_t>(flags.payload_bytes) * flags.inflight, 'x'),
        read_buffer_(std::make_unique<char[]>(kReadBytes)) {}

  int run() {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (!connect_all()) return 1;
    ClientRun run(flags_);
    const auto start = Clock::now();
    for (size_t i = 0; i < connections_.size(); ++i) {
      Connection& c = connections_[i];
      if (flags_.mode == Mode::kStream) {
        if (!request_stream(c)) return abort_run(run);
        continue;
      }
      c.started.assign(c.inflight, start);
      c.unsent_bytes = static_cast<size_t>(c.inflight) * flags_.payload_bytes;
      if (!send_unsent(c)) return abort_run(run);
      update_interest(c, i);
    }
    event_loop(run);
    for (auto& c : connections_) close(c.fd);
    close(epoll_fd_);
    return run.report();
  }

 private:
  bool connect_all() {
    const uint32_t count = flags_.mode == Mode::kStream ? flags_.inflight : flags_.connections;
    for (uint32_t i = 0; i < count; ++i) {
      Connection c;
      c.fd = connect_tcp(flags_.target);
      if (c.fd < 0) return false;
      c.inflight = flags_.inflight / count + (i < flags_.inflight % count);
      connections_.push_back(std::move(c));
    }
    for (size_t i = 0; i < connections_.size(); ++i) {
      epoll_event event{};
      event.events = EPOLLIN;
      event.data.u64 = i;
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, connections_[i].fd, &event);
    }
    return true;
  }

  // Asks for EPOLLOUT exactly while requests are waiting to be written.
  void update_interest(Connection& c, size_t index) {
    const bool want_writable = c.unsent_bytes > 0;
    if (want_writable == c.watching_writable) return;
    epoll_event event{};
    event.events = want_writable ? EPOLLIN | EPOLLOUT : EPOLLIN;
    event.data.u64 = index;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &event);
    c.watching_writable = want_writable;
  }

  void event_loop(ClientRun& run) {
    epoll_event events[64];
    for (;;) {
      auto now = Clock::now();
      run.advance(now);
      if (!run.issuing() && (outstanding() == 0 || now >= run.drain_deadline())) return;
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(run.next_wakeup() - now);
      const int n =
          epoll_wait(epoll_fd_, events, 64, static_cast<int>(std::max<int64_t>(0, wait.count())));
      now = Clock::now();
      run.advance(now);
      for (int i = 0; i < n; ++i) {
        const size_t index = events[i].data.u64;
        if (!serve(connections_[index], index, events[i].events, now, run)) {
          run.on_call_failed();
          return;
        }
      }
    }
  }

  // Reads replies, completes calls and sends their successors (unary), or counts streamed
  // messages; false when the connection failed or the server sent bytes no request asked for.
  bool serve(Connection& c, size_t index, uint32_t events, Clock::time_point now, ClientRun& run) {
    if (flags_.mode == Mode::kStream) return receive_stream(c, events, now, run);
    if ((events & EPOLLOUT) && !send_unsent(c)) return false;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
      const ssize_t n = read(c.fd, read_buffer_.get(), kReadBytes);
      if (n == 0 || (n < 0 && errno != EAGAIN)) return false;
      if (n > 0 && !complete_replies(c, static_cast<size_t>(n), now, run)) return false;
      if (!send_unsent(c)) return false;
    }
    update_interest(c, index);
    return true;
  }

  bool complete_replies(Connection& c, size_t bytes, Clock::time_point now, ClientRun& run) {
    c.reply_bytes_seen += bytes;
    while (c.reply_bytes_seen >= flags_.payload_bytes) {
      if (c.started.empty()) return false;
      c.reply_bytes_seen -= flags_.payload_bytes;
      run.on_call_done(c.started.front(), now);
      c.started.pop_front();
      if (run.issuing()) {
        c.started.push_back(now);
        c.unsent_bytes += flags_.payload_bytes;
      }
    }
    return true;
  }

  // Sends the stream request in one write: a new connection's empty send buffer always takes
  // its 12 bytes. False when the connection failed.
  bool request_stream(const Connection& c) const {
    char request[sizeof(kFloorStreamPreamble) + sizeof(uint32_t)];
    std::memcpy(request, kFloorStreamPreamble, sizeof(kFloorStreamPreamble));
    for (size_t i = 0; i < sizeof(uint32_t); ++i) {
      request[sizeof(kFloorStreamPreamble) + i] =
          static_cast<char>((flags_.payload_bytes >> (8 * i)) & 0xff);
    }
    return write(c.fd, request, sizeof(request)) == static_cast<ssize_t>(sizeof(request));
  }

  // Reads what has arrived and counts each complete --payload bytes as one message (a
  // message split across reads counts when its last byte arrives); false when the stream
  // ended or failed.
  bool receive_stream(Connection& c, uint32_t events, Clock::time_point now, ClientRun& run) {
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) == 0) return true;
    const ssize_t n = read(c.fd, read_buffer_.get(), kReadBytes);
    if (n == 0 || (n < 0 && errno != EAGAIN)) return false;
    if (n < 0) return true;
    c.reply_bytes_seen += static_cast<size_t>(n);
    for (; c.reply_bytes_seen >= flags_.payload_bytes; c.reply_bytes_seen -= flags_.payload_bytes) {
      run.on_message(now);
    }
    return true;
  }

  // Writes what it can of the unsent requests (all bytes are the same 'x' pattern, so any
  // prefix of requests_ is a valid run of requests); false when the connection failed.
  bool send_unsent(Connection& c) {
    while (c.unsent_bytes > 0) {
      const ssize_t n = write(c.fd, requests_.data(), std::min(c.unsent_bytes, requests_.size()));
      if (n < 0) return errno == EAGAIN;
      c.unsent_bytes -= static_cast<size_t>(n);
    }
    return true;
  }

  size_t outstanding() const {
    size_t total = 0;
    for (const auto& c : connections_) total += c.started.size();
    return total;
  }

  int abort_run(ClientRun& run) {
    run.on_call_failed();
    return run.report();
  }

  const ClientFlags flags_;
  const std::string requests_;
  std::unique_ptr<char[]> read_buffer_;
  int epoll_fd_ = -1;
  std::vector<Connection> connections_;
};

}  // namespace
}  // namespace meshrpc::bench

int main(int argc, char** argv) {
  meshrpc::bench::ClientFlags flags;
  CLI::App app{"Raw-TCP floor: echo or stream client over plain sockets"};
  meshrpc::bench::add_client_flags(app, flags);
  CLI11_PARSE(app, argc, argv);
  return meshrpc::bench::FloorClient(flags).run();
}
