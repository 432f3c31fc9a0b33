// An idle connection stays small: once its calls are done it holds no read or write block
// (the read loop waits for readability holding no buffer). Counted in simulation, where the
// block count belongs to this test alone.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "meshrpc/core/channel.h"
#include "meshrpc/core/server.h"
#include "tests/support/sim_harness.h"

namespace meshrpc::core {
namespace {

using namespace std::chrono_literals;

TEST(IdleConnection, HoldsNoBuffersBetweenCalls) {
  ::meshrpc::testing::SimHarness harness(3);
  Server server(harness.server_env(), harness.server_network());
  server.register_method(
      "/test/Echo", [](ServerContext&, Buffer r) -> awaitable<Result<Buffer>> { co_return r; });
  auto address = server.start(harness.listen_address());
  ASSERT_TRUE(address.ok());

  constexpr int kConnections = 20;
  std::vector<std::unique_ptr<Channel>> channels;
  for (int i = 0; i < kConnections; ++i) {
    channels.push_back(
        std::make_unique<Channel>(harness.client_env(), harness.client_network(), *address));
  }
  int ok = 0;
  for (auto& channel : channels) {
    asio::co_spawn(harness.client_env().pick_executor(),
                   channel->async_call("/test/Echo", Buffer::copy_of(std::string(3000, 'x')), {},
                                       asio::use_awaitable),
                   [&](std::exception_ptr, CallResult r) { ok += r.ok(); });
  }
  ASSERT_TRUE(harness.sim().run_until([&] { return ok == kConnections; }, 10s));
  harness.sim().run_for(1s);  // settle: every write done, every reader waiting

  EXPECT_EQ(server.connection_count(), static_cast<size_t>(kConnections));
  // 2 x 20 connection ends waiting to read: none may hold a block.
  EXPECT_LT(Block::live_count(), kConnections / 2) << "blocks held by idle connections";
}

}  // namespace
}  // namespace meshrpc::core
