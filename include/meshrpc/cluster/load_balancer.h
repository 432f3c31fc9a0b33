// LoadBalancer: picks which provider of a service a call goes to. The interface is public so
// that a user can write their own (gRPC's is internal: grpc/grpc#21326); the built-in ones
// below are made by name with make_load_balancer().
//
// Contract, for the driver (cluster::Client) and for anyone implementing one:
//   - update(providers) replaces the provider list at once: the next pick() sees it, so new
//     providers get traffic immediately (gRPC round_robin over DNS waits for connections to age
//     out). Per-provider state (latency estimates, rotation position) is carried over for
//     providers that stay, matched by node id.
//   - pick(request) returns an index into the list given by the last update(), or nullopt
//     when no provider may be picked (empty list, or every eligible one excluded). The index is
//     valid until the next update().
//   - Eligibility (is_eligible below), the same for every built-in balancer:
//       * a provider named in request.excluded_node_ids (it already failed in this call) is
//         never picked, so failover always moves to a different provider; when all eligible
//         providers are excluded pick() returns nullopt ("all providers failed");
//       * only kHealthy providers are picked while at least one provider in the list is
//         kHealthy. When none is (panic mode), health is ignored and all providers are
//         eligible: a resolver or health checker that marks everything down is more likely
//         wrong than every process being down, and refusing all calls would turn its mistake
//         into a full outage (Envoy's panic threshold, taken at 0% healthy: partial ejection
//         is already bounded by outlier detection's max-ejection percent).
//   - on_call_started / on_call_finished report each attempt sent to a picked provider, named
//     by node id, so that feedback stays correct when an update() lands between a pick and
//     the call's end (indices may shift; node ids do not). Feedback for a node id that is no
//     longer listed is ignored. Balancers that do not use feedback ignore it.
//
// A pure state machine (DESIGN.md principle 1): time and randomness come in the PickRequest,
// nothing reads a clock or a global generator, so a simulation replays exactly.
// Threading: not thread-safe. One balancer per service per client (round robin positions and
// latency estimates are per service); its owner serialises calls to it.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "meshrpc/base/result.h"
#include "meshrpc/cluster/provider.h"
#include "meshrpc/runtime/clock.h"
#include "meshrpc/runtime/random.h"

namespace meshrpc::cluster {

// What a balancer may use to choose, for one attempt of one call.
struct PickRequest {
  // The caller's generator (the Env's, or a simulation's seeded one); the only source of
  // randomness a balancer may draw from.
  runtime::Random& random;
  // Current time, for balancers whose state decays over time (p2c).
  runtime::TimePoint now{};
  // For ring_hash: calls with the same key go to the same provider while it is eligible. Any
  // 64-bit value; the balancer mixes it, so sequential ids spread evenly. Hash string keys
  // with stable_hash64(), not std::hash (which differs between builds and processes).
  std::optional<uint64_t> hash_key{};
  // Node ids of providers that already failed in this call: never picked again in it.
  std::span<const std::string> excluded_node_ids{};
};

class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;

  // Replaces the provider list. Node ids are unique within it (the provider registry keeps
  // them so); with duplicates, state keyed by node id is shared between them.
  virtual void update(std::vector<Provider> providers) = 0;

  // An index into the list of the last update(), or nullopt when none is eligible.
  virtual std::optional<size_t> pick(const PickRequest& request) = 0;

  // An attempt was sent to the provider `node_id` (as picked).
  virtual void on_call_started(std::string_view node_id) { (void)node_id; }

  // An attempt started with on_call_started ended at `now` after `latency`; `ok` is false
  // when its outcome says something bad about the provider (as for the circuit breaker:
  // unavailable, too slow, overloaded), true otherwise (an application error is an answer).
  virtual void on_call_finished(std::string_view node_id, runtime::TimePoint now,
                                runtime::Duration latency, bool ok) {
    (void)node_id, (void)now, (void)latency, (void)ok;
  }

  // The name it is made by ("p2c"), for metrics, logs and status pages.
  virtual std::string_view name() const = 0;
};

// Building blocks for balancers, the built-in ones included.

// True when `providers` is not empty and none is kHealthy: pick among all (panic mode).
bool in_panic_mode(std::span<const Provider> providers);

// Whether `provider` may be picked for `request`: not excluded, and kHealthy unless `panic`.
// O(excluded_node_ids), which failover keeps at max_attempts.
bool is_eligible(const Provider& provider, const PickRequest& request, bool panic);

// A uniformly random eligible provider of `providers`, or nullopt when none is eligible.
// O(providers), no allocation.
std::optional<size_t> pick_uniform(std::span<const Provider> providers, const PickRequest& request,
                                   bool panic);

// The weight balancers use: Provider::weight, with 0 read as 1 (see provider.h).
constexpr uint32_t effective_weight(const Provider& provider) {
  return provider.weight == 0 ? 1 : provider.weight;
}

// A 64-bit hash of `bytes` that is the same on every platform, build and run, for request
// keys and ring positions: FNV-1a 64 over the bytes, then the murmur3 64-bit finaliser,
// because FNV-1a alone leaves strings that differ in their last byte close together in the
// high bits, which order the ring.
uint64_t stable_hash64(std::string_view bytes);

// Options of the built-in balancers. Each default says why; invalid values throw
// std::invalid_argument from the make_* function (a setup-time programmer error).

struct P2cOptions {
  // Time constant tau of the latency estimate: an old observation's weight falls by e every
  // tau (half-life tau x ln 2, about 7 s at 10 s). 10 s is Finagle's and Linkerd's PeakEWMA
  // default: long enough that one quick answer does not clear a slow provider's record,
  // short enough that a recovered provider is trusted again within tens of seconds. The
  // estimate is peak-sensitive: a sample above it replaces it at once, so a slowdown is
  // acted on by the next pick. Must be positive.
  runtime::Duration decay_time = std::chrono::seconds(10);
};

struct RingHashOptions {
  // Ring points per unit of weight. 160 is ketama's count (libmemcached, twemproxy): a
  // provider's share of the ring then deviates from its fair share by about 1/sqrt(160),
  // 8%, so adding one of N providers moves about 1/(N+1) of the keys, well within 1/N.
  // Must be positive.
  uint32_t points_per_weight = 160;
  // Ring size cap: 2^17 points of 16 bytes is 2 MiB per service. Past it (more than 819
  // providers at weight 1, or large weights) every provider's points are scaled down in
  // proportion, keeping at least one each; shares stay proportional but get noisier.
  // Must be at least 1.
  size_t max_ring_points = size_t{1} << 17;
};

// pick-first: the first eligible provider in list order, so calls stick to one provider and
// fail over down the list. For services with a primary and standbys.
std::unique_ptr<LoadBalancer> make_first_balancer();

// Uniformly random among eligible providers; stateless. Weights are not used.
std::unique_ptr<LoadBalancer> make_random_balancer();

// Rotation over eligible providers in list order. The first pick starts at a random position
// (as gRPC does) so that clients started together do not all hit the first provider. After an
// update the rotation continues from the same position, so added providers are reached within
// one rotation. Weights are not used.
std::unique_ptr<LoadBalancer> make_round_robin_balancer();

// Power of two choices (the default): draw two distinct eligible providers at random and take
// the one with the lower cost = (outstanding attempts + 1) x latency estimate. Picking the
// better of two avoids the herd that "always the least loaded" causes among many clients,
// and still steers away from slow or busy providers (Mitzenmacher; Finagle, Linkerd, brpc
// p2c). The estimate is a time-decayed, peak-sensitive EWMA of latency (see P2cOptions);
// between samples it relaxes towards the mean estimate of the service, so a provider that
// was slow and is no longer picked is tried again once the others are busier than it looks,
// instead of starving forever, and its first fast answer after the gap resets its estimate.
// (While the others are idle it is left alone: they are cheaper, and skipping it costs
// nothing.) A provider without samples is costed at that mean (1 ms when none has samples).
// A failed attempt counts as at least twice the current estimate, so a provider that fails
// fast (connection refused) does not look fast and attract traffic. Weights are not used.
std::unique_ptr<LoadBalancer> make_p2c_balancer(P2cOptions options = {});

// Consistent hashing on PickRequest::hash_key (Karger et al.; ketama): each provider owns
// points_per_weight x weight points on a 64-bit ring at positions derived from its node id,
// and a key goes to the owner of the first point at or after it. Adding or removing a
// provider moves only the keys it gains or loses. When the owner is not eligible (excluded,
// unhealthy) the walk continues along the ring to the next eligible provider, so failover and
// ejection move only that provider's keys. Ineligible providers keep their points, so a
// provider that recovers gets its own keys back. Without a hash_key a call has no affinity
// and goes to a uniformly random eligible provider.
std::unique_ptr<LoadBalancer> make_ring_hash_balancer(RingHashOptions options = {});

// Smooth weighted round robin (nginx): each pick adds every eligible provider's weight to its
// current value, takes the largest and subtracts the total from it. Over any sum-of-weights
// consecutive picks each provider gets exactly its weight, interleaved rather than in bursts
// (5:1:1 gives a a b a c a a). Positions are carried over updates by node id.
std::unique_ptr<LoadBalancer> make_weighted_round_robin_balancer();

// The names make_load_balancer() accepts.
inline constexpr std::array<std::string_view, 6> kLoadBalancerNames = {
    "first", "random", "round_robin", "p2c", "ring_hash", "weighted_round_robin"};

// p2c: it adapts to slow and busy providers without configuration.
inline constexpr std::string_view kDefaultLoadBalancer = "p2c";

// The built-in balancer called `name`, with default options. INVALID_ARGUMENT naming the
// known balancers for any other name (a configuration mistake the operator fixes).
Result<std::unique_ptr<LoadBalancer>> make_load_balancer(std::string_view name);

}  // namespace meshrpc::cluster
