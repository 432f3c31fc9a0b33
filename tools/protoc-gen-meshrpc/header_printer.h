// Prints <file>.meshrpc.h: per service, a class with its name, a MethodInfo per rpc, a typed
// client (Client) and an abstract server base (Service).
#pragma once

#include <google/protobuf/io/printer.h>

#include "service_model.h"

namespace meshrpc::protoc_gen {

void print_header(const FileModel& file, google::protobuf::io::Printer& out);

}  // namespace meshrpc::protoc_gen
