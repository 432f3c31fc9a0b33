#include "meshrpc/codec/server.h"

#include <algorithm>

namespace meshrpc::codec {

const MethodDescription* Server::find_method(std::string_view canonical_name) const {
  auto it = std::find_if(methods_.begin(), methods_.end(),
                         [&](const MethodDescription& m) { return m.name == canonical_name; });
  return it == methods_.end() ? nullptr : &*it;
}

void Server::describe(MethodDescription description) {
  // A second registration replaces the first, as in core::Server.
  auto it = std::find_if(methods_.begin(), methods_.end(),
                         [&](const MethodDescription& m) { return m.name == description.name; });
  if (it != methods_.end()) {
    *it = std::move(description);
  } else {
    methods_.push_back(std::move(description));
  }
}

}  // namespace meshrpc::codec
