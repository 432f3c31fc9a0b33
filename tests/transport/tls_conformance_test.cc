// The transport conformance suite over TLS sessions (tests/support/tls_harness.h): over TCP
// on real threads, and over the simulated network with the default LAN links and with the
// cramped links (tiny buffers, 1000-byte writes) that split every TLS record across reads.
#include <memory>

#include "tests/support/sim_harness.h"
#include "tests/support/tcp_harness.h"
#include "tests/support/tls_harness.h"
#include "tests/support/transport_conformance.h"

namespace meshrpc::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(
    Tls, TransportConformance,
    ::testing::Values(TransportUnderTest("tls_tcp",
                                         [] {
                                           return std::make_unique<TlsHarness>(
                                               std::make_unique<TcpHarness>());
                                         }),
                      TransportUnderTest("tls_sim_lan",
                                         [] {
                                           return std::make_unique<TlsHarness>(
                                               std::make_unique<SimHarness>(1));
                                         }),
                      TransportUnderTest("tls_sim_cramped",
                                         [] {
                                           return std::make_unique<TlsHarness>(
                                               std::make_unique<SimHarness>(2, cramped_link()));
                                         })),
    transport_test_name);

}  // namespace
}  // namespace meshrpc::testing
