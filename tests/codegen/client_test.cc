// The generated KeyValue::Client and KeyValue::Service end to end over TCP on 127.0.0.1: typed
// success and errors, what the server does with unknown methods and undecodable requests,
// and the idempotency the generated client declares on each call.
#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "key_value.meshrpc.h"
#include "meshrpc/base/status_macros.h"
#include "meshrpc/base/status_matchers.h"
#include "meshrpc/codec/server.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/interceptor.h"
#include "tests/codegen/key_value_store.h"
#include "tests/support/tcp_harness.h"

namespace meshrpc::test {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::IsOkAndHolds;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Property;

// Remembers the idempotency each method's last call left the client with.
class IdempotencyRecorder final : public core::ClientInterceptor {
 public:
  awaitable<Status> before_call(core::ClientCallInfo& call) override {
    {
      std::lock_guard lock(mutex_);
      seen_[call.method] = call.options.idempotency;
    }
    co_return Status();
  }
  std::map<std::string, core::Idempotency> seen() {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, core::Idempotency> seen_;
};

class GeneratedClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<codec::Server>(harness_.env(), harness_.network());
    server_->add_service(store_);
    server_->add_service(admin_);
    Result<transport::Address> address = server_->start(harness_.listen_address());
    ASSERT_THAT(address, IsOk());
    core::ChannelOptions options;
    options.interceptors.push_back(recorder_);
    channel_ = std::make_unique<core::Channel>(harness_.env(), harness_.network(), *address,
                                               std::move(options));
  }
  void TearDown() override {
    channel_.reset();
    server_.reset();
  }

  Status run(testing::TransportHarness::Task task) { return harness_.run_client(std::move(task)); }

  testing::TcpHarness harness_;
  KeyValueStore store_;
  AdminService admin_;
  std::shared_ptr<IdempotencyRecorder> recorder_ = std::make_shared<IdempotencyRecorder>();
  std::unique_ptr<codec::Server> server_;
  std::unique_ptr<core::Channel> channel_;
};

Entry sample_entry() {
  Entry entry;
  entry.set_key("config");
  entry.set_value(std::string("\x00\xff binary", 9));
  entry.set_kind(Entry::KIND_BLOB);
  entry.mutable_meta()->set_owner("ops");
  entry.mutable_meta()->add_tags("prod");
  entry.mutable_meta()->add_tags("eu");
  (*entry.mutable_labels())["zone"] = "a";
  (*entry.mutable_labels())["tier"] = "gold";
  return entry;
}

TEST_F(GeneratedClientTest, StreamingRpcsUploadWatchAndSyncThroughTheGeneratedCode) {
  KeyValue::Client client(*channel_);
  Result<versions::Version> uploaded = internal_error("not run");
  std::vector<std::string> watched;
  std::vector<uint64_t> synced;
  ASSERT_THAT(run([&]() -> awaitable<Status> {
                auto upload = client.Upload();  // client streaming
                for (const char* key : {"a/1", "a/2", "b/1"}) {
                  Entry entry = sample_entry();
                  entry.set_key(key);
                  Status sent = co_await upload.async_write(entry, asio::use_awaitable);
                  if (!sent.ok()) co_return sent;
                }
                Status done = co_await upload.async_writes_done(asio::use_awaitable);
                if (!done.ok()) co_return done;
                codec::StreamRead<versions::Version> count =
                    co_await upload.async_read(asio::use_awaitable);
                uploaded = count.message ? Result<versions::Version>(*count.message)
                                         : Result<versions::Version>(internal_error("no count"));

                auto watch = client.Watch();  // server streaming
                WatchRequest request;
                request.set_prefix("a/");
                Status asked = co_await watch.async_write_last(request, asio::use_awaitable);
                if (!asked.ok()) co_return asked;
                for (;;) {
                  codec::StreamRead<Entry> entry = co_await watch.async_read(asio::use_awaitable);
                  if (entry.error) co_return entry.error->status;
                  if (!entry.message) break;
                  watched.push_back(entry.message->key());
                }

                auto sync = client.Sync();  // bidirectional
                for (uint64_t v = 1; v <= 3; ++v) {
                  Entry entry = sample_entry();
                  entry.mutable_version()->set_number(v * 10);
                  Status sent = co_await sync.async_write(entry, asio::use_awaitable);
                  if (!sent.ok()) co_return sent;
                  codec::StreamRead<Entry> back = co_await sync.async_read(asio::use_awaitable);
                  if (!back.message) co_return internal_error("no echo");
                  synced.push_back(back.message->version().number());
                }
                co_return co_await sync.async_writes_done(asio::use_awaitable);
              }),
              IsOk());
  EXPECT_THAT(uploaded, IsOkAndHolds(Property(&versions::Version::number, 3u)));
  EXPECT_THAT(watched, ::testing::ElementsAre("a/1", "a/2"));
  EXPECT_THAT(synced, ::testing::ElementsAre(11u, 21u, 31u));
}

TEST_F(GeneratedClientTest, PutThenGetRoundTripsEveryFieldKind) {
  KeyValue::Client client(*channel_);
  const Entry entry = sample_entry();
  Result<versions::Version> version = internal_error("not run");
  Result<Entry> got = internal_error("not run");
  Result<Entry_Meta> meta = internal_error("not run");
  ASSERT_THAT(run([&]() -> awaitable<Status> {
                PutRequest put;
                *put.mutable_entry() = entry;
                core::CallOptions options;
                version = co_await client.Put(put, options, asio::use_awaitable);
                GetRequest get;
                get.set_key("config");
                got = co_await client.Get(get, options, asio::use_awaitable);
                meta = co_await client.GetMeta(get, options, asio::use_awaitable);
                co_return Status();
              }),
              IsOk());
  EXPECT_THAT(version, IsOkAndHolds(Property(&versions::Version::number, 1u)));
  ASSERT_THAT(got, IsOk());
  Entry expected = entry;
  expected.mutable_version()->set_number(1);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*got, expected))
      << got->DebugString();
  ASSERT_THAT(meta, IsOk());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*meta, entry.meta()));
}

TEST_F(GeneratedClientTest, HandlerErrorComesBackAsTheTypedResultsStatus) {
  KeyValue::Client client(*channel_);
  Result<Entry> got = Entry();
  ASSERT_THAT(run([&]() -> awaitable<Status> {
                GetRequest get;
                get.set_key("absent");
                core::CallOptions options;
                got = co_await client.Get(get, options, asio::use_awaitable);
                co_return Status();
              }),
              IsOk());
  EXPECT_THAT(got, StatusIs(StatusCode::kNotFound, HasSubstr("'absent' is missing")));
}

TEST_F(GeneratedClientTest, TwoServicesShareOneServerAndChannel) {
  KeyValue::Client key_value(*channel_);
  Admin::Client admin(*channel_);
  Result<google::protobuf::Empty> ping = internal_error("not run");
  Result<google::protobuf::Empty> deleted = internal_error("not run");
  ASSERT_THAT(run([&]() -> awaitable<Status> {
                core::CallOptions options;
                google::protobuf::Empty empty;
                ping = co_await admin.Ping(empty, options, asio::use_awaitable);
                DeleteRequest request;
                request.set_key("anything");
                deleted = co_await key_value.Delete(request, options, asio::use_awaitable);
                co_return Status();
              }),
              IsOk());
  EXPECT_THAT(ping, IsOk());
  EXPECT_THAT(deleted, IsOk());
}

TEST_F(GeneratedClientTest, ClientDeclaresEachMethodsIdempotencyWhateverTheCallerSet) {
  KeyValue::Client client(*channel_);
  ASSERT_THAT(run([&]() -> awaitable<Status> {
                core::CallOptions options;
                options.idempotency = core::Idempotency::kIdempotent;  // overridden
                GetRequest get;
                (void)co_await client.Get(get, options, asio::use_awaitable);
                PutRequest put;
                (void)co_await client.Put(put, options, asio::use_awaitable);
                DeleteRequest del;
                (void)co_await client.Delete(del, options, asio::use_awaitable);
                co_return Status();
              }),
              IsOk());
  EXPECT_EQ(recorder_->seen(),
            (std::map<std::string, core::Idempotency>{
                {"/meshrpc.test.KeyValue/Get", core::Idempotency::kNoSideEffects},
                {"/meshrpc.test.KeyValue/Put", core::Idempotency::kIdempotent},
                {"/meshrpc.test.KeyValue/Delete", core::Idempotency::kUnknown}}));
}

TEST_F(GeneratedClientTest, MethodTheServerLacksIsUnimplemented) {
  Result<Entry> typed = Entry();
  core::CallResult raw;
  ASSERT_THAT(run([&]() -> awaitable<Status> {
                core::CallOptions options;
                GetRequest get;
                typed = co_await codec::async_unary_call<Entry>(
                    *channel_, "/meshrpc.test.KeyValue/Scan", get, options, asio::use_awaitable);
                raw = co_await channel_->async_call("/meshrpc.test.Nowhere/Scan", Buffer(), options,
                                                    asio::use_awaitable);
                co_return Status();
              }),
              IsOk());
  EXPECT_THAT(typed, StatusIs(StatusCode::kUnimplemented, HasSubstr("Scan")));
  EXPECT_THAT(raw.status, StatusIs(StatusCode::kUnimplemented));
  EXPECT_TRUE(raw.not_processed);
}

TEST_F(GeneratedClientTest, GarbageRequestBytesAreInvalidArgumentBeforeTheHandler) {
  // A truncated varint tag, and a length-delimited field 1 that claims 5 bytes but has 2.
  const std::string garbage[] = {std::string("\xff\xff\xff\xff", 4), std::string("\x0a\x05"
                                                                                 "ab")};
  for (const std::string& bytes : garbage) {
    core::CallResult result;
    ASSERT_THAT(run([&]() -> awaitable<Status> {
                  core::CallOptions options;
                  result = co_await channel_->async_call(std::string(KeyValue::Methods::kPut.name),
                                                         Buffer::copy_of(bytes), options,
                                                         asio::use_awaitable);
                  co_return Status();
                }),
                IsOk());
    EXPECT_THAT(result.status, StatusIs(StatusCode::kInvalidArgument, HasSubstr("Put")));
  }
  EXPECT_EQ(store_.handled(), 0);
}

}  // namespace
}  // namespace meshrpc::test
