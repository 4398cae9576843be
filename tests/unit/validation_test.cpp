#include "common/validation.hpp"

#include <gtest/gtest.h>

#include "common/ids.hpp"

namespace notify {
namespace {

TEST(Rules, UserIds) {
  EXPECT_TRUE(rules::valid_user_id("alice"));
  EXPECT_TRUE(rules::valid_user_id("user_42.eu-west:x@example.com"));
  EXPECT_TRUE(rules::valid_user_id(std::string(128, 'a')));
  EXPECT_FALSE(rules::valid_user_id(""));
  EXPECT_FALSE(rules::valid_user_id(std::string(129, 'a')));
  EXPECT_FALSE(rules::valid_user_id("a b"));
  EXPECT_FALSE(rules::valid_user_id("a/b"));  // '/' is for topics only
  EXPECT_FALSE(rules::valid_user_id("é"));
  EXPECT_FALSE(rules::valid_user_id(std::string("a\0b", 3)));
}

TEST(Rules, Topics) {
  EXPECT_TRUE(rules::valid_topic("post:42/views"));
  EXPECT_FALSE(rules::valid_topic(""));
  EXPECT_FALSE(rules::valid_topic("post 42"));
  EXPECT_FALSE(rules::valid_topic(std::string(129, 't')));
}

TEST(Rules, EventsAndIds) {
  EXPECT_TRUE(rules::valid_event("comment.created"));
  EXPECT_FALSE(rules::valid_event(std::string(65, 'e')));
  EXPECT_FALSE(rules::valid_event("a@b"));
  EXPECT_TRUE(rules::valid_notification_id("0190f3c2-7d6e-7a4b-9c1d-2e3f4a5b6c7d"));
  EXPECT_FALSE(rules::valid_notification_id("has space"));
}

TEST(Rules, Utf8) {
  EXPECT_TRUE(rules::valid_utf8(""));
  EXPECT_TRUE(rules::valid_utf8("plain"));
  EXPECT_TRUE(rules::valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(rules::valid_utf8("\xff"));
  EXPECT_FALSE(rules::valid_utf8("\xc3"));              // truncated
  EXPECT_FALSE(rules::valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(rules::valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(rules::valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
}

TEST(Ids, UuidV7HasVersionVariantAndOrder) {
  const std::string a = new_uuid_v7();
  ASSERT_EQ(a.size(), 36u);
  EXPECT_EQ(a[8], '-');
  EXPECT_EQ(a[14], '7');
  EXPECT_NE(std::string("89ab").find(a[19]), std::string::npos);
  std::string previous = a;
  for (int i = 0; i < 100; ++i) {
    const std::string next = new_uuid_v7();
    EXPECT_NE(next, previous);
    EXPECT_GE(next.substr(0, 13), previous.substr(0, 13));  // millisecond prefix never goes back
    previous = next;
  }
}

TEST(Ids, ConnectionIdsAreHexAndDistinct) {
  const std::string a = new_connection_id();
  EXPECT_EQ(a.size(), 16u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, new_connection_id());
}

}  // namespace
}  // namespace notify
