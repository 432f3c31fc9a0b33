// A linearizability checker for recorded histories (history.h): is there one order of the
// operations, consistent with real time, in which a sequential model of the object returns
// what every client was told?
//
// The search is Wing & Gong's, with Lowe's memoization: walk the operations in real-time order,
// try to linearize each one whose call comes before the first pending return, backtrack when a
// return is reached unlinearized, and skip any (linearized set, model state) configuration
// already explored. Operations are handled as follows:
//   ok      must be linearized between its invoke and its return;
//   fail    dropped: it did not happen;
//   info    (or still pending) may be linearized anywhere after its invoke, or left out;
//           an indeterminate read-only operation constrains nothing and is dropped.
// A model may split a history into partitions that are checked independently (a map's keys):
// linearizability is local, so the whole history is linearizable iff every partition is.
// Indeterminate operations are what make the search expensive (each one is a candidate at every
// point after its invoke), so two exact reductions limit them: an indeterminate blind write
// (Model::is_blind) is never tried right before another blind operation, and one that no
// operation could observe is dropped before the search.
//
// The search is exponential in the worst case, so it stops with kUnknown once a step budget is
// spent rather than hang. Not thread-safe; the History must outlive the call only.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/history.h"

namespace meshrpc::testing {

// A model's state, encoded by the model as bytes so the checker can hash and compare it.
using ModelState = std::string;

// The sequential specification of an object. Implementations are stateless: all state is in
// the ModelState values passed through step().
class Model {
 public:
  virtual ~Model() = default;

  virtual std::string_view name() const = 0;
  // Whether this model knows `op`'s kind; the checker rejects histories with any it does not.
  virtual bool understands(const Operation& op) const = 0;
  // Operations with equal partitions are checked together, others independently.
  virtual std::string partition_of(const Operation& op) const = 0;
  virtual ModelState initial_state() const = 0;
  // True if `op` never changes the state, so an indeterminate one can be dropped.
  virtual bool is_read_only(const Operation& op) const = 0;
  // True if `op` applies from every state, checks nothing, and leaves a state that does not
  // depend on the one before (a plain write). An indeterminate operation linearized just
  // before one had no visible effect, so the search skips that order: without this, every
  // dead end would try every subset of the writes that timed out and never took effect.
  virtual bool is_blind(const Operation& op) const = 0;
  // The state after applying `op` to `state`, provided `op` would have returned `output`;
  // nullopt if it could not have. `output` is nullopt for an indeterminate operation, which
  // may have returned anything. Returning nullopt for an indeterminate operation that would
  // change nothing is allowed (leaving it out is equivalent).
  virtual std::optional<ModelState> step(const ModelState& state, const Operation& op,
                                         const std::optional<Output>& output) const = 0;
  virtual std::string describe_state(const ModelState& state) const = 0;
};

// One register, initially absent: read, write(value), cas(expected -> value). The key is
// ignored: every operation is in one partition.
class RegisterModel final : public Model {
 public:
  std::string_view name() const override { return "register"; }
  bool understands(const Operation& op) const override;
  std::string partition_of(const Operation&) const override { return ""; }
  ModelState initial_state() const override;
  bool is_read_only(const Operation& op) const override { return op.kind == "read"; }
  bool is_blind(const Operation& op) const override { return op.kind == "write"; }
  std::optional<ModelState> step(const ModelState& state, const Operation& op,
                                 const std::optional<Output>& output) const override;
  std::string describe_state(const ModelState& state) const override;
};

// A map from keys to values, every key initially absent: get, put, delete, cas (cas with
// expected nullopt creates an absent key). Each key is a partition.
class KeyValueModel final : public Model {
 public:
  std::string_view name() const override { return "key-value map"; }
  bool understands(const Operation& op) const override;
  std::string partition_of(const Operation& op) const override { return op.key; }
  ModelState initial_state() const override;
  bool is_read_only(const Operation& op) const override { return op.kind == "get"; }
  bool is_blind(const Operation& op) const override {
    return op.kind == "put" || op.kind == "delete";
  }
  std::optional<ModelState> step(const ModelState& state, const Operation& op,
                                 const std::optional<Output>& output) const override;
  std::string describe_state(const ModelState& state) const override;
};

struct CheckOptions {
  // Model steps (one operation tried from one state), over all partitions, before giving up
  // with kUnknown. A million take about a second in a Debug build and bound the memo cache to
  // a million configurations of about 150 bytes each. Simulated histories of a few thousand
  // operations typically need 3 to 50 steps per operation, the more the more of them are
  // indeterminate.
  uint64_t max_steps = 1'000'000;
  // Lines of each listing in the explanation; longer ones are elided in the middle.
  std::size_t max_listed = 40;
};

enum class Verdict { kLinearizable, kNotLinearizable, kUnknown };

std::string_view to_string(Verdict verdict);
std::ostream& operator<<(std::ostream& out, Verdict verdict);

struct LinearizabilityResult {
  Verdict verdict = Verdict::kLinearizable;
  // The partition (key) found not linearizable or left undecided; empty otherwise, and for a
  // model with a single partition.
  std::string key;
  // For that partition: the longest linearization found, in order, and the operation that
  // could not be linearized after it (the first one whose return it reached).
  std::vector<OpId> longest_prefix;
  std::optional<OpId> unplaceable;
  // Model steps spent, over all partitions checked.
  uint64_t steps = 0;
  // Everything above, readable: print it when a test fails.
  std::string explanation;

  bool ok() const { return verdict == Verdict::kLinearizable; }
};

std::ostream& operator<<(std::ostream& out, const LinearizabilityResult& result);

// Throws std::invalid_argument if an operation's kind is one `model` does not understand.
LinearizabilityResult check_linearizable(const History& history, const Model& model,
                                         const CheckOptions& options = {});

}  // namespace meshrpc::testing
