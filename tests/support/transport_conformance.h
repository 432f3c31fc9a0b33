// TransportConformance: the behaviour every ByteStream / Listener / Connector implementation
// must show, written once against TransportHarness and run over each transport (TCP on real
// threads, the simulated network in virtual time). The tests are coroutines handed to
// harness.run(), so they synchronise only through the transport itself: no sleeps.
//
// To run the suite over a transport, in a tests/<layer>/*_test.cc file:
//
//   INSTANTIATE_TEST_SUITE_P(
//       Tcp, TransportConformance,
//       ::testing::Values(TransportUnderTest("tcp", [] { return std::make_unique<TcpHarness>();
//       })), transport_test_name);
//
// Each test gets a fresh harness from the factory. Tasks given to harness.run() are plain
// lambdas returning a coroutine whose state lives in its own frame, so a harness only has to
// keep the task functions alive until it has called them.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "tests/support/transport_harness.h"

namespace meshrpc::testing {

struct TransportUnderTest {
  // Defined out of line on purpose: the TEST_Ps live in transport_conformance.cc inside the
  // static meshrpc_test_support library, and a file that instantiates the suite calls this
  // constructor, which makes the linker keep that object file and its tests.
  TransportUnderTest(std::string name, std::function<std::unique_ptr<TransportHarness>()> make);

  // Appears in test names: letters, digits and '_' only.
  std::string name;
  std::function<std::unique_ptr<TransportHarness>()> make;
};

void PrintTo(const TransportUnderTest& transport, std::ostream* os);

// Name generator for INSTANTIATE_TEST_SUITE_P: the transport's name.
std::string transport_test_name(const ::testing::TestParamInfo<TransportUnderTest>& info);

class TransportConformance : public ::testing::TestWithParam<TransportUnderTest> {
 protected:
  void SetUp() override;

  TransportHarness& harness() { return *harness_; }

 private:
  std::unique_ptr<TransportHarness> harness_;
};

}  // namespace meshrpc::testing
