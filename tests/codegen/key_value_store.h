// KeyValueStore: an in-memory implementation of the generated KeyValue::Service (and of
// Admin and Events), for the codegen tests. Counts the calls that reached its handlers, so
// tests can tell a rejected request from a handled one.
//
// Threading: handlers run on any io thread; the state is behind a mutex.
#pragma once

#include <atomic>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <mutex>
#include <string>
#include <vector>

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

  // Every stored entry whose key starts with the prefix, in key order.
  awaitable<Status> Watch(core::ServerContext&,
                          codec::ServerStream<WatchRequest, Entry>& stream) override {
    codec::StreamRead<WatchRequest> request = co_await stream.async_read(asio::use_awaitable);
    if (request.error) co_return request.error->status;
    if (!request.message) co_return invalid_argument_error("Watch needs a request");
    ++handled_;
    std::vector<Entry> matching;
    {
      std::lock_guard lock(mutex_);
      for (const auto& [key, entry] : entries_) {
        if (key.starts_with(request.message->prefix())) matching.push_back(entry);
      }
    }
    for (const Entry& entry : matching) {
      Status sent = co_await stream.async_write(entry, asio::use_awaitable);
      if (!sent.ok()) co_return sent;
    }
    co_return Status();
  }

  // Stores every entry sent; answers with the number stored as a version.
  awaitable<Status> Upload(core::ServerContext&,
                           codec::ServerStream<Entry, versions::Version>& stream) override {
    ++handled_;
    uint64_t stored = 0;
    for (;;) {
      codec::StreamRead<Entry> entry = co_await stream.async_read(asio::use_awaitable);
      if (entry.error) co_return entry.error->status;
      if (!entry.message) break;
      std::lock_guard lock(mutex_);
      entries_[entry.message->key()] = *entry.message;
      ++stored;
    }
    versions::Version version;
    version.set_number(stored);
    co_return co_await stream.async_write(version, asio::use_awaitable);
  }

  // Echoes every entry back with its version bumped.
  awaitable<Status> Sync(core::ServerContext&, codec::ServerStream<Entry, Entry>& stream) override {
    ++handled_;
    for (;;) {
      codec::StreamRead<Entry> entry = co_await stream.async_read(asio::use_awaitable);
      if (entry.error) co_return entry.error->status;
      if (!entry.message) co_return Status();
      entry.message->mutable_version()->set_number(entry.message->version().number() + 1);
      Status sent = co_await stream.async_write(*entry.message, asio::use_awaitable);
      if (!sent.ok()) co_return sent;
    }
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

// Events has only a streaming rpc; nothing happens, so a subscription ends at once.
class EventsService final : public Events::Service {
 public:
  awaitable<Status> Subscribe(core::ServerContext&,
                              codec::ServerStream<WatchRequest, Entry>&) override {
    co_return Status();
  }
};

}  // namespace meshrpc::test
