#include "services/request_validation.hpp"

#include <gtest/gtest.h>

namespace notify::services {
namespace {

class RequestValidation : public ::testing::Test {
 protected:
  ServiceSettings settings_;

  grpc::Status check(const std::string& event, const std::string& data, const std::string& id = "") {
    v1::Notification n;
    n.set_event(event);
    n.set_data_json(data);
    n.set_id(id);
    ValidNotification out;
    return validate_notification(n, true, settings_, out);
  }
};

TEST_F(RequestValidation, AcceptsWellFormedNotification) {
  v1::Notification n;
  n.set_event("like");
  n.set_data_json(R"({"post":42})");
  ValidNotification out;
  ASSERT_TRUE(validate_notification(n, true, settings_, out).ok());
  EXPECT_EQ(out.event, "like");
  EXPECT_EQ(out.data_json, R"({"post":42})");
  EXPECT_EQ(out.id.size(), 36u);  // generated UUIDv7
}

TEST_F(RequestValidation, RequireAckTakesItsTimeoutOrTheDefault) {
  v1::Notification n;
  n.set_event("like");
  ValidNotification out;
  ASSERT_TRUE(validate_notification(n, true, settings_, out).ok());
  EXPECT_EQ(out.ack_timeout_ms, 0u) << "no ack asked";
  n.set_require_ack(true);
  ASSERT_TRUE(validate_notification(n, true, settings_, out).ok());
  EXPECT_EQ(out.ack_timeout_ms, settings_.ack_timeout_ms);
  n.set_ack_timeout_ms(1500);
  ASSERT_TRUE(validate_notification(n, true, settings_, out).ok());
  EXPECT_EQ(out.ack_timeout_ms, 1500u);
  EXPECT_EQ(validate_broadcast_notification(out).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  n.set_ack_timeout_ms(kMaxAckTimeoutMs + 1);
  EXPECT_EQ(validate_notification(n, true, settings_, out).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  n.set_require_ack(false);
  n.set_ack_timeout_ms(10);
  EXPECT_EQ(validate_notification(n, true, settings_, out).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(RequestValidation, KeepsCallerId) {
  v1::Notification n;
  n.set_event("like");
  n.set_id("order-17");
  ValidNotification out;
  ASSERT_TRUE(validate_notification(n, true, settings_, out).ok());
  EXPECT_EQ(out.id, "order-17");
  EXPECT_EQ(out.collapse_key, "");
}

TEST_F(RequestValidation, CollapseKeysFollowTheIdRules) {
  v1::Notification n;
  n.set_event("view");
  n.set_collapse_key("views:post-42");
  ValidNotification out;
  ASSERT_TRUE(validate_notification(n, true, settings_, out).ok());
  EXPECT_EQ(out.collapse_key, "views:post-42");
  for (const std::string& bad : std::vector<std::string>{"views 42", std::string(129, 'k'), "caf\xc3\xa9"}) {
    n.set_collapse_key(bad);
    const auto s = validate_notification(n, true, settings_, out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_NE(s.error_message().find("notification.collapse_key"), std::string::npos) << bad;
  }
}

TEST_F(RequestValidation, RejectsWithFieldNames) {
  v1::Notification n;
  ValidNotification out;
  auto s = validate_notification(n, false, settings_, out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("notification is required"), std::string::npos);

  s = check("", "{}");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("notification.event"), std::string::npos);

  s = check("like", "{oops}");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("notification.data_json is not valid JSON"), std::string::npos);

  s = check("like", "{}", "bad id!");
  EXPECT_NE(s.error_message().find("notification.id"), std::string::npos);
}

TEST_F(RequestValidation, EnforcesPayloadLimit) {
  settings_.max_payload_bytes = 16;
  EXPECT_TRUE(check("like", R"({"a":"0123456789"})").ok() == false);
  EXPECT_TRUE(check("like", R"({"a":"0123"})").ok());
  const auto s = check("like", R"(")" + std::string(20, 'x') + R"(")");
  EXPECT_NE(s.error_message().find("limit is 16"), std::string::npos) << s.error_message();
}

TEST_F(RequestValidation, UserIdsAreCheckedCountedAndDeduplicated) {
  google::protobuf::RepeatedPtrField<std::string> ids;
  std::vector<std::string> out;
  auto s = validate_user_ids(ids, settings_, out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  *ids.Add() = "alice";
  *ids.Add() = "bob";
  *ids.Add() = "alice";
  ASSERT_TRUE(validate_user_ids(ids, settings_, out).ok());
  EXPECT_EQ(out, (std::vector<std::string>{"alice", "bob"}));

  *ids.Add() = "not valid";
  s = validate_user_ids(ids, settings_, out);
  EXPECT_NE(s.error_message().find("user_ids[3]"), std::string::npos) << s.error_message();

  settings_.max_ids_per_request = 2;
  ids.Clear();
  for (int i = 0; i < 3; ++i) *ids.Add() = "u" + std::to_string(i);
  s = validate_user_ids(ids, settings_, out);
  EXPECT_NE(s.error_message().find("limit is 2"), std::string::npos);
}

TEST_F(RequestValidation, TopicsAndReasons) {
  EXPECT_TRUE(validate_broadcast_topic("").ok());
  EXPECT_TRUE(validate_broadcast_topic("post:1").ok());
  EXPECT_FALSE(validate_broadcast_topic("no spaces").ok());
  EXPECT_TRUE(validate_close_reason("").ok());
  EXPECT_TRUE(validate_close_reason(std::string(123, 'r')).ok());
  EXPECT_FALSE(validate_close_reason(std::string(124, 'r')).ok());
}

}  // namespace
}  // namespace notify::services
