#include "tests/support/history.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <utility>

namespace meshrpc::testing {

Operation Operation::read() { return {"read", "", "", std::nullopt}; }

Operation Operation::write(std::string value) {
  return {"write", "", std::move(value), std::nullopt};
}

Operation Operation::cas(std::optional<std::string> expected, std::string value) {
  return {"cas", "", std::move(value), std::move(expected)};
}

Operation Operation::get(std::string key) { return {"get", std::move(key), "", std::nullopt}; }

Operation Operation::put(std::string key, std::string value) {
  return {"put", std::move(key), std::move(value), std::nullopt};
}

Operation Operation::erase(std::string key) { return {"delete", std::move(key), "", std::nullopt}; }

Operation Operation::cas_key(std::string key, std::optional<std::string> expected,
                             std::string value) {
  return {"cas", std::move(key), std::move(value), std::move(expected)};
}

Output Output::value_of(std::string value) { return {std::move(value), true, false}; }

Output Output::absent() { return {"", false, false}; }

Output Output::cas_result(bool swapped) { return {"", false, swapped}; }

OpId History::invoke(int client, Operation op) {
  const OpId id = operations_.size();
  const uint64_t position = next_position();
  operations_.push_back(
      {id, client, std::move(op), position, std::nullopt, Outcome::kPending, std::nullopt});
  events_.push_back({position, EventType::kInvoke, id});
  return id;
}

OperationRecord& History::pending(OpId id, const char* completion) {
  if (id >= operations_.size()) {
    throw std::logic_error(std::string("History::") + completion + ": unknown operation #" +
                           std::to_string(id));
  }
  OperationRecord& record = operations_[id];
  if (record.outcome != Outcome::kPending) {
    throw std::logic_error(std::string("History::") + completion + ": operation already " +
                           "completed: " + describe(record));
  }
  record.return_position = next_position();
  return record;
}

void History::ok(OpId id, Output output) {
  OperationRecord& record = pending(id, "ok");
  record.outcome = Outcome::kOk;
  record.output = std::move(output);
  events_.push_back({*record.return_position, EventType::kOk, id});
}

void History::fail(OpId id) {
  OperationRecord& record = pending(id, "fail");
  record.outcome = Outcome::kFail;
  events_.push_back({*record.return_position, EventType::kFail, id});
}

void History::info(OpId id) {
  OperationRecord& record = pending(id, "info");
  record.outcome = Outcome::kInfo;
  // The position records when the client gave up; the operation itself may still take effect
  // later, so the checker treats it as never returning.
  events_.push_back({*record.return_position, EventType::kInfo, id});
}

std::string quote(const std::string& text) {
  std::string quoted = "\"";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      quoted += '\\';
      quoted += c;
    } else if (byte < 0x20 || byte >= 0x7f) {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      quoted += escaped;
    } else {
      quoted += c;
    }
  }
  return quoted + "\"";
}

namespace {

std::string describe_expected(const std::optional<std::string>& expected) {
  return expected ? quote(*expected) : "absent";
}

bool is_read(const std::string& kind) { return kind == "read" || kind == "get"; }

std::string describe_output(const Operation& op, const Output& output) {
  if (is_read(op.kind)) return output.found ? quote(output.value) : "absent";
  if (op.kind == "cas") return output.ok ? "swapped" : "not swapped";
  return "ok";
}

std::string describe_result(const OperationRecord& record) {
  switch (record.outcome) {
    case Outcome::kPending:
      return "pending";
    case Outcome::kFail:
      return "fail";
    case Outcome::kInfo:
      return "info";
    case Outcome::kOk:
      return describe_output(record.op, *record.output);
  }
  return "?";
}

}  // namespace

std::string describe(const Operation& op) {
  std::string text = op.kind;
  if (!op.key.empty()) text += " " + quote(op.key);
  if (op.kind == "cas") {
    text += " " + describe_expected(op.expected) + " -> " + quote(op.value);
  } else if (!op.value.empty() || op.kind == "write" || op.kind == "put") {
    text += " " + quote(op.value);
  }
  return text;
}

std::string describe(const OperationRecord& record) {
  // Only an ok operation has a meaningful return: fail/info positions are when the client
  // stopped waiting, not when the operation ended.
  const std::string end = record.outcome == Outcome::kOk || record.outcome == Outcome::kFail
                              ? std::to_string(*record.return_position)
                              : "?";
  return "#" + std::to_string(record.id) + " c" + std::to_string(record.client) + " [" +
         std::to_string(record.invoke_position) + ".." + end + "] " + describe(record.op) + " -> " +
         describe_result(record);
}

std::string format_operations(const History& history, std::span<const OpId> ids,
                              std::size_t max_lines, const Annotation& annotate) {
  auto line = [&](OpId id) {
    const OperationRecord& record = history.operation(id);
    return "  " + describe(record) + (annotate ? annotate(record) : "") + "\n";
  };
  // Keep at least one line from each end so an elided listing still shows where it starts
  // and stops.
  const std::size_t shown = std::max<std::size_t>(max_lines, 2);
  const std::size_t head = ids.size() > shown ? shown / 2 : ids.size();
  const std::size_t tail = ids.size() > shown ? shown - head : 0;
  std::string text;
  for (std::size_t i = 0; i < head; ++i) text += line(ids[i]);
  if (tail > 0) {
    text += "  ... " + std::to_string(ids.size() - head - tail) + " operations elided ...\n";
  }
  for (std::size_t i = ids.size() - tail; i < ids.size(); ++i) {
    text += line(ids[i]);
  }
  return text;
}

std::string format_history(const History& history, std::size_t max_lines) {
  // Ids are assigned at invoke, so id order is invoke order.
  std::vector<OpId> ids(history.size());
  for (OpId id = 0; id < ids.size(); ++id) ids[id] = id;
  return format_operations(history, ids, max_lines);
}

}  // namespace meshrpc::testing
