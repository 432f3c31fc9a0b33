#include "tcp_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace meshrpc::bench {
namespace {

// Connections waiting to be accepted: more than the most connections any row opens at once.
constexpr int kListenBacklog = 128;

sockaddr_in to_sockaddr(const Endpoint& endpoint) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(endpoint.port);
  inet_pton(AF_INET, endpoint.host.c_str(), &addr.sin_addr);
  return addr;
}

int fail(int fd, const char* what, const Endpoint& endpoint) {
  std::fprintf(stderr, "%s %s: %s\n", what, endpoint.to_string().c_str(), std::strerror(errno));
  if (fd >= 0) close(fd);
  return -1;
}

}  // namespace

bool make_nonblocking_nodelay(int fd) {
  const int one = 1;
  return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0 &&
         setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
}

int listen_tcp(Endpoint& endpoint) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(fd, "socket for", endpoint);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr = to_sockaddr(endpoint);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return fail(fd, "bind", endpoint);
  }
  if (listen(fd, kListenBacklog) != 0) return fail(fd, "listen", endpoint);
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return fail(fd, "getsockname", endpoint);
  }
  endpoint.port = ntohs(addr.sin_port);
  return fd;
}

int connect_tcp(const Endpoint& endpoint) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(fd, "socket for", endpoint);
  const sockaddr_in addr = to_sockaddr(endpoint);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return fail(fd, "connect", endpoint);
  }
  if (!make_nonblocking_nodelay(fd)) return fail(fd, "socket options for", endpoint);
  return fd;
}

}  // namespace meshrpc::bench
