// The backends an end-to-end suite runs over: TCP on real threads and simulated links in
// virtual time, each behind a TransportHarness.
//   INSTANTIATE_TEST_SUITE_P(Backends, MyTest, ::meshrpc::testing::all_backends(),
//                            ::meshrpc::testing::backend_name);
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "tests/support/sim_harness.h"
#include "tests/support/tcp_harness.h"

namespace meshrpc::testing {

struct Backend {
  std::string name;
  std::function<std::unique_ptr<TransportHarness>()> make;
};

inline auto all_backends() {
  return ::testing::Values(Backend{"tcp", [] { return std::make_unique<TcpHarness>(); }},
                           Backend{"sim", [] { return std::make_unique<SimHarness>(11); }});
}

inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param.name;
}

}  // namespace meshrpc::testing
