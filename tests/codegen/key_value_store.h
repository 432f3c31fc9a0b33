// KeyValueStore: an in-memory implementation of the generated KeyValue::Service (and of
// Admin and Events), for the codegen tests. Counts the calls that reached its handlers, so
// tests can tell a rejected request from a handled one.
//
// Threading: handlers run on any io thread; the state is behind a mutex.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include "key_value.meshrpc.h"

namespace meshrpc::test {

class KeyValueStore final : public KeyValue::Service {
 public:
  awaitable<Result<Entry>> Get(core::ServerContext&, const GetRequest& request) override {
    ++handled_;
    std::lock_guard lock(mutex_);
    auto it = entries_.find(request.key());
    if (it == entries_.end()) co_return not_found_error("key '" + request.key() + "' is missing");
    co_return it->second;
  }

  awaitable<Result<Entry_Meta>> GetMeta(core::ServerContext& ctx,
                                        const GetRequest& request) override {
    Result<Entry> entry = co_await Get(ctx, request);
    if (!entry.ok()) co_return std::move(entry).status();
    co_return entry->meta();
  }

  awaitable<Result<versions::Version>> Put(core::ServerContext&,
                                           const PutRequest& request) override {
    ++handled_;
    std::lock_guard lock(mutex_);
    Entry& entry = entries_[request.entry().key()];
    const uint64_t number = entry.version().number() + 1;
    entry = request.entry();
    entry.mutable_version()->set_number(number);
    co_return entry.version();
  }

  awaitable<Result<google::protobuf::Empty>> Delete(core::ServerContext&,
                                                    const DeleteRequest& request) override {
    ++handled_;
    std::lock_guard lock(mutex_);
    entries_.erase(request.key());
    co_return google::protobuf::Empty();
  }

  int handled() const { return handled_.load(); }

 private:
  std::atomic<int> handled_{0};
  std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

class AdminService final : public Admin::Service {
 public:
  awaitable<Result<google::protobuf::Empty>> Ping(core::ServerContext&,
                                                  const google::protobuf::Empty&) override {
    co_return google::protobuf::Empty();
  }
};

// Events has only a streaming rpc: nothing to implement yet.
class EventsService final : public Events::Service {};

}  // namespace meshrpc::test
