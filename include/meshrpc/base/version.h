// The meshrpc release this source tree is: shown by /status, /status.json and
// `meshctl --version`. CMakeLists.txt's project(VERSION) must say the same; configuring
// checks it, so the two cannot drift apart.
#pragma once

#include <string_view>

namespace meshrpc {

inline constexpr std::string_view kVersion = "0.1.0";

}  // namespace meshrpc
