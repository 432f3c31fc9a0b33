// protoc-gen-meshrpc: protoc runs it for --meshrpc_out=DIR (found on PATH, or given with
// --plugin=protoc-gen-meshrpc=PATH) and it writes typed meshrpc clients and service bases
// for each .proto (generator.h). cmake/MeshrpcGenerate.cmake wires it into builds.
#include <google/protobuf/compiler/plugin.h>

#include "generator.h"

int main(int argc, char* argv[]) {
  meshrpc::protoc_gen::Generator generator;
  return google::protobuf::compiler::PluginMain(argc, argv, &generator);
}
