#include "tests/support/linearizability.h"

#include <algorithm>
#include <functional>
#include <map>
#include <stdexcept>
#include <unordered_set>
#include <utility>

namespace meshrpc::testing {
namespace {

// ---- One register's semantics, shared by RegisterModel and each key of KeyValueModel ----

enum class RegisterAction { kRead, kWrite, kDelete, kCas, kUnknown };

RegisterAction register_action(std::string_view kind) {
  if (kind == "read") return RegisterAction::kRead;
  if (kind == "write") return RegisterAction::kWrite;
  if (kind == "cas") return RegisterAction::kCas;
  return RegisterAction::kUnknown;
}

RegisterAction map_action(std::string_view kind) {
  if (kind == "get") return RegisterAction::kRead;
  if (kind == "put") return RegisterAction::kWrite;
  if (kind == "delete") return RegisterAction::kDelete;
  if (kind == "cas") return RegisterAction::kCas;
  return RegisterAction::kUnknown;
}

// State encoding: "" is absent, '=' followed by the value is present; the marker keeps an empty
// value distinct from no value.
constexpr char kPresentMarker = '=';

ModelState absent_state() { return {}; }
ModelState present_state(const std::string& value) { return kPresentMarker + value; }
bool is_present(const ModelState& state) { return !state.empty(); }
std::string_view value_in(const ModelState& state) { return std::string_view(state).substr(1); }

bool holds(const ModelState& state, const std::optional<std::string>& value) {
  if (!value) return !is_present(state);
  return is_present(state) && value_in(state) == *value;
}

std::optional<ModelState> read_step(const ModelState& state, const std::optional<Output>& output) {
  if (!output) return state;
  const std::optional<std::string> seen =
      output->found ? std::optional<std::string>(output->value) : std::nullopt;
  if (!holds(state, seen)) return std::nullopt;
  return state;
}

std::optional<ModelState> cas_step(const ModelState& state, const Operation& op,
                                   const std::optional<Output>& output) {
  const bool matches = holds(state, op.expected);
  // An indeterminate cas that would not match changes nothing, the same as leaving it out, so
  // only the swapping outcome is worth exploring.
  if (!output) return matches ? std::optional(present_state(op.value)) : std::nullopt;
  if (output->ok != matches) return std::nullopt;
  return matches ? present_state(op.value) : state;
}

std::optional<ModelState> register_step(RegisterAction action, const ModelState& state,
                                        const Operation& op, const std::optional<Output>& output) {
  switch (action) {
    case RegisterAction::kRead:
      return read_step(state, output);
    case RegisterAction::kWrite:
      return present_state(op.value);
    case RegisterAction::kDelete:
      return absent_state();
    case RegisterAction::kCas:
      return cas_step(state, op, output);
    case RegisterAction::kUnknown:
      break;
  }
  return std::nullopt;
}

std::string describe_register(const ModelState& state) {
  return is_present(state) ? quote(std::string(value_in(state))) : "absent";
}

}  // namespace

bool RegisterModel::understands(const Operation& op) const {
  return register_action(op.kind) != RegisterAction::kUnknown;
}

ModelState RegisterModel::initial_state() const { return absent_state(); }

std::optional<ModelState> RegisterModel::step(const ModelState& state, const Operation& op,
                                              const std::optional<Output>& output) const {
  return register_step(register_action(op.kind), state, op, output);
}

std::string RegisterModel::describe_state(const ModelState& state) const {
  return describe_register(state);
}

bool KeyValueModel::understands(const Operation& op) const {
  return map_action(op.kind) != RegisterAction::kUnknown;
}

ModelState KeyValueModel::initial_state() const { return absent_state(); }

std::optional<ModelState> KeyValueModel::step(const ModelState& state, const Operation& op,
                                              const std::optional<Output>& output) const {
  return register_step(map_action(op.kind), state, op, output);
}

std::string KeyValueModel::describe_state(const ModelState& state) const {
  return describe_register(state);
}

std::string_view to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::kLinearizable:
      return "linearizable";
    case Verdict::kNotLinearizable:
      return "not linearizable";
    case Verdict::kUnknown:
      return "unknown";
  }
  return "?";
}

std::ostream& operator<<(std::ostream& out, Verdict verdict) { return out << to_string(verdict); }

std::ostream& operator<<(std::ostream& out, const LinearizabilityResult& result) {
  return out << result.explanation;
}

namespace {

// ---- The search ----

// Which operations of a partition are linearized, as a growable bitset indexed by position in
// the partition. Partitions of simulation histories hold thousands of operations.
class OpSet {
 public:
  explicit OpSet(std::size_t size) : words_((size + 63) / 64, 0) {}

  void insert(std::size_t i) { words_[i / 64] |= bit(i); }
  void erase(std::size_t i) { words_[i / 64] &= ~bit(i); }

  // The memo key for this set. Operations are linearized roughly in order, so the set is all
  // ones up to some word, a window about as wide as the concurrency, then all zeros: keeping
  // only the window makes a cache entry a few words however long the history.
  std::pair<std::size_t, std::vector<uint64_t>> window() const {
    std::size_t begin = 0;
    while (begin < words_.size() && words_[begin] == ~uint64_t{0}) ++begin;
    std::size_t end = words_.size();
    while (end > begin && words_[end - 1] == 0) --end;
    const auto first = words_.begin();
    return {begin, std::vector<uint64_t>(first + static_cast<std::ptrdiff_t>(begin),
                                         first + static_cast<std::ptrdiff_t>(end))};
  }

 private:
  static uint64_t bit(std::size_t i) { return uint64_t{1} << (i % 64); }

  std::vector<uint64_t> words_;
};

// One explored configuration: which operations are linearized and the state they lead to.
struct Configuration {
  std::size_t full_words = 0;
  std::vector<uint64_t> window;
  ModelState state;
  // Whether the last one was optional: that rules out a blind operation next (Model::is_blind),
  // so the same set and state can have fewer continuations.
  bool after_optional = false;

  bool operator==(const Configuration&) const = default;
};

struct ConfigurationHash {
  std::size_t operator()(const Configuration& c) const {
    std::size_t hash = std::hash<ModelState>{}(c.state) ^ (c.full_words * 0x9e3779b97f4a7c15ULL) ^
                       static_cast<std::size_t>(c.after_optional);
    for (const uint64_t word : c.window) {
      hash ^= std::hash<uint64_t>{}(word) + 0x9e3779b97f4a7c15ULL + (hash << 6) + (hash >> 2);
    }
    return hash;
  }
};

// An operation of the partition being checked.
struct PartitionOp {
  const OperationRecord* record = nullptr;
  // Must be linearized (it returned ok); the others may be left out.
  bool required = false;
  bool blind = false;
};

// A node of the real-time list: an operation's call, or its return (only required operations
// have one: the others may take effect arbitrarily late). Lifting a linearized operation
// unlinks both; backtracking relinks them in reverse, so the list stays sorted.
struct Entry {
  bool is_call = false;
  std::size_t op = 0;
  Entry* match = nullptr;
  Entry* prev = nullptr;
  Entry* next = nullptr;
};

struct SearchOutcome {
  Verdict verdict = Verdict::kLinearizable;
  uint64_t steps = 0;
  std::vector<OpId> longest_prefix;
  std::optional<OpId> unplaceable;
};

class Search {
 public:
  Search(const Model& model, std::vector<PartitionOp> ops, uint64_t max_steps);
  Search(const Search&) = delete;
  Search& operator=(const Search&) = delete;

  SearchOutcome run();

 private:
  struct Frame {
    Entry* call;
    ModelState state_before;
  };

  void drop_invisible_writes();
  bool could_be_observed(const PartitionOp& write);
  void build_list();
  Entry* past_call(Entry& call);
  bool after_optional() const;
  bool try_linearize(Entry& call);
  Entry& undo_last();
  void note_dead_end(const Entry& ret);
  std::vector<OpId> stack_ids() const;
  static void lift(Entry& call);
  static void unlift(Entry& call);

  const Model& model_;
  std::vector<PartitionOp> ops_;
  const uint64_t max_steps_;
  std::vector<Entry> entries_;
  Entry head_;
  ModelState state_;
  OpSet linearized_;
  std::size_t required_left_ = 0;
  std::vector<Frame> stack_;
  std::unordered_set<Configuration, ConfigurationHash> seen_;
  SearchOutcome outcome_;
};

Search::Search(const Model& model, std::vector<PartitionOp> ops, uint64_t max_steps)
    : model_(model),
      ops_(std::move(ops)),
      max_steps_(max_steps),
      state_(model.initial_state()),
      linearized_(ops_.size()) {
  drop_invisible_writes();
  build_list();
}

// An optional blind operation is only ever linearized just before a non-blind one that accepts
// the state it leaves (see past_call). If no operation that could come after it does, leaving
// it out is the only choice: drop it now rather than try it after every step of the search.
// Typical: a write that timed out and never took effect.
void Search::drop_invisible_writes() {
  std::vector<PartitionOp> kept;
  for (const PartitionOp& op : ops_) {
    if (op.required || !op.blind || could_be_observed(op)) kept.push_back(op);
  }
  ops_ = std::move(kept);
}

bool Search::could_be_observed(const PartitionOp& write) {
  // Blind, so the state after it is the same whatever the state before.
  const std::optional<ModelState> after =
      model_.step(model_.initial_state(), write.record->op, std::nullopt);
  if (!after) return true;
  for (const PartitionOp& other : ops_) {
    if (other.blind) continue;
    // An ok operation that returned before the write was invoked comes before it.
    if (other.required && *other.record->return_position < write.record->invoke_position) {
      continue;
    }
    // Out of budget, keeping it is still correct, and the search will stop at once.
    if (outcome_.steps >= max_steps_) return true;
    ++outcome_.steps;
    if (model_.step(*after, other.record->op, other.record->output)) return true;
  }
  return false;
}

void Search::build_list() {
  struct Timed {
    uint64_t position;
    std::size_t entry;
  };
  std::vector<Timed> order;
  // Reserved up front: entries point at each other, so the vector must never reallocate.
  entries_.reserve(2 * ops_.size());
  for (std::size_t i = 0; i < ops_.size(); ++i) {
    entries_.push_back({true, i});
    order.push_back({ops_[i].record->invoke_position, entries_.size() - 1});
    if (!ops_[i].required) continue;
    ++required_left_;
    entries_.push_back({false, i});
    order.push_back({*ops_[i].record->return_position, entries_.size() - 1});
    entries_[entries_.size() - 2].match = &entries_.back();
    entries_.back().match = &entries_[entries_.size() - 2];
  }
  // History positions are distinct, so the order is total.
  std::sort(order.begin(), order.end(),
            [](const Timed& a, const Timed& b) { return a.position < b.position; });
  Entry* last = &head_;
  for (const Timed& timed : order) {
    Entry& entry = entries_[timed.entry];
    entry.prev = last;
    last->next = &entry;
    last = &entry;
  }
}

void Search::lift(Entry& call) {
  call.prev->next = call.next;
  if (call.next) call.next->prev = call.prev;
  if (Entry* ret = call.match) {
    ret->prev->next = ret->next;
    if (ret->next) ret->next->prev = ret->prev;
  }
}

void Search::unlift(Entry& call) {
  if (Entry* ret = call.match) {
    ret->prev->next = ret;
    if (ret->next) ret->next->prev = ret;
  }
  call.prev->next = &call;
  if (call.next) call.next->prev = &call;
}

SearchOutcome Search::run() {
  Entry* entry = head_.next;
  while (required_left_ > 0) {
    if (outcome_.steps >= max_steps_) {
      outcome_.verdict = Verdict::kUnknown;
      return outcome_;
    }
    // While a required operation is unlinearized its return is still ahead of the walk.
    if (entry == nullptr) throw std::logic_error("linearizability search ran off its list");
    if (entry->is_call) {
      entry = past_call(*entry);
      continue;
    }
    // A return reached unlinearized: nothing consistent can come next here.
    note_dead_end(*entry);
    if (stack_.empty()) {
      outcome_.verdict = Verdict::kNotLinearizable;
      return outcome_;
    }
    entry = undo_last().next;
  }
  outcome_.longest_prefix = stack_ids();
  outcome_.unplaceable.reset();
  return outcome_;
}

// Returns where the walk goes next: back to the start after linearizing `call`, else onward.
Entry* Search::past_call(Entry& call) {
  // An optional operation followed at once by a blind one had no visible effect, so that order
  // is equivalent to leaving it out, which is tried anyway. Without this, every dead end would
  // try every sequence of the writes that timed out.
  const bool redundant = ops_[call.op].blind && after_optional();
  if (redundant || !try_linearize(call)) return call.next;
  return head_.next;
}

bool Search::after_optional() const {
  return !stack_.empty() && !ops_[stack_.back().call->op].required;
}

bool Search::try_linearize(Entry& call) {
  ++outcome_.steps;
  const PartitionOp& op = ops_[call.op];
  std::optional<ModelState> next = model_.step(state_, op.record->op, op.record->output);
  if (!next) return false;
  linearized_.insert(call.op);
  auto [full_words, window] = linearized_.window();
  if (!seen_.insert({full_words, std::move(window), *next, !op.required}).second) {
    linearized_.erase(call.op);
    return false;
  }
  stack_.push_back({&call, std::move(state_)});
  state_ = std::move(*next);
  lift(call);
  if (op.required) --required_left_;
  return true;
}

Entry& Search::undo_last() {
  Frame frame = std::move(stack_.back());
  stack_.pop_back();
  state_ = std::move(frame.state_before);
  linearized_.erase(frame.call->op);
  unlift(*frame.call);
  if (ops_[frame.call->op].required) ++required_left_;
  return *frame.call;
}

void Search::note_dead_end(const Entry& ret) {
  if (outcome_.unplaceable && stack_.size() <= outcome_.longest_prefix.size()) return;
  outcome_.longest_prefix = stack_ids();
  outcome_.unplaceable = ops_[ret.op].record->id;
}

std::vector<OpId> Search::stack_ids() const {
  std::vector<OpId> ids;
  ids.reserve(stack_.size());
  for (const Frame& frame : stack_) ids.push_back(ops_[frame.call->op].record->id);
  return ids;
}

// ---- Splitting a history and explaining the verdict ----

struct Partition {
  std::string key;
  std::vector<PartitionOp> ops;
};

// The operations the search must consider, grouped by partition: failed operations and
// indeterminate reads are dropped (neither can constrain anything).
std::vector<Partition> split(const History& history, const Model& model) {
  std::map<std::string, std::vector<PartitionOp>> by_key;
  for (const OperationRecord& record : history.operations()) {
    if (!model.understands(record.op)) {
      throw std::invalid_argument("check_linearizable: the " + std::string(model.name()) +
                                  " model does not understand " + describe(record));
    }
    const bool required = record.outcome == Outcome::kOk;
    if (record.outcome == Outcome::kFail) continue;
    if (!required && model.is_read_only(record.op)) continue;
    by_key[model.partition_of(record.op)].push_back({&record, required, model.is_blind(record.op)});
  }
  std::vector<Partition> partitions;
  partitions.reserve(by_key.size());
  for (auto& [key, ops] : by_key) partitions.push_back({key, std::move(ops)});
  // Small partitions first: when the budget runs out on a hard one, every easier one has
  // already had its chance to show a violation. Stable, so ties keep key order.
  std::stable_sort(partitions.begin(), partitions.end(),
                   [](const auto& a, const auto& b) { return a.ops.size() < b.ops.size(); });
  return partitions;
}

std::string plural(std::size_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

std::string partition_label(const std::string& key, std::size_t partition_count) {
  return key.empty() && partition_count == 1 ? "the history" : "key " + quote(key);
}

// The prefix's last `max_listed` operations, each with the model state after it.
std::string explain_prefix(const History& history, const Model& model,
                           const std::vector<OpId>& prefix, std::size_t max_listed) {
  std::map<OpId, std::string> state_after;
  ModelState state = model.initial_state();
  for (const OpId id : prefix) {
    const OperationRecord& record = history.operation(id);
    // Replaying a prefix the search accepted cannot fail; value() would throw if it did.
    state = model.step(state, record.op, record.output).value();
    state_after[id] = model.describe_state(state);
  }
  const std::size_t shown = std::min(prefix.size(), max_listed);
  const std::span<const OpId> tail(prefix.end() - static_cast<std::ptrdiff_t>(shown), prefix.end());
  std::string text = "Longest linearizable prefix found: " + plural(prefix.size(), "operation");
  if (shown < prefix.size()) text += "; the last " + std::to_string(shown);
  text += ", each with the state after it:\n";
  if (prefix.empty()) text += "  (none; initial state " + model.describe_state(state) + ")\n";
  return text + format_operations(history, tail, max_listed, [&](const OperationRecord& record) {
           return "  => " + state_after[record.id];
         });
}

// The partition's operations that overlap the stretch of time from the listed end of the
// prefix to the unplaceable operation's return: the ones the search was choosing among.
std::string explain_neighbourhood(const History& history, const Partition& partition,
                                  const std::vector<OpId>& prefix, OpId unplaceable,
                                  std::size_t max_listed) {
  const std::size_t context = std::min(prefix.size(), max_listed);
  uint64_t from = history.operation(unplaceable).invoke_position;
  for (std::size_t i = prefix.size() - context; i < prefix.size(); ++i) {
    from = std::min(from, history.operation(prefix[i]).invoke_position);
  }
  const uint64_t until = *history.operation(unplaceable).return_position;
  std::vector<OpId> ids;
  for (const PartitionOp& op : partition.ops) {
    const OperationRecord& record = *op.record;
    const bool ends_after_from = !op.required || *record.return_position >= from;
    if (record.invoke_position <= until && ends_after_from) ids.push_back(record.id);
  }
  const std::unordered_set<OpId> placed(prefix.begin(), prefix.end());
  return format_operations(history, ids, max_listed, [&](const OperationRecord& record) {
    return placed.contains(record.id) ? std::string() : "  (not in the prefix)";
  });
}

std::string headline(const Model& model, const Partition& partition, const std::string& label,
                     std::size_t checked, std::size_t partition_count,
                     const LinearizabilityResult& result, const CheckOptions& options) {
  const std::string size = plural(partition.ops.size(), "operation");
  if (result.verdict == Verdict::kNotLinearizable) {
    return "Not linearizable: " + label + " (" + size + ", " + std::string(model.name()) +
           " model; " + plural(result.steps, "step") + " explored).\n";
  }
  return "Linearizability unknown: the budget of " + plural(options.max_steps, "step") +
         " ran out on " + label + " (" + size + "); " + plural(checked, "smaller partition") +
         " linearizable, " + std::to_string(partition_count - checked - 1) + " unchecked.\n";
}

std::string explain(const History& history, const Model& model, const Partition& partition,
                    std::size_t partition_count, std::size_t checked,
                    const LinearizabilityResult& result, const CheckOptions& options) {
  const std::string label = partition_label(partition.key, partition_count);
  std::string text = headline(model, partition, label, checked, partition_count, result, options);
  text += explain_prefix(history, model, result.longest_prefix, options.max_listed);
  if (!result.unplaceable) return text;
  const OperationRecord& stuck = history.operation(*result.unplaceable);
  const bool definite = result.verdict == Verdict::kNotLinearizable;
  text += (definite ? "Cannot linearize next: " : "Deepest dead end so far, at: ") +
          describe(stuck) + "\n  It returned at position " +
          std::to_string(*stuck.return_position) +
          ", and from the state above no sequence of the operations still unplaced that were "
          "invoked by then lets it return what it did.\n";
  text += "Operations on " + label + " around that point:\n";
  return text + explain_neighbourhood(history, partition, result.longest_prefix,
                                      *result.unplaceable, options.max_listed);
}

}  // namespace

LinearizabilityResult check_linearizable(const History& history, const Model& model,
                                         const CheckOptions& options) {
  const std::vector<Partition> partitions = split(history, model);
  LinearizabilityResult result;
  for (std::size_t checked = 0; checked < partitions.size(); ++checked) {
    const Partition& partition = partitions[checked];
    Search search(model, partition.ops, options.max_steps - result.steps);
    SearchOutcome outcome = search.run();
    result.steps += outcome.steps;
    if (outcome.verdict == Verdict::kLinearizable) continue;
    result.verdict = outcome.verdict;
    result.key = partition.key;
    result.longest_prefix = std::move(outcome.longest_prefix);
    result.unplaceable = outcome.unplaceable;
    result.explanation =
        explain(history, model, partition, partitions.size(), checked, result, options);
    return result;
  }
  result.explanation = "Linearizable: " + plural(history.size(), "operation") + " in " +
                       plural(partitions.size(), "partition") + ", " +
                       plural(result.steps, "step") + " explored.";
  return result;
}

}  // namespace meshrpc::testing
