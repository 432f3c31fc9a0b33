// History: what simulated clients asked for and what they were told, in real-time order, for
// the linearizability checker (tests/support/linearizability.h).
//
// A client calls invoke() just before sending a request, then exactly one of
//   ok(id, output)  the request took effect and returned `output`;
//   fail(id)        it definitely did not take effect (refused before it was sent, or an error
//                   the server guarantees means "not applied");
//   info(id)        the outcome is unknown (timeout, lost connection): it may take effect at any
//                   moment after its invoke, or never.
// An operation still pending when the history is checked counts as info.
//
// Every event gets the next value of a logical counter. That is real-time order only because the
// simulator runs every client on one thread: record each event at the moment the client sees
// it. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace meshrpc::testing {

using OpId = std::size_t;

// A request, generic enough for a register and for a key-value map. The model
// (linearizability.h) decides which kinds it understands:
//   register:  read, write(value), cas(expected -> value)
//   map:       get(key), put(key, value), delete(key), cas(key, expected -> value)
struct Operation {
  std::string kind;
  // Empty for a single register.
  std::string key;
  // What write/put stores, or what cas stores when it swaps.
  std::string value;
  // cas only: the value it must find; nullopt means "only if absent" (create).
  std::optional<std::string> expected;

  static Operation read();
  static Operation write(std::string value);
  static Operation cas(std::optional<std::string> expected, std::string value);
  static Operation get(std::string key);
  static Operation put(std::string key, std::string value);
  // Kind "delete" (a C++ keyword, hence the name).
  static Operation erase(std::string key);
  static Operation cas_key(std::string key, std::optional<std::string> expected, std::string value);

  bool operator==(const Operation&) const = default;
};

// What an operation returned. Each kind reads only the fields it defines.
struct Output {
  // read/get: the value seen, when `found`.
  std::string value;
  // read/get: whether there was a value at all.
  bool found = false;
  // cas: whether it swapped.
  bool ok = false;

  static Output value_of(std::string value);
  static Output absent();
  static Output cas_result(bool swapped);
  // write/put/delete: acknowledged, nothing to compare.
  static Output done() { return {}; }

  bool operator==(const Output&) const = default;
};

enum class Outcome { kPending, kOk, kFail, kInfo };

// One operation from invoke to completion. Positions are logical times; a pending or info
// operation has no return position.
struct OperationRecord {
  OpId id = 0;
  int client = 0;
  Operation op;
  uint64_t invoke_position = 0;
  std::optional<uint64_t> return_position;
  Outcome outcome = Outcome::kPending;
  // Set only when outcome is kOk.
  std::optional<Output> output;
};

enum class EventType { kInvoke, kOk, kFail, kInfo };

struct Event {
  uint64_t position = 0;
  EventType type = EventType::kInvoke;
  OpId op = 0;
};

class History {
 public:
  OpId invoke(int client, Operation op);
  // Each throws std::logic_error unless `id` is pending: completing twice is a bug in the test.
  void ok(OpId id, Output output = Output::done());
  void fail(OpId id);
  void info(OpId id);

  // Indexed by OpId.
  const std::vector<OperationRecord>& operations() const { return operations_; }
  const OperationRecord& operation(OpId id) const { return operations_.at(id); }
  // Every event, in the order recorded.
  const std::vector<Event>& events() const { return events_; }
  std::size_t size() const { return operations_.size(); }

 private:
  OperationRecord& pending(OpId id, const char* completion);
  uint64_t next_position() { return next_position_++; }

  std::vector<OperationRecord> operations_;
  std::vector<Event> events_;
  uint64_t next_position_ = 0;
};

// `"text"`, with quotes, backslashes and unprintable bytes escaped.
std::string quote(const std::string& text);
// `cas k "1" -> "2"`: the request alone.
std::string describe(const Operation& op);
// One line: `#12 c3 [40..45] write "5" -> ok`; `[41..?]` marks an operation that never returned.
std::string describe(const OperationRecord& record);
// Appended to an operation's line by format_operations, e.g. the model state after it.
using Annotation = std::function<std::string(const OperationRecord&)>;

// The given operations, one line each, in the order given, indented by two spaces. Past
// `max_lines`, the middle is elided (the start and the end are what locate a failure).
std::string format_operations(const History& history, std::span<const OpId> ids,
                              std::size_t max_lines = 60, const Annotation& annotate = {});
// Every operation, in invoke order.
std::string format_history(const History& history, std::size_t max_lines = 60);

}  // namespace meshrpc::testing
