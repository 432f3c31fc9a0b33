#include "header_printer.h"

#include <map>
#include <string>

#include "fragments.h"

namespace meshrpc::protoc_gen {
namespace {

using google::protobuf::io::Printer;
using Variables = std::map<std::string, std::string>;

Variables variables_of(const MethodModel& method) {
  return {{"name", method.name},
          {"constant", method.constant},
          {"path", method.path},
          {"kind", method.kind},
          {"idempotency", method.idempotency},
          {"request", method.request_type},
          {"response", method.response_type},
          {"declaration", method.declaration}};
}

void print_includes(const FileModel& file, Printer& out) {
  out.Print(
      "#pragma once\n"
      "\n"
      "#include <string>\n"
      "#include <string_view>\n"
      "#include <utility>\n"
      "\n"
      "#include \"$base$.pb.h\"\n"
      "#include \"meshrpc/base/result.h\"\n"
      "#include \"meshrpc/codec/method.h\"\n"
      "#include \"meshrpc/codec/protobuf.h\"\n"
      "#include \"meshrpc/codec/service.h\"\n"
      "#include \"meshrpc/codec/stream.h\"\n"
      "#include \"meshrpc/codec/unary_call.h\"\n"
      "#include \"meshrpc/core/call.h\"\n"
      "#include \"meshrpc/core/call_invoker.h\"\n"
      "#include \"meshrpc/core/server_context.h\"\n"
      "#include \"meshrpc/core/stream.h\"\n"
      "#include \"meshrpc/runtime/asio.h\"\n"
      "\n",
      "base", file.base_name);
}

void print_method_constants(const ServiceModel& service, Printer& out) {
  out.Print("// One per rpc (streaming ones too), as the .proto declares it.\n");
  out.Print("struct Methods {\n");
  out.Indent();
  for (const MethodModel& method : service.methods) {
    out.Print(variables_of(method),
              "static constexpr ::meshrpc::codec::MethodInfo $constant${\n"
              "    \"$path$\", ::meshrpc::codec::MethodKind::$kind$,\n"
              "    ::meshrpc::core::Idempotency::$idempotency$};\n");
  }
  out.Outdent();
  out.Print("};\n\n");
}

void print_client_method(const MethodModel& method, Printer& out) {
  out.Print("\n");
  print_comments(method.comments, out);
  out.Print(variables_of(method),
            "// $declaration$\n"
            "template <typename CompletionToken>\n"
            "auto $name$(const $request$& request, ::meshrpc::core::CallOptions options,\n"
            "    CompletionToken&& token) {\n"
            "  options.idempotency = Methods::$constant$.idempotency;\n"
            "  return ::meshrpc::codec::async_unary_call<$response$>(\n"
            "      *invoker_, ::std::string(Methods::$constant$.name), request,\n"
            "      ::std::move(options), ::std::forward<CompletionToken>(token));\n"
            "}\n");
}

// A streaming rpc opens a typed stream (codec/stream.h); how many messages go each way is
// the .proto's business, not the stream's.
void print_client_stream_method(const MethodModel& method, Printer& out) {
  out.Print("\n");
  print_comments(method.comments, out);
  out.Print(variables_of(method),
            "// $declaration$\n"
            "::meshrpc::codec::ClientStream<$request$, $response$> $name$(\n"
            "    ::meshrpc::core::StreamOptions options = {}) {\n"
            "  return ::meshrpc::codec::open_stream<$request$, $response$>(\n"
            "      *invoker_, Methods::$constant$.name, ::std::move(options));\n"
            "}\n");
}

void print_client(const ServiceModel& service, Printer& out) {
  out.Print(
      "// Typed calls over any CallInvoker (a core::Channel, or a client with retries). Each\n"
      "// completes with void(::meshrpc::Result<Reply>) and sets options.idempotency from the\n"
      "// .proto, which is what retry and hedging policies trust.\n"
      "// Lifetime: the invoker outlives the client. Threading: as the invoker's async_call.\n"
      "class Client {\n"
      " public:\n"
      "  explicit Client(::meshrpc::core::CallInvoker& invoker) : invoker_(&invoker) {}\n"
      "\n"
      "  ::meshrpc::core::CallInvoker& invoker() const { return *invoker_; }\n");
  out.Indent();
  for (const MethodModel& method : service.methods) {
    if (method.unary) {
      print_client_method(method, out);
    } else {
      print_client_stream_method(method, out);
    }
  }
  out.Outdent();
  out.Print(
      "\n"
      " private:\n"
      "  ::meshrpc::core::CallInvoker* invoker_;\n"
      "};\n\n");
}

void print_service_base(const ServiceModel& service, Printer& out) {
  out.Print(
      "// The server side: derive, implement every rpc, and add the object to a\n"
      "// ::meshrpc::codec::Server (add_service), which it must outlive. A handler's errors are\n"
      "// its Result's status; a request that does not decode never reaches it\n"
      "// (INVALID_ARGUMENT).\n"
      "class Service : public ::meshrpc::codec::Service {\n"
      " public:\n"
      "  ::std::string_view service_name() const override;\n"
      "  void register_methods(::meshrpc::codec::Server& server) override;\n");
  out.Indent();
  for (const MethodModel& method : service.methods) {
    out.Print("\n");
    print_comments(method.comments, out);
    if (!method.unary) {
      out.Print(variables_of(method),
                "// $declaration$\n"
                "virtual ::meshrpc::awaitable<::meshrpc::Status> $name$(\n"
                "    ::meshrpc::core::ServerContext& context,\n"
                "    ::meshrpc::codec::ServerStream<$request$, $response$>& stream) = 0;\n");
      continue;
    }
    out.Print(variables_of(method),
              "// $declaration$\n"
              "virtual ::meshrpc::awaitable<::meshrpc::Result<$response$>> $name$(\n"
              "    ::meshrpc::core::ServerContext& context, const $request$& request) = 0;\n");
  }
  out.Outdent();
  out.Print("};\n");
}

void print_service(const ServiceModel& service, Printer& out) {
  print_comments(service.comments, out);
  out.Print(
      "class $name$ final {\n"
      " public:\n"
      "  static constexpr ::std::string_view kServiceName = \"$full_name$\";\n\n",
      "name", service.name, "full_name", service.full_name);
  out.Indent();
  print_method_constants(service, out);
  print_client(service, out);
  print_service_base(service, out);
  out.Print("\n$name$() = delete;\n", "name", service.name);
  out.Outdent();
  out.Print("};\n\n");
}

}  // namespace

void print_header(const FileModel& file, Printer& out) {
  print_banner(file, out);
  print_includes(file, out);
  print_namespace_open(file, out);
  for (const ServiceModel& service : file.services) print_service(service, out);
  print_namespace_close(file, out);
}

}  // namespace meshrpc::protoc_gen
