#include "source_printer.h"

#include <string>

#include "fragments.h"

namespace meshrpc::protoc_gen {
namespace {

using google::protobuf::io::Printer;

// `this->`: an rpc named `server`, `context` or `request` would otherwise be the parameter.
void print_registration(const MethodModel& method, Printer& out) {
  if (!method.unary) {
    out.Print(
        "server.handle_stream<$request$, $response$>(\n"
        "    Methods::$constant$,\n"
        "    [this](::meshrpc::core::ServerContext& context,\n"
        "           ::meshrpc::codec::ServerStream<$request$, $response$>& stream) {\n"
        "      return this->$name$(context, stream);\n"
        "    });\n",
        "request", method.request_type, "response", method.response_type, "constant",
        method.constant, "name", method.name);
    return;
  }
  out.Print(
      "server.handle<$request$, $response$>(\n"
      "    Methods::$constant$,\n"
      "    [this](::meshrpc::core::ServerContext& context, const $request$& request) {\n"
      "      return this->$name$(context, request);\n"
      "    });\n",
      "request", method.request_type, "response", method.response_type, "constant", method.constant,
      "name", method.name);
}

void print_service(const ServiceModel& service, Printer& out) {
  out.Print("::std::string_view $name$::Service::service_name() const { return kServiceName; }\n\n",
            "name", service.name);
  // A service with no rpc registers nothing: its parameter stays unnamed (-Wextra).
  out.Print("void $name$::Service::register_methods(::meshrpc::codec::Server&$param$) {\n", "name",
            service.name, "param", service.methods.empty() ? " /*server*/" : " server");
  out.Indent();
  for (const MethodModel& method : service.methods) print_registration(method, out);
  out.Outdent();
  out.Print("}\n\n");
}

}  // namespace

void print_source(const FileModel& file, Printer& out) {
  print_banner(file, out);
  out.Print(
      "#include \"$base$.meshrpc.h\"\n"
      "\n"
      "#include \"meshrpc/codec/server.h\"\n"
      "\n",
      "base", file.base_name);
  print_namespace_open(file, out);
  for (const ServiceModel& service : file.services) print_service(service, out);
  print_namespace_close(file, out);
}

}  // namespace meshrpc::protoc_gen
