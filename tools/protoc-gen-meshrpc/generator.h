// The protoc plugin's code generator: for every .proto protoc hands it, <base>.meshrpc.h and
// <base>.meshrpc.cc next to protoc's <base>.pb.h. Files without services get both too (with
// no classes), so a build can name its outputs without reading the .proto.
#pragma once

#include <google/protobuf/compiler/code_generator.h>

#include <cstdint>
#include <string>

namespace meshrpc::protoc_gen {

class Generator final : public google::protobuf::compiler::CodeGenerator {
 public:
  // `parameter` (--meshrpc_opt) must be empty: there are no options yet.
  bool Generate(const google::protobuf::FileDescriptor* file, const std::string& parameter,
                google::protobuf::compiler::GeneratorContext* context,
                std::string* error) const override;
  uint64_t GetSupportedFeatures() const override { return FEATURE_PROTO3_OPTIONAL; }
};

}  // namespace meshrpc::protoc_gen
