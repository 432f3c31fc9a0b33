// Garbage on one connection (1 MiB of random bytes, with or without a valid preface in
// front) closes that connection only: calls on other connections carry on, and the server
// keeps serving. Over TCP and simulated links.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <random>

#include "meshrpc/base/status_macros.h"
#include "meshrpc/base/status_matchers.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/server.h"
#include "meshrpc/transport/errors.h"
#include "meshrpc/wire/preface.h"
#include "tests/support/backends.h"

namespace meshrpc::core {
namespace {

using ::meshrpc::testing::Backend;
using ::meshrpc::testing::IsOk;

class GarbageInputTest : public ::testing::TestWithParam<std::tuple<Backend, bool>> {};

TEST_P(GarbageInputTest, OneMebibyteOfRandomBytesClosesOnlyThatConnection) {
  const auto& [backend, with_preface] = GetParam();
  auto harness = backend.make();
  Server server(harness->server_env(), harness->server_network());
  server.register_method(
      "/test/Echo", [](ServerContext&, Buffer r) -> awaitable<Result<Buffer>> { co_return r; });
  auto address = server.start(harness->listen_address());
  ASSERT_TRUE(address.ok());
  Channel channel(harness->client_env(), harness->client_network(), *address);

  std::string garbage(1 << 20, '\0');
  std::mt19937_64 rng(7);
  for (char& c : garbage) c = static_cast<char>(rng());
  if (with_preface) garbage.replace(0, wire::kPreface.size(), wire::preface_view());

  int good_calls = 0;
  error_code garbage_end;
  const transport::Address target = *address;
  ASSERT_THAT(harness->run_client([&]() -> awaitable<Status> {
    auto ex = co_await asio::this_coro::executor;
    auto [ec, raw] =
        co_await harness->client_network().async_connect(target, ex, use_nothrow_awaitable);
    if (ec) co_return transport::to_status(ec, "raw connect");
    // Good calls before, during and after the garbage.
    for (int i = 0; i < 3; ++i) {
      CallResult r =
          co_await channel.async_call("/test/Echo", Buffer::copy_of("ok"), {}, asio::use_awaitable);
      good_calls += r.ok();
      if (i == 0) {
        co_await asio::async_write(*raw, asio::buffer(garbage), use_nothrow_awaitable);
      }
    }
    // The server drops the garbage connection: our reads end (eof or reset).
    char sink[4096];
    while (true) {
      auto [rec, n] = co_await raw->async_read_some(asio::buffer(sink), use_nothrow_awaitable);
      if (rec) {
        garbage_end = rec;
        break;
      }
    }
    co_return Status();
  }),
              IsOk());
  EXPECT_EQ(good_calls, 3);
  EXPECT_TRUE(garbage_end == asio::error::eof || garbage_end == asio::error::connection_reset)
      << garbage_end.message();
}

INSTANTIATE_TEST_SUITE_P(Backends, GarbageInputTest,
                         ::testing::Combine(::meshrpc::testing::all_backends(), ::testing::Bool()),
                         [](const ::testing::TestParamInfo<std::tuple<Backend, bool>>& info) {
                           return std::get<0>(info.param).name +
                                  (std::get<1>(info.param) ? "_after_preface" : "_no_preface");
                         });

}  // namespace
}  // namespace meshrpc::core
