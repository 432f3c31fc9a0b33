// Service: the base of every generated server class (protoc-gen-meshrpc's `X::Service`). A
// service registers its methods on a codec::Server, one typed handler per method.
//
// Lifetime: the service outlives the server it is added to (the server calls into it).
#pragma once

#include <string_view>

namespace meshrpc::codec {

class Server;

class Service {
 public:
  virtual ~Service() = default;
  // "package.Service", as declared in the .proto.
  virtual std::string_view service_name() const = 0;
  // Registers every method this service implements on `server` (via Server::handle).
  virtual void register_methods(Server& server) = 0;
};

}  // namespace meshrpc::codec
