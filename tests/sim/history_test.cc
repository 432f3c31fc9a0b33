#include "tests/support/history.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "meshrpc/runtime/random.h"
#include "tests/support/linearizability.h"

namespace meshrpc::testing {
namespace {

using ::testing::HasSubstr;

// ---- Building histories ----

// An operation that completed ok without overlapping anything recorded in between.
OpId sequential(History& history, int client, Operation op, Output output = Output::done()) {
  const OpId id = history.invoke(client, std::move(op));
  history.ok(id, std::move(output));
  return id;
}

// The same events with one operation's output replaced: a corrupted copy of a good history.
History with_output(const History& original, OpId target, const Output& output) {
  History copy;
  for (const Event& event : original.events()) {
    const OperationRecord& record = original.operation(event.op);
    switch (event.type) {
      case EventType::kInvoke:
        copy.invoke(record.client, record.op);
        break;
      case EventType::kOk:
        copy.ok(event.op, event.op == target ? output : *record.output);
        break;
      case EventType::kFail:
        copy.fail(event.op);
        break;
      case EventType::kInfo:
        copy.info(event.op);
        break;
    }
  }
  return copy;
}

// What a real atomic store does with `op`: the reference the simulated clients run against.
Output apply_atomically(std::map<std::string, std::string>& store, const Operation& op) {
  const auto it = store.find(op.key);
  const bool found = it != store.end();
  if (op.kind == "read" || op.kind == "get") {
    return found ? Output::value_of(it->second) : Output::absent();
  }
  if (op.kind == "write" || op.kind == "put") {
    store[op.key] = op.value;
  } else if (op.kind == "delete") {
    store.erase(op.key);
  } else if (op.kind == "cas") {
    const bool matches = op.expected ? found && it->second == *op.expected : !found;
    if (matches) store[op.key] = op.value;
    return Output::cas_result(matches);
  }
  return Output::done();
}

struct ClientSimulation {
  int clients = 5;
  int operations = 2000;
  // 0 for a single register (read/write/cas), else a map of this many keys (get/put/delete/cas).
  int keys = 0;
  // Chance, at each step of an operation, that the client gives up on it (info).
  double give_up = 0.0;
  // Chance that a request is refused before it is sent (fail).
  double refuse = 0.0;
  // Chance that a request given up on before it took effect takes effect later after all.
  double late_effect = 0.5;
  bool use_cas = true;
};

// Clients issuing random operations concurrently against one atomic store. Each operation takes
// effect at a single instant between its invoke and its return, so the history is linearizable
// by construction. Operations given up on before taking effect may still take effect later or
// never, like a request stuck in a network. Every written value is unique.
class SimulatedClients {
 public:
  SimulatedClients(uint64_t seed, ClientSimulation config) : random_(seed), config_(config) {}

  History run() {
    in_flight_.resize(config_.clients);
    int invoked = 0;
    while (invoked < config_.operations || busy_clients() > 0) {
      const int client = static_cast<int>(random_.uniform(config_.clients));
      if (in_flight_[client]) {
        advance(client);
      } else if (invoked < config_.operations) {
        in_flight_[client] = InFlight{history_.invoke(client, random_operation()), std::nullopt};
        ++invoked;
      }
      if (!stuck_.empty() && random_.bernoulli(0.02)) resolve_stuck();
    }
    return std::move(history_);
  }

 private:
  struct InFlight {
    OpId id;
    std::optional<Output> output;
  };

  int busy_clients() const {
    int busy = 0;
    for (const auto& slot : in_flight_) busy += slot.has_value();
    return busy;
  }

  std::string random_key() {
    return config_.keys == 0 ? "" : "k" + std::to_string(random_.uniform(config_.keys));
  }

  Operation random_operation() {
    const std::string key = random_key();
    const std::string fresh = "v" + std::to_string(next_value_++);
    const uint64_t dice = random_.uniform(10);
    const bool map = config_.keys > 0;
    if (dice < 4) return map ? Operation::get(key) : Operation::read();
    if (dice < 7) return map ? Operation::put(key, fresh) : Operation::write(fresh);
    if (map && dice == 7) return Operation::erase(key);
    if (!config_.use_cas) return map ? Operation::put(key, fresh) : Operation::write(fresh);
    // Expect the current value half the time so that some swaps succeed.
    std::optional<std::string> expected;
    const auto current = store_.find(key);
    if (current != store_.end() && random_.bernoulli(0.5)) {
      expected = current->second;
    } else if (next_value_ > 1) {
      expected = "v" + std::to_string(random_.uniform(next_value_ - 1));
    }
    return map ? Operation::cas_key(key, expected, fresh) : Operation::cas(expected, fresh);
  }

  // One step of a client's operation: refused, given up on, taking effect, or returning.
  void advance(int client) {
    InFlight& slot = *in_flight_[client];
    const Operation& op = history_.operation(slot.id).op;
    if (!slot.output && random_.bernoulli(config_.refuse)) {
      history_.fail(slot.id);
    } else if (random_.bernoulli(config_.give_up)) {
      history_.info(slot.id);
      if (!slot.output) stuck_.push_back(op);
    } else if (!slot.output) {
      slot.output = apply_atomically(store_, op);
      return;
    } else {
      history_.ok(slot.id, *slot.output);
    }
    in_flight_[client].reset();
  }

  // A request given up on reaches the store after all, or is lost for good.
  void resolve_stuck() {
    const std::size_t index = random_.uniform(stuck_.size());
    if (random_.bernoulli(config_.late_effect)) apply_atomically(store_, stuck_[index]);
    stuck_.erase(stuck_.begin() + static_cast<std::ptrdiff_t>(index));
  }

  runtime::Random random_;
  ClientSimulation config_;
  History history_;
  std::map<std::string, std::string> store_;
  std::vector<std::optional<InFlight>> in_flight_;
  std::vector<Operation> stuck_;
  int next_value_ = 0;
};

bool is_ok_kind(const OperationRecord& record, std::string_view kind) {
  return record.outcome == Outcome::kOk && record.op.kind == kind;
}

// An ok read to make stale: some ok write W1 was followed, strictly in real time, by another ok
// write W2, which returned before the read was invoked. Values are unique, so the read cannot
// return W1's value in any linearization.
std::optional<std::pair<OpId, Output>> find_stale_read(const History& history) {
  const auto& ops = history.operations();
  for (const OperationRecord& first : ops) {
    if (!is_ok_kind(first, "write")) continue;
    for (const OperationRecord& second : ops) {
      if (!is_ok_kind(second, "write") || second.invoke_position < *first.return_position) {
        continue;
      }
      for (const OperationRecord& read : ops) {
        if (is_ok_kind(read, "read") && read.invoke_position > *second.return_position) {
          return std::pair(read.id, Output::value_of(first.op.value));
        }
      }
    }
  }
  return std::nullopt;
}

// ---- History ----

TEST(History, NumbersEventsInRecordOrder) {
  History history;
  const OpId a = history.invoke(1, Operation::write("x"));
  const OpId b = history.invoke(2, Operation::read());
  history.ok(b, Output::absent());
  history.info(a);
  EXPECT_EQ(history.operation(a).invoke_position, 0u);
  EXPECT_EQ(history.operation(b).invoke_position, 1u);
  EXPECT_EQ(history.operation(b).return_position, 2u);
  EXPECT_EQ(history.operation(a).return_position, 3u);
  EXPECT_EQ(history.operation(a).outcome, Outcome::kInfo);
  ASSERT_EQ(history.events().size(), 4u);
  EXPECT_EQ(history.events()[2].type, EventType::kOk);
  EXPECT_EQ(history.events()[2].op, b);
}

TEST(History, RejectsCompletingAnOperationTwice) {
  History history;
  const OpId id = sequential(history, 0, Operation::write("1"));
  EXPECT_THROW(history.ok(id), std::logic_error);
  EXPECT_THROW(history.info(id), std::logic_error);
  EXPECT_THROW(history.fail(id + 1), std::logic_error);
}

TEST(History, PrintsOneReadableLinePerOperation) {
  History history;
  const OpId put = history.invoke(3, Operation::put("k", "v\"1"));
  const OpId cas = history.invoke(1, Operation::cas_key("k", std::nullopt, "2"));
  history.ok(put);
  history.info(cas);
  sequential(history, 2, Operation::get("k"), Output::value_of("v\"1"));
  EXPECT_EQ(format_history(history), R"(  #0 c3 [0..2] put "k" "v\"1" -> ok
  #1 c1 [1..?] cas "k" absent -> "2" -> info
  #2 c2 [4..5] get "k" -> "v\"1"
)");
}

TEST(History, ElidesTheMiddleOfLongListings) {
  History history;
  for (int i = 0; i < 10; ++i) sequential(history, 0, Operation::write(std::to_string(i)));
  const std::string text = format_history(history, 4);
  EXPECT_THAT(text, HasSubstr("#1 c0"));
  EXPECT_THAT(text, HasSubstr("... 6 operations elided ..."));
  EXPECT_THAT(text, HasSubstr("#8 c0"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("#5 c0")));
}

// ---- Linearizability: register ----

TEST(Linearizability, AcceptsAnEmptyHistory) {
  EXPECT_EQ(check_linearizable(History(), RegisterModel()).verdict, Verdict::kLinearizable);
}

TEST(Linearizability, AcceptsSequentialRegisterHistory) {
  History history;
  sequential(history, 0, Operation::read(), Output::absent());
  sequential(history, 1, Operation::write("1"));
  sequential(history, 0, Operation::read(), Output::value_of("1"));
  sequential(history, 2, Operation::cas("1", "2"), Output::cas_result(true));
  sequential(history, 1, Operation::cas("1", "3"), Output::cas_result(false));
  sequential(history, 0, Operation::read(), Output::value_of("2"));
  const LinearizabilityResult result = check_linearizable(history, RegisterModel());
  EXPECT_EQ(result.verdict, Verdict::kLinearizable) << result;
}

TEST(Linearizability, AcceptsOverlappingOperationsInSomeOrder) {
  // Reads overlapping a write may see it or not, and in an order that differs from their
  // invocation order, as long as one order explains them all.
  History history;
  sequential(history, 0, Operation::write("1"));
  const OpId write = history.invoke(0, Operation::write("2"));
  const OpId read_new = history.invoke(1, Operation::read());
  const OpId read_old = history.invoke(2, Operation::read());
  history.ok(read_new, Output::value_of("2"));
  history.ok(read_old, Output::value_of("1"));
  history.ok(write);
  const LinearizabilityResult result = check_linearizable(history, RegisterModel());
  EXPECT_EQ(result.verdict, Verdict::kLinearizable) << result;
}

TEST(Linearizability, AcceptsConcurrentWritesInEitherOrder) {
  for (const char* last : {"a", "b"}) {
    History history;
    const OpId a = history.invoke(0, Operation::write("a"));
    const OpId b = history.invoke(1, Operation::write("b"));
    history.ok(b);
    history.ok(a);
    sequential(history, 2, Operation::read(), Output::value_of(last));
    const LinearizabilityResult result = check_linearizable(history, RegisterModel());
    EXPECT_EQ(result.verdict, Verdict::kLinearizable) << "last " << last << "\n" << result;
  }
}

TEST(Linearizability, RejectsStaleReadAfterCompletedWrite) {
  History history;
  sequential(history, 0, Operation::write("1"));
  sequential(history, 0, Operation::write("2"));
  const OpId read = sequential(history, 1, Operation::read(), Output::value_of("1"));
  const LinearizabilityResult result = check_linearizable(history, RegisterModel());
  EXPECT_EQ(result.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(result.unplaceable, read);
  EXPECT_EQ(result.longest_prefix, (std::vector<OpId>{0, 1}));
  EXPECT_THAT(result.explanation, HasSubstr("Cannot linearize next: #2 c1 [4..5] read -> \"1\""));
  EXPECT_THAT(result.explanation, HasSubstr("#1 c0 [2..3] write \"2\" -> ok  => \"2\""));
}

TEST(Linearizability, RejectsReadsSeeingTheNewValueThenTheOld) {
  History history;
  sequential(history, 0, Operation::write("1"));
  const OpId write = history.invoke(0, Operation::write("2"));
  sequential(history, 1, Operation::read(), Output::value_of("2"));
  sequential(history, 1, Operation::read(), Output::value_of("1"));
  history.ok(write);
  const LinearizabilityResult result = check_linearizable(history, RegisterModel());
  EXPECT_EQ(result.verdict, Verdict::kNotLinearizable) << result;
}

TEST(Linearizability, RejectsCasSucceedingTwiceFromTheSameValue) {
  History history;
  sequential(history, 0, Operation::write("0"));
  const OpId first = history.invoke(1, Operation::cas("0", "1"));
  const OpId second = history.invoke(2, Operation::cas("0", "2"));
  history.ok(first, Output::cas_result(true));
  history.ok(second, Output::cas_result(true));
  const LinearizabilityResult result = check_linearizable(history, RegisterModel());
  EXPECT_EQ(result.verdict, Verdict::kNotLinearizable) << result;
}

TEST(Linearizability, AcceptsConcurrentCasesWhereOnlyOneSucceeds) {
  History history;
  sequential(history, 0, Operation::write("0"));
  const OpId first = history.invoke(1, Operation::cas("0", "1"));
  const OpId second = history.invoke(2, Operation::cas("0", "2"));
  history.ok(first, Output::cas_result(false));
  history.ok(second, Output::cas_result(true));
  sequential(history, 0, Operation::read(), Output::value_of("2"));
  const LinearizabilityResult result = check_linearizable(history, RegisterModel());
  EXPECT_EQ(result.verdict, Verdict::kLinearizable) << result;
}

// ---- Linearizability: indeterminate and failed operations ----

struct IndeterminateCase {
  const char* name;
  // What sequential reads after the indeterminate write("1") return; nullopt means absent.
  std::vector<std::optional<std::string>> reads;
  Verdict expected;
};

TEST(Linearizability, IndeterminateWriteMayTakeEffectLateOrNever) {
  const std::vector<IndeterminateCase> cases = {
      {"took effect", {"1", "1"}, Verdict::kLinearizable},
      {"never took effect", {std::nullopt, std::nullopt}, Verdict::kLinearizable},
      {"took effect after the first read", {std::nullopt, "1"}, Verdict::kLinearizable},
      {"took effect, then was undone", {"1", std::nullopt}, Verdict::kNotLinearizable},
      {"a value never written", {"7"}, Verdict::kNotLinearizable},
  };
  for (const IndeterminateCase& c : cases) {
    History history;
    history.info(history.invoke(0, Operation::write("1")));
    for (const auto& seen : c.reads) {
      sequential(history, 1, Operation::read(), seen ? Output::value_of(*seen) : Output::absent());
    }
    const LinearizabilityResult result = check_linearizable(history, RegisterModel());
    EXPECT_EQ(result.verdict, c.expected) << c.name << "\n" << result;
  }
}

TEST(Linearizability, PendingOperationsCountAsIndeterminate) {
  History history;
  history.invoke(0, Operation::write("1"));
  sequential(history, 1, Operation::read(), Output::value_of("1"));
  const LinearizabilityResult result = check_linearizable(history, RegisterModel());
  EXPECT_EQ(result.verdict, Verdict::kLinearizable) << result;
}

TEST(Linearizability, IndeterminateCasMayHaveSwapped) {
  History history;
  sequential(history, 0, Operation::write("0"));
  history.info(history.invoke(0, Operation::cas("0", "1")));
  sequential(history, 1, Operation::read(), Output::value_of("1"));
  sequential(history, 1, Operation::cas("1", "2"), Output::cas_result(true));
  const LinearizabilityResult result = check_linearizable(history, RegisterModel());
  EXPECT_EQ(result.verdict, Verdict::kLinearizable) << result;
}

TEST(Linearizability, IndeterminateReadsConstrainNothing) {
  History history;
  sequential(history, 0, Operation::write("1"));
  history.info(history.invoke(1, Operation::read()));
  const LinearizabilityResult result = check_linearizable(history, RegisterModel());
  EXPECT_EQ(result.verdict, Verdict::kLinearizable) << result;
}

TEST(Linearizability, IgnoresFailedOperations) {
  History accepted;
  accepted.fail(accepted.invoke(0, Operation::write("1")));
  sequential(accepted, 1, Operation::read(), Output::absent());
  EXPECT_EQ(check_linearizable(accepted, RegisterModel()).verdict, Verdict::kLinearizable);

  // A failed write did not happen, so nothing may have read its value.
  History rejected;
  rejected.fail(rejected.invoke(0, Operation::write("1")));
  sequential(rejected, 1, Operation::read(), Output::value_of("1"));
  EXPECT_EQ(check_linearizable(rejected, RegisterModel()).verdict, Verdict::kNotLinearizable);
}

TEST(Linearizability, RejectsKindsTheModelDoesNotKnow) {
  History history;
  sequential(history, 0, Operation::get("k"), Output::absent());
  EXPECT_THROW(check_linearizable(history, RegisterModel()), std::invalid_argument);
}

// ---- Linearizability: key-value map ----

TEST(Linearizability, ChecksEachKeyOfAMapIndependently) {
  History history;
  const OpId put_a = history.invoke(0, Operation::put("a", "1"));
  sequential(history, 1, Operation::put("b", "2"));
  sequential(history, 1, Operation::get("b"), Output::value_of("2"));
  history.ok(put_a);
  sequential(history, 2, Operation::cas_key("c", std::nullopt, "3"), Output::cas_result(true));
  sequential(history, 2, Operation::erase("b"));
  sequential(history, 0, Operation::get("b"), Output::absent());
  sequential(history, 0, Operation::get("a"), Output::value_of("1"));
  sequential(history, 0, Operation::get("c"), Output::value_of("3"));
  const LinearizabilityResult result = check_linearizable(history, KeyValueModel());
  EXPECT_EQ(result.verdict, Verdict::kLinearizable) << result;
}

TEST(Linearizability, NamesTheOneViolatingKeyAmongAHundred) {
  const History good = SimulatedClients(7, {.clients = 5, .operations = 3000, .keys = 100}).run();
  ASSERT_EQ(check_linearizable(good, KeyValueModel()).verdict, Verdict::kLinearizable);
  OpId target = 0;
  while (!is_ok_kind(good.operation(target), "get") || good.operation(target).op.key != "k37") {
    ++target;
  }
  const History bad = with_output(good, target, Output::value_of("never written"));
  const LinearizabilityResult result = check_linearizable(bad, KeyValueModel());
  EXPECT_EQ(result.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(result.key, "k37");
  EXPECT_EQ(result.unplaceable, target);
  EXPECT_THAT(result.explanation, HasSubstr("Not linearizable: key \"k37\""));
  EXPECT_THAT(result.explanation, HasSubstr("-> \"never written\""));
}

// ---- Linearizability: large and pathological histories ----

// 10,000 steps is about five per operation: far more than a linearizable history with this
// little concurrency needs, and small enough that a search gone wrong ends fast as kUnknown.
constexpr CheckOptions kQuickCheck{.max_steps = 10'000};

TEST(Linearizability, AcceptsALargeSimulatedRegisterHistoryQuickly) {
  const History history = SimulatedClients(1, {.clients = 5, .operations = 2000}).run();
  const LinearizabilityResult result = check_linearizable(history, RegisterModel(), kQuickCheck);
  EXPECT_EQ(result.verdict, Verdict::kLinearizable) << result;
}

TEST(Linearizability, RejectsTheLargeHistoryWithOneStaleRead) {
  const History good = SimulatedClients(1, {.clients = 5, .operations = 2000}).run();
  const auto stale = find_stale_read(good);
  ASSERT_TRUE(stale.has_value());
  const LinearizabilityResult result =
      check_linearizable(with_output(good, stale->first, stale->second), RegisterModel());
  EXPECT_EQ(result.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(result.unplaceable, stale->first) << result;
}

TEST(Linearizability, AcceptsSimulatedHistoriesWithIndeterminateAndFailedOperations) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const ClientSimulation config{
        .clients = 5, .operations = 1000, .give_up = 0.03, .refuse = 0.02};
    const History history = SimulatedClients(seed, config).run();
    const LinearizabilityResult result =
        check_linearizable(history, RegisterModel(), {.max_steps = 200'000});
    EXPECT_EQ(result.verdict, Verdict::kLinearizable) << "seed " << seed << "\n" << result;
  }
}

TEST(Linearizability, AcceptsManyTimedOutWritesWithoutTryingTheirSubsets) {
  // One write in ten times out, and most of those never take effect. Each one that does not
  // is a candidate at every dead end; a search that tried them in every combination would
  // spend the budget.
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    const ClientSimulation config{
        .clients = 5, .operations = 1000, .give_up = 0.05, .late_effect = 0.1, .use_cas = false};
    const History history = SimulatedClients(seed, config).run();
    const LinearizabilityResult result =
        check_linearizable(history, RegisterModel(), {.max_steps = 50'000});
    EXPECT_EQ(result.verdict, Verdict::kLinearizable) << "seed " << seed << "\n" << result;
  }
}

TEST(Linearizability, GivesUpAsUnknownWhenTheBudgetRunsOut) {
  // Thirty concurrent writes and a read of a value none wrote: every subset of the writes, in
  // every state, is a configuration to rule out before the read can be declared unplaceable.
  History history;
  std::vector<OpId> writes(30);
  for (int i = 0; i < 30; ++i) writes[i] = history.invoke(i, Operation::write(std::to_string(i)));
  sequential(history, 30, Operation::read(), Output::value_of("none"));
  for (const OpId write : writes) history.ok(write);
  const LinearizabilityResult result =
      check_linearizable(history, RegisterModel(), {.max_steps = 20'000});
  EXPECT_EQ(result.verdict, Verdict::kUnknown);
  EXPECT_EQ(result.steps, 20'000u);
  EXPECT_THAT(result.explanation, HasSubstr("budget of 20000 steps ran out"));
}

// ---- Linearizability: against brute force ----

// Whether some order of a subset of `history` containing every ok operation respects real time
// and the model: every permutation tried, no memo, nothing shared with the checker's search.
bool brute_force_linearizable(const History& history, const Model& model) {
  std::vector<const OperationRecord*> ops;
  ops.reserve(history.size());
  for (const OperationRecord& record : history.operations()) {
    if (record.outcome != Outcome::kFail) ops.push_back(&record);
  }
  std::vector<bool> placed(ops.size(), false);
  auto must_precede = [&](std::size_t i) {
    // Some unplaced ok operation returned before op i was invoked, so i cannot come next.
    for (std::size_t j = 0; j < ops.size(); ++j) {
      if (placed[j] || j == i || ops[j]->outcome != Outcome::kOk) continue;
      if (*ops[j]->return_position < ops[i]->invoke_position) return true;
    }
    return false;
  };
  std::function<bool(const ModelState&)> extend = [&](const ModelState& state) {
    bool all_ok_placed = true;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      if (!placed[i] && ops[i]->outcome == Outcome::kOk) all_ok_placed = false;
    }
    if (all_ok_placed) return true;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      if (placed[i] || must_precede(i)) continue;
      const auto next = model.step(state, ops[i]->op, ops[i]->output);
      if (!next) continue;
      placed[i] = true;
      const bool found = extend(*next);
      placed[i] = false;
      if (found) return true;
    }
    return false;
  };
  return extend(model.initial_state());
}

// Values drawn from two, plus absence, so that reads and swaps often agree with some order.
std::optional<std::string> small_value(runtime::Random& random) {
  const uint64_t draw = random.uniform(3);
  return draw == 0 ? std::nullopt : std::optional<std::string>(std::to_string(draw));
}

Operation random_small_operation(runtime::Random& random, bool map) {
  const std::string value = small_value(random).value_or("1");
  switch (random.uniform(map ? 4 : 3)) {
    case 0:
      return map ? Operation::get("k") : Operation::read();
    case 1:
      return map ? Operation::put("k", value) : Operation::write(value);
    case 2:
      return map ? Operation::cas_key("k", small_value(random), value)
                 : Operation::cas(small_value(random), value);
    default:
      return Operation::erase("k");
  }
}

void complete_randomly(runtime::Random& random, History& history, OpId id) {
  const uint64_t outcome = random.uniform(10);
  const std::string& kind = history.operation(id).op.kind;
  if (outcome < 2) {
    history.info(id);
  } else if (outcome == 2) {
    history.fail(id);
  } else if (kind == "read" || kind == "get") {
    const auto seen = small_value(random);
    history.ok(id, seen ? Output::value_of(*seen) : Output::absent());
  } else {
    history.ok(id, Output::cas_result(random.bernoulli(0.5)));
  }
}

// Eight operations from three clients, with random overlaps, outcomes and outputs: often not
// linearizable, sometimes so.
History random_small_history(runtime::Random& random, bool map) {
  History history;
  std::vector<std::optional<OpId>> in_flight(3);
  int invoked = 0;
  while (invoked < 8 || in_flight[0] || in_flight[1] || in_flight[2]) {
    const int client = static_cast<int>(random.uniform(3));
    auto& slot = in_flight[client];
    if (slot) {
      complete_randomly(random, history, *slot);
      slot.reset();
    } else if (invoked < 8) {
      slot = history.invoke(client, random_small_operation(random, map));
      ++invoked;
    }
  }
  return history;
}

TEST(Linearizability, AgreesWithBruteForceOnRandomSmallHistories) {
  const RegisterModel register_model;
  const KeyValueModel map_model;
  for (const Model* model : std::vector<const Model*>{&register_model, &map_model}) {
    runtime::Random random(42);
    int linearizable = 0;
    for (int i = 0; i < 3000; ++i) {
      const History history = random_small_history(random, model == &map_model);
      const bool expected = brute_force_linearizable(history, *model);
      const LinearizabilityResult result = check_linearizable(history, *model);
      ASSERT_EQ(result.verdict, expected ? Verdict::kLinearizable : Verdict::kNotLinearizable)
          << model->name() << " history " << i << ":\n"
          << format_history(history) << result;
      linearizable += expected;
    }
    // Both verdicts must be well represented, or the comparison proves little.
    EXPECT_GT(linearizable, 300) << model->name();
    EXPECT_LT(linearizable, 2700) << model->name();
  }
}

}  // namespace
}  // namespace meshrpc::testing
