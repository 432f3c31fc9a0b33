// The MessageSchema of a MESHRPC_STRUCT type, built once per type from its field list.
#pragma once

#include "meshrpc/codec/schema.h"
#include "meshrpc/codec/struct_codec.h"

namespace meshrpc::codec {

template <DescribedStruct T>
const MessageSchema& struct_schema();

}  // namespace meshrpc::codec
