// JSON for people: Boost.JSON serializes on one line; meshctl prints replies indented.
#pragma once

#include <boost/json/value.hpp>
#include <string>

namespace meshrpc::meshctl {

// `value` with two-space indentation, one member or element per line; empty objects and
// arrays stay "{}" and "[]". Strings and numbers are as boost::json::serialize writes them.
std::string to_pretty_json(const boost::json::value& value);

}  // namespace meshrpc::meshctl
