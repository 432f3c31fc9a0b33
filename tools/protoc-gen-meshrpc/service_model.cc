#include "service_model.h"

#include <google/protobuf/compiler/code_generator.h>
#include <google/protobuf/compiler/cpp/names.h>
#include <google/protobuf/descriptor.pb.h>

#include <cctype>
#include <set>
#include <string_view>

namespace meshrpc::protoc_gen {
namespace {

namespace pb = google::protobuf;

// "meshrpc.examples" -> "meshrpc::examples": the namespace protoc's C++ generator uses.
std::string namespace_of(const std::string& package) {
  std::string result;
  for (char c : package) {
    if (c == '.') {
      result += "::";
    } else {
      result += c;
    }
  }
  return result;
}

// "Say" -> "kSay", "get_value" -> "kGet_value": a constant name (STYLE.md) that keeps the rpc
// recognisable.
std::string constant_of(const std::string& method_name) {
  std::string result = "k" + method_name;
  result[1] = static_cast<char>(std::toupper(static_cast<unsigned char>(result[1])));
  return result;
}

// The fully qualified C++ class protoc generates for a message: "::pkg::Outer_Inner".
std::string class_of(const pb::Descriptor& message) {
  return pb::compiler::cpp::QualifiedClassName(&message);
}

struct KindNames {
  const char* enumerator;
  const char* text;
};

KindNames kind_of(const pb::MethodDescriptor& method) {
  if (method.client_streaming() && method.server_streaming()) {
    return {"kBidiStreaming", "bidi streaming"};
  }
  if (method.client_streaming()) return {"kClientStreaming", "client streaming"};
  if (method.server_streaming()) return {"kServerStreaming", "server streaming"};
  return {"kUnary", "unary"};
}

// The standard `option idempotency_level` of descriptor.proto.
const char* idempotency_of(const pb::MethodDescriptor& method) {
  switch (method.options().idempotency_level()) {
    case pb::MethodOptions::NO_SIDE_EFFECTS:
      return "kNoSideEffects";
    case pb::MethodOptions::IDEMPOTENT:
      return "kIdempotent";
    case pb::MethodOptions::IDEMPOTENCY_UNKNOWN:
      break;
  }
  return "kUnknown";
}

std::string declaration_of(const pb::MethodDescriptor& method) {
  return "rpc " + method.name() + "(" + (method.client_streaming() ? "stream " : "") +
         method.input_type()->full_name() + ") returns (" +
         (method.server_streaming() ? "stream " : "") + method.output_type()->full_name() + ")";
}

template <typename Descriptor>
std::string leading_comments(const Descriptor& descriptor) {
  pb::SourceLocation location;
  if (!descriptor.GetSourceLocation(&location)) return "";
  return location.leading_comments;
}

MethodModel read_method(const pb::MethodDescriptor& method) {
  const KindNames kind = kind_of(method);
  MethodModel model;
  model.name = method.name();
  model.constant = constant_of(method.name());
  model.path = "/" + method.service()->full_name() + "/" + method.name();
  model.kind = kind.enumerator;
  model.kind_text = kind.text;
  model.idempotency = idempotency_of(method);
  model.request_type = class_of(*method.input_type());
  model.response_type = class_of(*method.output_type());
  model.declaration = declaration_of(method);
  model.comments = leading_comments(method);
  model.unary = !method.client_streaming() && !method.server_streaming();
  return model;
}

struct ReservedName {
  std::string_view name;
  const char* reason;
};

// The names an rpc may not have: the generated classes have members of these names, and an
// rpc becomes a member function of both Client and Service.
constexpr ReservedName kReservedNames[] = {
    {"Client",
     "would be a member function of the generated class Client named Client, which C++ "
     "reserves for its constructor"},
    {"Service",
     "would be a member function of the generated class Service named Service, which C++ "
     "reserves for its constructor"},
    {"Methods", "would hide the generated struct Methods inside Client and Service"},
    {"kServiceName", "would hide the generated constant kServiceName inside Client and Service"},
    {"invoker",
     "would overload Client::invoker(), the generated client's accessor for its CallInvoker"},
    {"invoker_", "would clash with the generated client's data member invoker_"},
    {"CompletionToken",
     "would clash with the template parameter of the generated client's functions"},
    {"service_name",
     "would overload and hide codec::Service::service_name(), which Service overrides"},
    {"register_methods",
     "would overload and hide codec::Service::register_methods(), which Service overrides"},
};

// C++20's keywords and alternative operator names: an rpc becomes a member function named
// exactly like it, so none of these can be one.
constexpr std::string_view kCppKeywords[] = {"alignas",       "alignof",     "and",
                                             "and_eq",        "asm",         "auto",
                                             "bitand",        "bitor",       "bool",
                                             "break",         "case",        "catch",
                                             "char",          "char8_t",     "char16_t",
                                             "char32_t",      "class",       "compl",
                                             "concept",       "const",       "consteval",
                                             "constexpr",     "constinit",   "const_cast",
                                             "continue",      "co_await",    "co_return",
                                             "co_yield",      "decltype",    "default",
                                             "delete",        "do",          "double",
                                             "dynamic_cast",  "else",        "enum",
                                             "explicit",      "export",      "extern",
                                             "false",         "float",       "for",
                                             "friend",        "goto",        "if",
                                             "inline",        "int",         "long",
                                             "mutable",       "namespace",   "new",
                                             "noexcept",      "not",         "not_eq",
                                             "nullptr",       "operator",    "or",
                                             "or_eq",         "private",     "protected",
                                             "public",        "register",    "reinterpret_cast",
                                             "requires",      "return",      "short",
                                             "signed",        "sizeof",      "static",
                                             "static_assert", "static_cast", "struct",
                                             "switch",        "template",    "this",
                                             "thread_local",  "throw",       "true",
                                             "try",           "typedef",     "typeid",
                                             "typename",      "union",       "unsigned",
                                             "using",         "virtual",     "void",
                                             "volatile",      "wchar_t",     "while",
                                             "xor",           "xor_eq"};

// Why an rpc may not be called `name`, or nullptr when it may.
const char* reserved_name_reason(std::string_view name) {
  for (const ReservedName& reserved : kReservedNames) {
    if (reserved.name == name) return reserved.reason;
  }
  for (std::string_view keyword : kCppKeywords) {
    if (keyword == name) return "would be a member function named after a C++ keyword";
  }
  return nullptr;
}

std::optional<ServiceModel> read_service(const pb::ServiceDescriptor& service, std::string* error) {
  ServiceModel model;
  model.name = service.name();
  model.full_name = service.full_name();
  model.comments = leading_comments(service);
  std::set<std::string> constants;
  for (int i = 0; i < service.method_count(); ++i) {
    MethodModel method = read_method(*service.method(i));
    if (const char* reason = reserved_name_reason(method.name)) {
      *error = "service " + service.full_name() + ": rpc " + method.name + " " + reason +
               "; rename the rpc";
      return std::nullopt;
    }
    if (!constants.insert(method.constant).second) {
      *error = "service " + service.full_name() + ": rpc " + method.name + " would be " +
               method.constant + ", like an earlier rpc; rename one of them";
      return std::nullopt;
    }
    model.methods.push_back(std::move(method));
  }
  return model;
}

}  // namespace

std::optional<FileModel> read_file_model(const pb::FileDescriptor& file, std::string* error) {
  FileModel model;
  model.proto_name = file.name();
  model.base_name = pb::compiler::StripProto(file.name());
  model.cpp_namespace = namespace_of(file.package());
  for (int i = 0; i < file.service_count(); ++i) {
    std::optional<ServiceModel> service = read_service(*file.service(i), error);
    if (!service) return std::nullopt;
    model.services.push_back(std::move(*service));
  }
  return model;
}

}  // namespace meshrpc::protoc_gen
