// Encode and decode of one realistic 10-field message: meshrpc's struct codec against the
// code protoc generates for the same message (bench_message.proto). Both produce the same
// bytes (checked before the benchmarks run), so the numbers compare the codecs alone.
//
//   build-cbench/bench/codec/codec_bench --benchmark_min_time=0.2
//
// Encode: through Codec<T>::encode into a new Buffer (what a call does), and into one
// reused array (the encoder alone; protobuf's SerializeToArray). Decode: into a new value
// each time, and into one reused value (strings and vectors keep their capacity).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_message.pb.h"
#include "meshrpc/codec/protobuf.h"
#include "meshrpc/codec/struct.h"

namespace meshrpc::codec {
namespace {

struct Address {
  std::string host;
  int32_t port = 0;
};
MESHRPC_STRUCT(Address, (host, 1), (port, 2));

struct BenchRecord {
  int64_t id = 0;
  int64_t timestamp_us = 0;
  int32_t shard = 0;
  bool urgent = false;
  double score = 0;
  std::string name;
  std::string description;
  std::vector<std::byte> payload;
  std::vector<int32_t> samples;
  Address origin;
};
MESHRPC_STRUCT(BenchRecord, (id, 1), (timestamp_us, 2), (shard, 3), (urgent, 4), (score, 5),
               (name, 6), (description, 7), (payload, 8), (samples, 9), (origin, 10));

// Sizes from a typical metadata request: a 16-byte name, a 64-byte description, a 128-byte
// blob, eight small samples and one negative (a 10-byte varint).
const std::string kName(16, 'n');
const std::string kDescription(64, 'd');
const std::vector<int32_t> kSamples = {1, 2, 300, 4000, 50000, -6, 70, 8};

BenchRecord make_struct() {
  BenchRecord r;
  r.id = 1234567890123;
  r.timestamp_us = 1'700'000'000'000'000;
  r.shard = 42;
  r.urgent = true;
  r.score = 0.875;
  r.name = kName;
  r.description = kDescription;
  r.payload.assign(128, std::byte{0xab});
  r.samples = kSamples;
  r.origin = Address{"10.0.0.7", 8443};
  return r;
}

bench::BenchRecord make_message() {
  bench::BenchRecord m;
  m.set_id(1234567890123);
  m.set_timestamp_us(1'700'000'000'000'000);
  m.set_shard(42);
  m.set_urgent(true);
  m.set_score(0.875);
  m.set_name(kName);
  m.set_description(kDescription);
  m.set_payload(std::string(128, '\xab'));
  for (int32_t s : kSamples) m.add_samples(s);
  m.mutable_origin()->set_host("10.0.0.7");
  m.mutable_origin()->set_port(8443);
  return m;
}

std::string struct_bytes() {
  Buffer out;
  encode_struct(make_struct(), out);
  return out.to_string();
}

void count(benchmark::State& state, size_t bytes_per_item) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes_per_item));
}

// Clears every member but keeps the capacity of strings and vectors, as protobuf's Clear().
void clear_keeping_capacity(BenchRecord& r) {
  r.id = r.timestamp_us = 0;
  r.shard = 0;
  r.urgent = false;
  r.score = 0;
  r.name.clear();
  r.description.clear();
  r.payload.clear();
  r.samples.clear();
  r.origin.host.clear();
  r.origin.port = 0;
}

// ---- encode ----

void BM_StructEncodeToBuffer(benchmark::State& state) {
  const BenchRecord value = make_struct();
  for (auto _ : state) {
    Buffer out;
    Status status = Codec<BenchRecord>::encode(value, out);
    benchmark::DoNotOptimize(status);
    benchmark::DoNotOptimize(out);
  }
  count(state, encoded_size(value));
}

void BM_ProtobufEncodeToBuffer(benchmark::State& state) {
  const bench::BenchRecord message = make_message();
  for (auto _ : state) {
    Buffer out;
    Status status = Codec<bench::BenchRecord>::encode(message, out);
    benchmark::DoNotOptimize(status);
    benchmark::DoNotOptimize(out);
  }
  count(state, message.ByteSizeLong());
}

void BM_StructEncodeToArray(benchmark::State& state) {
  const BenchRecord value = make_struct();
  std::vector<char> array(encoded_size(value));
  for (auto _ : state) {
    const size_t size = encoded_size(value);  // as SerializeToArray, which sizes first
    WireWriter writer(array.data());
    detail::write_struct(writer, value);
    benchmark::DoNotOptimize(size);
    benchmark::DoNotOptimize(array.data());
    benchmark::ClobberMemory();
  }
  count(state, array.size());
}

void BM_ProtobufSerializeToArray(benchmark::State& state) {
  const bench::BenchRecord message = make_message();
  std::vector<char> array(message.ByteSizeLong());
  for (auto _ : state) {
    bool ok = message.SerializeToArray(array.data(), static_cast<int>(array.size()));
    benchmark::DoNotOptimize(ok);
    benchmark::ClobberMemory();
  }
  count(state, array.size());
}

// ---- decode ----

void BM_StructDecodeFresh(benchmark::State& state) {
  const std::string bytes = struct_bytes();
  for (auto _ : state) {
    BenchRecord value;
    Status status = decode_struct(bytes, value);
    benchmark::DoNotOptimize(status);
    benchmark::DoNotOptimize(value);
  }
  count(state, bytes.size());
}

void BM_StructDecodeReused(benchmark::State& state) {
  const std::string bytes = struct_bytes();
  BenchRecord value;
  for (auto _ : state) {
    clear_keeping_capacity(value);
    Status status = decode_struct(bytes, value);
    benchmark::DoNotOptimize(status);
    benchmark::DoNotOptimize(value);
  }
  count(state, bytes.size());
}

void BM_ProtobufParseFresh(benchmark::State& state) {
  const std::string bytes = struct_bytes();
  for (auto _ : state) {
    bench::BenchRecord message;
    bool ok = message.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(message);
  }
  count(state, bytes.size());
}

void BM_ProtobufParseReused(benchmark::State& state) {
  const std::string bytes = struct_bytes();
  bench::BenchRecord message;
  for (auto _ : state) {
    bool ok = message.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(message);
  }
  count(state, bytes.size());
}

BENCHMARK(BM_StructEncodeToBuffer);
BENCHMARK(BM_ProtobufEncodeToBuffer);
BENCHMARK(BM_StructEncodeToArray);
BENCHMARK(BM_ProtobufSerializeToArray);
BENCHMARK(BM_StructDecodeFresh);
BENCHMARK(BM_StructDecodeReused);
BENCHMARK(BM_ProtobufParseFresh);
BENCHMARK(BM_ProtobufParseReused);

// The comparison only means something if both sides do the same work.
bool same_bytes() { return struct_bytes() == make_message().SerializeAsString(); }

}  // namespace
}  // namespace meshrpc::codec

int main(int argc, char** argv) {
  if (!meshrpc::codec::same_bytes()) {
    std::fprintf(stderr, "codec_bench: the struct and the message encode differently\n");
    return EXIT_FAILURE;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return EXIT_FAILURE;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return EXIT_SUCCESS;
}
