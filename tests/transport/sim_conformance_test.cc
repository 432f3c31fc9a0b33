// The transport conformance suite over the simulated network (virtual time, one thread),
// with two link profiles: the default LAN, and slow jittery links with tiny buffers that
// force partial reads and writes and reordering pressure on every test.
#include <memory>

#include "tests/support/sim_harness.h"
#include "tests/support/transport_conformance.h"

namespace meshrpc::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(
    Sim, TransportConformance,
    ::testing::Values(TransportUnderTest("sim_lan", [] { return std::make_unique<SimHarness>(1); }),
                      TransportUnderTest("sim_cramped",
                                         [] {
                                           return std::make_unique<SimHarness>(2, cramped_link());
                                         })),
    transport_test_name);

}  // namespace
}  // namespace meshrpc::testing
