// The Status -> HTTP mapping and the JSON error body every HTTP error carries.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "meshrpc/observe/http_service.h"

namespace meshrpc::observe {
namespace {

TEST(HttpStatusTest, CodesMapAsGrpcGatewayDoes) {
  EXPECT_EQ(http_status_for(StatusCode::kOk), 200u);
  EXPECT_EQ(http_status_for(StatusCode::kInvalidArgument), 400u);
  EXPECT_EQ(http_status_for(StatusCode::kUnauthenticated), 401u);
  EXPECT_EQ(http_status_for(StatusCode::kPermissionDenied), 403u);
  EXPECT_EQ(http_status_for(StatusCode::kUnimplemented), 404u);
  EXPECT_EQ(http_status_for(StatusCode::kAborted), 409u);
  EXPECT_EQ(http_status_for(StatusCode::kResourceExhausted), 429u);
  EXPECT_EQ(http_status_for(StatusCode::kCancelled), 499u);
  EXPECT_EQ(http_status_for(StatusCode::kUnavailable), 503u);
  EXPECT_EQ(http_status_for(StatusCode::kDeadlineExceeded), 504u);
  EXPECT_EQ(http_status_for(StatusCode::kInternal), 500u);
  EXPECT_EQ(http_status_for(StatusCode::kDataLoss), 500u);
}

TEST(HttpStatusTest, ErrorBodyNamesTheCodeAndCarriesTheMessage) {
  auto body =
      boost::json::parse(error_body(unavailable_error("no \"providers\" left"))).as_object();
  EXPECT_EQ(body.at("code").as_string(), "UNAVAILABLE");
  EXPECT_EQ(body.at("code_number").as_int64(), 14);
  EXPECT_EQ(body.at("message").as_string(), "no \"providers\" left");
}

}  // namespace
}  // namespace meshrpc::observe
