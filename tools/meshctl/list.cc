// meshctl list: GET /services and print it for people.
//
//   meshrpc.examples.Echo
//     Say     unary          NO_SIDE_EFFECTS
//             request   meshrpc.examples.SayRequest { string message = 1; int32 count = 2; }
//             response  meshrpc.examples.SayReply { string message = 1; }
#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "http_client.h"

namespace meshrpc::meshctl {

namespace json = boost::json;

namespace {

std::string string_member(const json::object& object, std::string_view key) {
  const json::value* value = object.if_contains(key);
  if (value == nullptr) return "";
  if (value->is_string()) return std::string(value->as_string());
  return json::serialize(*value);
}

// One field as .proto writes it: "string message = 1", "repeated int32 ids = 2",
// "map<string, int64> counts = 3", "optional bool flag = 4".
std::string field_text(const json::object& field) {
  const std::string label = string_member(field, "label");
  std::string type = string_member(field, "type");
  if (label == "map") {
    type = "map<" + string_member(field, "key_type") + ", " + type + ">";
  } else if (label == "repeated" || label == "optional") {
    type = label + " " + type;
  }
  std::string text = type + " " + string_member(field, "name");
  if (field.contains("number")) text += " = " + string_member(field, "number");
  return text;
}

// "pkg.Msg { string a = 1; int32 b = 2; }", or "(no schema)".
std::string schema_text(const json::value* schema) {
  if (schema == nullptr || !schema->is_object()) return "(no schema)";
  const json::object& object = schema->as_object();
  std::string text = string_member(object, "name") + " {";
  const json::value* fields = object.if_contains("fields");
  if (fields != nullptr && fields->is_array()) {
    for (const json::value& field : fields->as_array()) {
      if (field.is_object()) text += " " + field_text(field.as_object()) + ";";
    }
  }
  return text + " }";
}

struct MethodRow {
  std::string name;
  std::string kind;
  std::string idempotency;
  bool blocking = false;
  std::string request;
  std::string response;
};

void print_service(const json::object& service) {
  std::printf("%s\n", string_member(service, "name").c_str());
  std::vector<MethodRow> rows;
  if (const json::value* methods = service.if_contains("methods"); methods && methods->is_array()) {
    for (const json::value& method : methods->as_array()) {
      if (!method.is_object()) continue;
      const json::object& m = method.as_object();
      const json::value* blocking = m.if_contains("blocking");
      rows.push_back(MethodRow{
          string_member(m, "name"), string_member(m, "kind"), string_member(m, "idempotency"),
          blocking != nullptr && blocking->is_bool() && blocking->as_bool(),
          schema_text(m.if_contains("request")), schema_text(m.if_contains("response"))});
    }
  }
  size_t name_width = 0;
  size_t kind_width = 0;
  for (const MethodRow& row : rows) {
    name_width = std::max(name_width, row.name.size());
    kind_width = std::max(kind_width, row.kind.size());
  }
  const int name_w = static_cast<int>(name_width);
  const int kind_w = static_cast<int>(kind_width);
  for (const MethodRow& row : rows) {
    std::printf("  %-*s  %-*s  %s%s\n", name_w, row.name.c_str(), kind_w, row.kind.c_str(),
                row.idempotency.c_str(), row.blocking ? "  blocking" : "");
    std::printf("  %-*s  request   %s\n", name_w, "", row.request.c_str());
    std::printf("  %-*s  response  %s\n", name_w, "", row.response.c_str());
  }
}

}  // namespace

int run_list(const transport::Address& address, std::chrono::nanoseconds timeout) {
  Result<HttpReply> reply = get_services(address, timeout);
  if (!reply.ok()) return report_error(reply.status());
  if (Status status = reply_status(*reply); !status.ok()) return report_error(status);

  error_code ec;
  json::value body = json::parse(reply->body, ec);
  const json::value* services =
      (!ec && body.is_object()) ? body.as_object().if_contains("services") : nullptr;
  if (services == nullptr || !services->is_array()) {
    return report_error(internal_error("/services replied without a \"services\" array"));
  }
  if (services->as_array().empty()) std::printf("(no services)\n");
  bool first = true;
  for (const json::value& service : services->as_array()) {
    if (!service.is_object()) continue;
    if (!first) std::printf("\n");
    first = false;
    print_service(service.as_object());
  }
  return 0;
}

}  // namespace meshrpc::meshctl
