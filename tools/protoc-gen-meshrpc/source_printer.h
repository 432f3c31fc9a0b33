// Prints <file>.meshrpc.cc: each Service's name and the registration of its unary rpcs as
// typed handlers on a ::meshrpc::codec::Server.
#pragma once

#include <google/protobuf/io/printer.h>

#include "service_model.h"

namespace meshrpc::protoc_gen {

void print_source(const FileModel& file, google::protobuf::io::Printer& out);

}  // namespace meshrpc::protoc_gen
