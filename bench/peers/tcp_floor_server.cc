// tcp_floor_server: the raw-TCP floor, what this machine does with no framework at all. A
// batched byte echo: each connection reads as much as is available and writes it back in one
// write, with no framing, parsing or copying beyond the kernel's. A connection that starts
// with a stream request (kFloorStreamPreamble and a payload size, echo_flags.h) is a stream
// instead: the server writes 'x' bytes to it as fast as the socket takes them until the
// client closes.
//
// Each of --threads threads runs its own level-triggered epoll loop. The listening socket is
// in every loop with EPOLLEXCLUSIVE, so each connection is accepted by, and stays on, one
// thread; nothing is shared between threads but the listening socket and the stop eventfd.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "../common/server_lifetime.h"
#include "tcp_socket.h"

namespace meshrpc::bench {
namespace {

// One read's worth: holds 64 in-flight 4 KiB requests (the largest row) in one batch.
constexpr size_t kBufferBytes = 256 * 1024;
// Connections per thread: far above any row; beyond it new connections are closed at once.
constexpr int kMaxConnectionsPerThread = 1024;
// Events taken per epoll_wait.
constexpr int kMaxEvents = 64;
// A stream request: the preamble, then the payload size as a little-endian uint32.
constexpr size_t kStreamRequestBytes = sizeof(kFloorStreamPreamble) + sizeof(uint32_t);

// What a connection turned out to be. Its first byte decides: an echo client's payload is
// 'x' bytes, a stream request starts with kFloorStreamPreamble[0], '\0'.
enum class Role {
  kUndecided,      // nothing received yet
  kEcho,           // echoes what it reads
  kStreamRequest,  // waiting for the rest of the stream request
  kStream,         // writes 'x' bytes until the client closes; never reads again
};

// A client connection's state. Invariant for echo: while unsent bytes remain (unsent_begin <
// unsent_end) the connection waits for EPOLLOUT and does not read, so a client that stops
// reading holds at most one buffer of this server's memory.
struct Connection {
  int fd = -1;
  Role role = Role::kUndecided;
  std::unique_ptr<char[]> buffer = std::make_unique<char[]>(kBufferBytes);
  size_t unsent_begin = 0;
  size_t unsent_end = 0;
  size_t request_bytes = 0;  // stream request bytes received (at the start of buffer)
};

class EchoLoop {
 public:
  EchoLoop(int listen_fd, int stop_fd) : listen_fd_(listen_fd), stop_fd_(stop_fd) {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    watch(listen_fd_, EPOLLIN | EPOLLEXCLUSIVE, EPOLL_CTL_ADD);
    watch(stop_fd_, EPOLLIN, EPOLL_CTL_ADD);
  }
  EchoLoop(const EchoLoop&) = delete;
  EchoLoop& operator=(const EchoLoop&) = delete;
  ~EchoLoop() {
    for (auto& connection : connections_) {
      if (connection) close(connection->fd);
    }
    close(epoll_fd_);
  }

  // Runs until the stop eventfd becomes readable.
  void run() {
    epoll_event events[kMaxEvents];
    for (;;) {
      const int n = epoll_wait(epoll_fd_, events, kMaxEvents, -1);
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == stop_fd_) return;
        if (fd == listen_fd_) {
          accept_ready();
        } else {
          serve(*connections_[static_cast<size_t>(fd)], events[i].events);
        }
      }
    }
  }

 private:
  void watch(int fd, uint32_t events, int op) {
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    epoll_ctl(epoll_fd_, op, fd, &event);
  }

  void accept_ready() {
    for (;;) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN: another thread took it, or none left
      if (open_connections_ >= kMaxConnectionsPerThread || !make_nonblocking_nodelay(fd)) {
        close(fd);
        continue;
      }
      if (connections_.size() <= static_cast<size_t>(fd)) connections_.resize(fd + 1);
      connections_[fd] = std::make_unique<Connection>();
      connections_[fd]->fd = fd;
      ++open_connections_;
      watch(fd, EPOLLIN, EPOLL_CTL_ADD);
    }
  }

  void serve(Connection& c, uint32_t events) {
    switch (c.role) {
      case Role::kUndecided:
        return decide_role(c, events);
      case Role::kEcho:
        return echo(c, events);
      case Role::kStreamRequest:
        return read_stream_request(c);
      case Role::kStream:
        return stream(c);
    }
  }

  // Peeks at the first byte, so that a stream connection is never read past its request.
  void decide_role(Connection& c, uint32_t events) {
    char first = 0;
    const ssize_t n = recv(c.fd, &first, 1, MSG_PEEK);
    if (n == 0 || (n < 0 && errno != EAGAIN)) return close_connection(c);
    if (n < 0) return;
    if (first == kFloorStreamPreamble[0]) {
      c.role = Role::kStreamRequest;
      return read_stream_request(c);
    }
    c.role = Role::kEcho;
    echo(c, events);
  }

  void echo(Connection& c, uint32_t events) {
    if (c.unsent_begin < c.unsent_end) {
      if (!send_unsent(c)) return close_connection(c);
      if (c.unsent_begin == c.unsent_end) watch(c.fd, EPOLLIN, EPOLL_CTL_MOD);
      return;
    }
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) == 0) return;
    const ssize_t n = read(c.fd, c.buffer.get(), kBufferBytes);
    if (n == 0 || (n < 0 && errno != EAGAIN)) return close_connection(c);
    if (n < 0) return;
    c.unsent_begin = 0;
    c.unsent_end = static_cast<size_t>(n);
    if (!send_unsent(c)) return close_connection(c);
    if (c.unsent_begin < c.unsent_end) watch(c.fd, EPOLLOUT, EPOLL_CTL_MOD);
  }

  // Writes what it can; false when the connection failed. MSG_NOSIGNAL: a client that closed
  // early gets its connection closed, not the server killed by SIGPIPE.
  static bool send_unsent(Connection& c) {
    const ssize_t n =
        send(c.fd, c.buffer.get() + c.unsent_begin, c.unsent_end - c.unsent_begin, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN;
    c.unsent_begin += static_cast<size_t>(n);
    return true;
  }

  // Reads the rest of the stream request, and no further; once it is complete and valid the
  // connection becomes a stream.
  void read_stream_request(Connection& c) {
    const ssize_t n =
        read(c.fd, c.buffer.get() + c.request_bytes, kStreamRequestBytes - c.request_bytes);
    if (n == 0 || (n < 0 && errno != EAGAIN)) return close_connection(c);
    if (n < 0) return;
    c.request_bytes += static_cast<size_t>(n);
    if (c.request_bytes < kStreamRequestBytes) return;
    if (!valid_stream_request(c.buffer.get())) return close_connection(c);
    // The stream carries no framing, so payload-size chunks of 'x' are just 'x' bytes: the
    // size is only checked here and used by the client to count messages. One buffer of
    // them, filled once, is written over and over.
    std::memset(c.buffer.get(), 'x', kBufferBytes);
    c.role = Role::kStream;
    watch(c.fd, EPOLLOUT, EPOLL_CTL_MOD);
  }

  static bool valid_stream_request(const char* request) {
    if (std::memcmp(request, kFloorStreamPreamble, sizeof(kFloorStreamPreamble)) != 0) {
      return false;
    }
    const auto* size_bytes =
        reinterpret_cast<const unsigned char*>(request + sizeof(kFloorStreamPreamble));
    const uint32_t payload_bytes = uint32_t{size_bytes[0]} | uint32_t{size_bytes[1]} << 8 |
                                   uint32_t{size_bytes[2]} << 16 | uint32_t{size_bytes[3]} << 24;
    return payload_bytes >= 1 && payload_bytes <= kMaxPayloadBytes;
  }

  // One write of as much of the buffer as the socket takes, per EPOLLOUT (level-triggered,
  // so a connection that took part of it is woken again at once). The write fails (EPIPE,
  // ECONNRESET) once the client has closed, which is how every stream ends.
  void stream(Connection& c) {
    if (send(c.fd, c.buffer.get(), kBufferBytes, MSG_NOSIGNAL) < 0 && errno != EAGAIN) {
      close_connection(c);
    }
  }

  void close_connection(Connection& c) {
    const int fd = c.fd;
    close(fd);  // also removes it from the epoll set
    connections_[static_cast<size_t>(fd)].reset();
    --open_connections_;
  }

  int epoll_fd_ = -1;
  const int listen_fd_;
  const int stop_fd_;
  int open_connections_ = 0;
  std::vector<std::unique_ptr<Connection>> connections_;  // indexed by fd
};

int run_server(ServerFlags& flags) {
  const int listen_fd = listen_tcp(flags.listen);
  if (listen_fd < 0) return 1;
  const int stop_fd = eventfd(0, EFD_CLOEXEC);
  std::vector<std::thread> threads;
  for (uint32_t i = 0; i < flags.threads; ++i) {
    threads.emplace_back([listen_fd, stop_fd] { EchoLoop(listen_fd, stop_fd).run(); });
  }
  announce_listening(flags.listen);
  wait_for_termination(flags.max_lifetime_s);
  const uint64_t one = 1;
  if (write(stop_fd, &one, sizeof(one)) != sizeof(one)) std::perror("stop eventfd");
  for (auto& thread : threads) thread.join();
  close(listen_fd);
  close(stop_fd);
  return 0;
}

}  // namespace
}  // namespace meshrpc::bench

int main(int argc, char** argv) {
  meshrpc::bench::block_termination_signals();
  meshrpc::bench::ServerFlags flags;
  CLI::App app{"Raw-TCP floor: a batched byte echo server over plain sockets"};
  meshrpc::bench::add_server_flags(app, flags);
  CLI11_PARSE(app, argc, argv);
  return meshrpc::bench::run_server(flags);
}
