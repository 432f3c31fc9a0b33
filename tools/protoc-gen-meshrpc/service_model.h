// What protoc-gen-meshrpc prints, read once from a .proto's descriptors: every name already
// spelled as the generated C++ needs it, so the printers only arrange text.
#pragma once

#include <google/protobuf/descriptor.h>

#include <optional>
#include <string>
#include <vector>

namespace meshrpc::protoc_gen {

struct MethodModel {
  std::string name;          // "Say": the generated client's and service's member function
  std::string constant;      // "kSay": its MethodInfo in Methods
  std::string path;          // "/meshrpc.examples.Echo/Say": the canonical method name
  std::string kind;          // "kUnary": a ::meshrpc::codec::MethodKind enumerator
  std::string kind_text;     // "unary", "server streaming", ...: for comments
  std::string idempotency;   // "kNoSideEffects": a ::meshrpc::core::Idempotency enumerator
  std::string request_type;  // "::meshrpc::examples::SayRequest": protoc's C++ class
  std::string response_type;
  std::string declaration;  // "rpc Say(meshrpc.examples.SayRequest) returns (...)"
  std::string comments;     // the rpc's leading comments in the .proto, may be empty
  bool unary = true;
};

struct ServiceModel {
  std::string name;       // "Echo": the generated class
  std::string full_name;  // "meshrpc.examples.Echo"
  std::string comments;
  std::vector<MethodModel> methods;
};

struct FileModel {
  std::string proto_name;     // "examples/echo.proto", as protoc names it
  std::string base_name;      // "examples/echo": the generated files are base_name + ".meshrpc.h"
  std::string cpp_namespace;  // "meshrpc::examples"; empty for a .proto without package
  std::vector<ServiceModel> services;
};

// Reads `file` into a model. Fails (nullopt, *error says why) when two rpcs of a service
// would get the same MethodInfo constant ("get" and "Get" are both kGet), or when an rpc is
// named like a member of the generated classes (Client, Service, Methods, kServiceName,
// invoker, invoker_, CompletionToken, service_name, register_methods).
std::optional<FileModel> read_file_model(const google::protobuf::FileDescriptor& file,
                                         std::string* error);

}  // namespace meshrpc::protoc_gen
