// The transport conformance suite over TCP on real threads (tests/support/tcp_harness.h).
#include <memory>

#include "tests/support/tcp_harness.h"
#include "tests/support/transport_conformance.h"

namespace meshrpc::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(
    Tcp, TransportConformance,
    ::testing::Values(TransportUnderTest("tcp", [] { return std::make_unique<TcpHarness>(); })),
    transport_test_name);

}  // namespace
}  // namespace meshrpc::testing
