// meshctl members: GET /members (membership/members_page.h) and print the cluster as a
// table, this node marked with '*':
//
//   NODE       ADDRESS          STATE    INCARNATION  CHANGED    TAGS
//   node-1 *   127.0.0.1:7001   alive    0            12.0s ago  role=worker zone=a
//   node-2     127.0.0.1:7002   dead     3            1.2s ago   role=worker
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

std::string text_of(const json::object& object, std::string_view key) {
  const json::value* value = object.if_contains(key);
  if (value == nullptr) return "";
  if (value->is_string()) return std::string(value->as_string());
  return json::serialize(*value);
}

std::string age_text(const json::object& member) {
  const json::value* since = member.if_contains("since_seconds");
  if (since == nullptr || !since->is_number()) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.1fs ago", since->to_number<double>());
  return text;
}

std::string tags_text(const json::object& member) {
  const json::value* tags = member.if_contains("tags");
  if (tags == nullptr || !tags->is_object()) return "";
  std::string text;
  for (const auto& [key, value] : tags->as_object()) {
    if (!text.empty()) text += ' ';
    text += std::string(key) + "=" +
            (value.is_string() ? std::string(value.as_string()) : json::serialize(value));
  }
  return text;
}

}  // namespace

int run_members(const transport::Address& address, bool raw_json,
                std::chrono::nanoseconds timeout) {
  Result<HttpReply> reply = get_page(address, "/members", timeout);
  if (!reply.ok()) return report_error(reply.status());
  if (reply->status == 404) {
    return report_error(
        not_found_error(address.to_string() + " has no /members page: it runs no gossip cluster"));
  }
  if (Status status = reply_status(*reply); !status.ok()) return report_error(status);
  error_code ec;
  json::value body = json::parse(reply->body, ec);
  const json::value* list =
      !ec && body.is_object() ? body.as_object().if_contains("members") : nullptr;
  if (list == nullptr || !list->is_array()) {
    return report_error(unknown_error("/members replied without a \"members\" list"));
  }
  if (raw_json) {
    std::printf("%s\n", reply->body.c_str());
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"NODE", "ADDRESS", "STATE", "INCARNATION", "CHANGED", "TAGS"}};
  for (const json::value& entry : list->as_array()) {
    if (!entry.is_object()) continue;
    const json::object& member = entry.as_object();
    const json::value* self = member.if_contains("self");
    const bool is_self = self != nullptr && self->is_bool() && self->as_bool();
    rows.push_back({text_of(member, "node_id") + (is_self ? " *" : ""), text_of(member, "address"),
                    text_of(member, "state"), text_of(member, "incarnation"), age_text(member),
                    tags_text(member)});
  }
  std::vector<size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
  return 0;
}

}  // namespace meshrpc::meshctl
