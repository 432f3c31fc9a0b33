// The messages of the chunk-store example, as plain structs: seed 000's master and chunk
// server calls (GetChunkHandle, CreateChunk, ForwardData) without a .proto. One
// MESHRPC_STRUCT line per type gives every member a stable field number; nothing else is
// needed to send them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "meshrpc/codec/method.h"
#include "meshrpc/codec/struct.h"

namespace chunks {

using ChunkHandle = uint64_t;

struct GetChunkHandleArgs {
  std::string path;
  int64_t chunk_index = 0;
};
MESHRPC_STRUCT(GetChunkHandleArgs, (path, 1), (chunk_index, 2));

struct GetChunkHandleReply {
  ChunkHandle handle = 0;
  // Chunk servers holding the chunk ("host:port"), primary first.
  std::vector<std::string> replicas;
};
MESHRPC_STRUCT(GetChunkHandleReply, (handle, 1), (replicas, 2));

struct CreateChunkArgs {
  ChunkHandle handle = 0;
};
MESHRPC_STRUCT(CreateChunkArgs, (handle, 1));

struct CreateChunkReply {
  bool created = false;  // false: it existed already (creating is idempotent)
};
MESHRPC_STRUCT(CreateChunkReply, (created, 1));

// Chain replication: the receiver stores `data`, then forwards it to replicas[0] with the
// rest of the chain, and answers once the whole chain has it.
struct ForwardDataArgs {
  ChunkHandle handle = 0;
  std::vector<std::byte> data;
  std::vector<std::string> replicas;
};
MESHRPC_STRUCT(ForwardDataArgs, (handle, 1), (data, 2), (replicas, 3));

struct ForwardDataReply {
  int32_t stored_copies = 0;  // this server and every one after it in the chain
};
MESHRPC_STRUCT(ForwardDataReply, (stored_copies, 1));

struct ReadChunkArgs {
  ChunkHandle handle = 0;
};
MESHRPC_STRUCT(ReadChunkArgs, (handle, 1));

struct ReadChunkReply {
  std::vector<std::byte> data;
};
MESHRPC_STRUCT(ReadChunkReply, (data, 1));

// The methods, each with its request and reply types and whether it may run twice; shared
// by servers and clients. Names in the dotted form (on the wire: "/Master/GetChunkHandle").
using meshrpc::codec::Method;
using meshrpc::core::Idempotency;
// Asking again gives the same handle: safe to retry.
inline constexpr Method<GetChunkHandleArgs, GetChunkHandleReply> kGetChunkHandle{
    "Master.GetChunkHandle", Idempotency::kIdempotent};
inline constexpr Method<CreateChunkArgs, CreateChunkReply> kCreateChunk{"ChunkServer.CreateChunk",
                                                                        Idempotency::kIdempotent};
inline constexpr Method<ForwardDataArgs, ForwardDataReply> kForwardData{"ChunkServer.ForwardData"};
inline constexpr Method<ReadChunkArgs, ReadChunkReply> kReadChunk{"ChunkServer.ReadChunk",
                                                                  Idempotency::kNoSideEffects};

}  // namespace chunks
