#include "meshrpc/cluster/server_pushback.h"

#include <algorithm>
#include <string>

#include "meshrpc/resilience/pushback.h"

namespace meshrpc::cluster {
namespace {

void set_pushback(core::ServerContext& context, std::string value) {
  core::Metadata& metadata = context.response_metadata();
  std::erase_if(metadata,
                [](const auto& entry) { return entry.first == resilience::kRetryPushbackKey; });
  metadata.emplace_back(resilience::kRetryPushbackKey, std::move(value));
}

}  // namespace

void push_back_retry_after(core::ServerContext& context, runtime::Duration delay) {
  delay = std::clamp(delay, runtime::Duration::zero(),
                     std::chrono::duration_cast<runtime::Duration>(resilience::kMaxRetryPushback));
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(delay).count();
  set_pushback(context, std::to_string(ms));
}

void push_back_do_not_retry(core::ServerContext& context) { set_pushback(context, "stop"); }

}  // namespace meshrpc::cluster
