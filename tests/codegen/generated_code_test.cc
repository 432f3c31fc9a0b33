// What protoc-gen-meshrpc generates from key_value.proto, checked without a network: names,
// MethodInfo constants from the .proto's declarations, and what a Service registers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/use_awaitable.hpp>
#include <concepts>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "key_value.meshrpc.h"
#include "meshrpc/codec/server.h"
#include "tests/codegen/key_value_store.h"
#include "tests/support/sim_harness.h"

namespace meshrpc::test {
namespace {

using codec::MethodInfo;
using codec::MethodKind;
using core::Idempotency;

// Whether the generated classes have a member for an rpc, of the right shape.
template <typename Service>
concept ServesWatch = requires(Service& service, core::ServerContext& context,
                               codec::ServerStream<WatchRequest, Entry>& stream) {
  { service.Watch(context, stream) } -> std::same_as<awaitable<Status>>;
};
template <typename Service>
concept ServesGet = requires {
  &Service::Get;
};
template <typename GeneratedClient>
concept OpensWatch = requires(GeneratedClient& client, core::StreamOptions options) {
  { client.Watch(options) } -> std::same_as<codec::ClientStream<WatchRequest, Entry>>;
};
template <typename GeneratedClient>
concept CallsGet = requires(GeneratedClient& client, const GetRequest& request,
                            core::CallOptions options) {
  client.Get(request, options, asio::use_awaitable);
};

TEST(GeneratedCode, ServiceNamesComeFromTheProto) {
  EXPECT_EQ(KeyValue::kServiceName, "meshrpc.test.KeyValue");
  EXPECT_EQ(Admin::kServiceName, "meshrpc.test.Admin");
  KeyValueStore store;
  EXPECT_EQ(store.service_name(), "meshrpc.test.KeyValue");
  EventsService events;
  EXPECT_EQ(events.service_name(), "meshrpc.test.Events");
}

struct MethodCase {
  MethodInfo info;
  std::string_view name;
  MethodKind kind;
  Idempotency idempotency;
};

TEST(GeneratedCode, MethodInfoMatchesTheDeclarations) {
  const MethodCase cases[] = {
      {KeyValue::Methods::kGet, "/meshrpc.test.KeyValue/Get", MethodKind::kUnary,
       Idempotency::kNoSideEffects},
      {KeyValue::Methods::kGetMeta, "/meshrpc.test.KeyValue/GetMeta", MethodKind::kUnary,
       Idempotency::kNoSideEffects},
      {KeyValue::Methods::kPut, "/meshrpc.test.KeyValue/Put", MethodKind::kUnary,
       Idempotency::kIdempotent},
      {KeyValue::Methods::kDelete, "/meshrpc.test.KeyValue/Delete", MethodKind::kUnary,
       Idempotency::kUnknown},
      {KeyValue::Methods::kWatch, "/meshrpc.test.KeyValue/Watch", MethodKind::kServerStreaming,
       Idempotency::kUnknown},
      {KeyValue::Methods::kUpload, "/meshrpc.test.KeyValue/Upload", MethodKind::kClientStreaming,
       Idempotency::kUnknown},
      {KeyValue::Methods::kSync, "/meshrpc.test.KeyValue/Sync", MethodKind::kBidiStreaming,
       Idempotency::kUnknown},
      {Admin::Methods::kPing, "/meshrpc.test.Admin/Ping", MethodKind::kUnary,
       Idempotency::kNoSideEffects},
      {Events::Methods::kSubscribe, "/meshrpc.test.Events/Subscribe", MethodKind::kServerStreaming,
       Idempotency::kUnknown},
  };
  for (const MethodCase& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(c.info.name, c.name);
    EXPECT_EQ(c.info.kind, c.kind);
    EXPECT_EQ(c.info.idempotency, c.idempotency);
  }
}

TEST(GeneratedCode, MethodInfoIsAConstantExpression) {
  static_assert(KeyValue::Methods::kPut.idempotency == Idempotency::kIdempotent);
  static_assert(KeyValue::Methods::kSync.kind == MethodKind::kBidiStreaming);
}

TEST(GeneratedCode, MessagesFromOtherPackagesAndNestedOnesAreQualified) {
  using PutReply = Result<versions::Version>;
  using MetaReply = Result<Entry_Meta>;
  using DeleteReply = Result<google::protobuf::Empty>;
  static_assert(std::is_same_v<decltype(std::declval<KeyValue::Service&>().Put(
                                   std::declval<core::ServerContext&>(), PutRequest())),
                               awaitable<PutReply>>);
  static_assert(std::is_same_v<decltype(std::declval<KeyValue::Service&>().GetMeta(
                                   std::declval<core::ServerContext&>(), GetRequest())),
                               awaitable<MetaReply>>);
  static_assert(std::is_same_v<decltype(std::declval<KeyValue::Service&>().Delete(
                                   std::declval<core::ServerContext&>(), DeleteRequest())),
                               awaitable<DeleteReply>>);
}

TEST(GeneratedCode, StreamingRpcsOpenTypedStreamsAndHaveStreamHandlers) {
  static_assert(ServesGet<KeyValue::Service> && CallsGet<KeyValue::Client>);
  static_assert(ServesWatch<KeyValue::Service> && OpensWatch<KeyValue::Client>);
  // Events declares only a streaming rpc, which its Service must implement.
  static_assert(std::is_abstract_v<Events::Service>);
}

// Registering needs a server object only: on a simulated host, never started.
class RegistrationTest : public ::testing::Test {
 protected:
  testing::SimHarness harness_{1};
};

TEST_F(RegistrationTest, AServiceRegistersItsUnaryRpcsWithTheirIdempotency) {
  KeyValueStore store;
  codec::Server server(harness_.server_env(), harness_.server_network());
  server.add_service(store);
  std::vector<std::tuple<std::string, MethodKind, Idempotency>> registered;
  for (const codec::MethodDescription& method : server.methods()) {
    registered.emplace_back(method.name, method.kind, method.idempotency);
    EXPECT_NE(method.request_schema, nullptr) << method.name;
  }
  EXPECT_THAT(
      registered,
      ::testing::ElementsAre(
          std::tuple("/meshrpc.test.KeyValue/Get", MethodKind::kUnary, Idempotency::kNoSideEffects),
          std::tuple("/meshrpc.test.KeyValue/GetMeta", MethodKind::kUnary,
                     Idempotency::kNoSideEffects),
          std::tuple("/meshrpc.test.KeyValue/Put", MethodKind::kUnary, Idempotency::kIdempotent),
          std::tuple("/meshrpc.test.KeyValue/Delete", MethodKind::kUnary, Idempotency::kUnknown),
          std::tuple("/meshrpc.test.KeyValue/Watch", MethodKind::kServerStreaming,
                     Idempotency::kUnknown),
          std::tuple("/meshrpc.test.KeyValue/Upload", MethodKind::kClientStreaming,
                     Idempotency::kUnknown),
          std::tuple("/meshrpc.test.KeyValue/Sync", MethodKind::kBidiStreaming,
                     Idempotency::kUnknown)));
}

TEST_F(RegistrationTest, AServiceWithOnlyStreamingRpcsRegistersThem) {
  EventsService events;
  codec::Server server(harness_.server_env(), harness_.server_network());
  server.add_service(events);
  ASSERT_EQ(server.methods().size(), 1u);
  EXPECT_EQ(server.methods()[0].kind, MethodKind::kServerStreaming);
}

}  // namespace
}  // namespace meshrpc::test
