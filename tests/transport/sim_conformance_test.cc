// The transport conformance suite over the simulated network (virtual time, one thread),
// with two link profiles: the default LAN, and slow jittery links with tiny buffers that
// force partial reads and writes and reordering pressure on every test.
#include <memory>

#include "tests/support/sim_harness.h"
#include "tests/support/transport_conformance.h"

namespace meshrpc::testing {
namespace {

using namespace std::chrono_literals;

transport::LinkConfig cramped_link() {
  transport::LinkConfig link;
  link.delay_min = 1ms;
  link.delay_max = 40ms;
  link.buffer_bytes = 4096;
  link.max_write_bytes = 1000;
  return link;
}

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
