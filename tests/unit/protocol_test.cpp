#include "gateway/protocol.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace notify::gateway::protocol {
namespace {

Request parse_ok(std::string_view text) {
  auto result = parse_request(text);
  EXPECT_TRUE(std::holds_alternative<Request>(result)) << text;
  return std::get<Request>(result);
}

Error parse_error(std::string_view text) {
  auto result = parse_request(text);
  EXPECT_TRUE(std::holds_alternative<Error>(result)) << text;
  return std::holds_alternative<Error>(result) ? std::get<Error>(result) : Error{};
}

TEST(ProtocolParse, SubscribeWithTopicAndId) {
  const Request r = parse_ok(R"({"type":"subscribe","topic":"post:42","id":7})");
  EXPECT_EQ(r.type, RequestType::subscribe);
  EXPECT_EQ(r.topic, "post:42");
  EXPECT_EQ(r.id_json, "7");
}

TEST(ProtocolParse, UnsubscribeAndStringId) {
  const Request r = parse_ok(R"({"type":"unsubscribe","topic":"a/b","id":"x-1"})");
  EXPECT_EQ(r.type, RequestType::unsubscribe);
  EXPECT_EQ(r.id_json, R"("x-1")");
}

TEST(ProtocolParse, PingWithoutId) {
  const Request r = parse_ok(R"({"type":"ping"})");
  EXPECT_EQ(r.type, RequestType::ping);
  EXPECT_TRUE(r.id_json.empty());
}

TEST(ProtocolParse, MessageKeepsDataExactlyAsWritten) {
  const Request r = parse_ok(R"({"type":"message","data":{ "text" : "hi",  "n":[1, 2]}})");
  EXPECT_EQ(r.type, RequestType::message);
  EXPECT_EQ(r.data_json, R"({ "text" : "hi",  "n":[1, 2]})");
  EXPECT_EQ(parse_ok(R"({"type":"message","data":1.5})").data_json, "1.5");
  EXPECT_EQ(parse_ok(R"({"data":123456789012345678901234567890,"type":"message"})").data_json,
            "123456789012345678901234567890");
}

TEST(ProtocolParse, RawDataSurvivesTrickyStrings) {
  const std::string frame = R"({"type":"message","id":"}","data":{"s":"a\"}]{[,b","t":[{"u":"\\"}]},"z":1})";
  const Request r = parse_ok(frame);
  EXPECT_EQ(r.data_json, R"({"s":"a\"}]{[,b","t":[{"u":"\\"}]})");
  EXPECT_EQ(boost::json::parse(r.data_json).at("s"), "a\"}]{[,b");
  EXPECT_EQ(boost::json::parse(r.data_json).at("t").at(0).at("u"), "\\");
}

TEST(ProtocolParse, NumbersBeyondDoubleRangeAreRefused) {
  EXPECT_EQ(parse_error(R"({"type":"message","data":0e400})").code, "bad_json");
  EXPECT_EQ(parse_error(R"({"type":"message","data":[1e400]})").code, "bad_json");
  EXPECT_EQ(parse_error(R"({"type":"ping","x":{"y":-1e999}})").code, "bad_json");
  EXPECT_EQ(parse_ok(R"({"type":"message","data":1e300})").data_json, "1e300");
}

TEST(ProtocolParse, LongDecimalsKeepEveryDigit) {
  EXPECT_EQ(parse_ok(R"({"type":"message","data":{"x":995.27409071001547,"n":[1,2]}})").data_json,
            R"({"x":995.27409071001547,"n":[1,2]})");
}

TEST(ProtocolRawMember, NeverReadsPastTheEnd) {
  for (const char* text : {R"({"data")", R"({"data":)", R"({"data" 1})", R"({"da)", R"({"data":"abc)", "{", ""}) {
    (void)raw_member(text, "data");  // must not throw or crash
  }
  EXPECT_FALSE(raw_member(R"({"data")", "data").has_value());
}

TEST(ProtocolParse, EscapedDuplicateDataKeyForwardsWhatWasValidated) {
  // Boost.JSON keeps the last "data" after unescaping; so must the forwarder.
  const Request r = parse_ok(R"({"type":"message","data":{"amount":1},"d\u0061ta":{"amount":1000}})");
  EXPECT_EQ(boost::json::parse(r.data_json), boost::json::parse(R"({"amount":1000})"));
}

TEST(ProtocolRawMember, FindsMembersAsWritten) {
  EXPECT_EQ(raw_member(R"( { "a" : [1, {"b":2}] , "c":"x" } )", "a"), R"([1, {"b":2}])");
  EXPECT_EQ(raw_member(R"({"a":1,"c":"x"})", "c"), R"("x")");
  EXPECT_EQ(raw_member(R"({"a":1,"a":true})", "a"), "true");  // last wins, like Boost.JSON
  EXPECT_FALSE(raw_member(R"({"a":1})", "b").has_value());
  EXPECT_FALSE(raw_member(R"([1])", "a").has_value());
  EXPECT_FALSE(raw_member(R"({"d\u0061ta":1})", "data").has_value());
}

TEST(ProtocolParse, MessageWithScalarData) {
  EXPECT_EQ(parse_ok(R"({"type":"message","data":"plain text"})").data_json, R"("plain text")");
  EXPECT_EQ(parse_ok(R"({"type":"message","data":null})").data_json, "null");
}

TEST(ProtocolParse, RejectsInvalidJson) {
  EXPECT_EQ(parse_error("{not json").code, "bad_json");
  EXPECT_EQ(parse_error("").code, "bad_json");
  EXPECT_EQ(parse_error(R"({"type":"ping"} trailing)").code, "bad_json");
}

TEST(ProtocolParse, RejectsInvalidUtf8) { EXPECT_EQ(parse_error("{\"type\":\"p\xff\"}").code, "bad_json"); }

TEST(ProtocolParse, RejectsNonObjects) {
  EXPECT_EQ(parse_error("[1,2]").code, "bad_request");
  EXPECT_EQ(parse_error("42").code, "bad_request");
}

TEST(ProtocolParse, RejectsMissingOrNonStringType) {
  EXPECT_EQ(parse_error(R"({"topic":"a"})").code, "bad_request");
  EXPECT_EQ(parse_error(R"({"type":5})").code, "bad_request");
}

TEST(ProtocolParse, UnknownTypeKeepsIdForCorrelation) {
  const Error e = parse_error(R"({"type":"dance","id":3})");
  EXPECT_EQ(e.code, "unknown_type");
  EXPECT_EQ(e.id_json, "3");
  EXPECT_NE(e.message.find("dance"), std::string::npos);
}

TEST(ProtocolParse, UnknownLongTypeIsNotEchoed) {
  const std::string type(500, 'x');
  const Error e = parse_error(R"({"type":")" + type + R"("})");
  EXPECT_EQ(e.code, "unknown_type");
  EXPECT_EQ(e.message.find(type), std::string::npos);
}

TEST(ProtocolParse, SubscribeNeedsValidTopic) {
  EXPECT_EQ(parse_error(R"({"type":"subscribe"})").code, "bad_request");
  EXPECT_EQ(parse_error(R"({"type":"subscribe","topic":7})").code, "bad_request");
  EXPECT_EQ(parse_error(R"({"type":"subscribe","topic":""})").code, "invalid_topic");
  EXPECT_EQ(parse_error(R"({"type":"subscribe","topic":"has space"})").code, "invalid_topic");
  EXPECT_EQ(parse_error(R"({"type":"subscribe","topic":")" + std::string(129, 'a') + "\"}").code, "invalid_topic");
}

TEST(ProtocolParse, RefreshCarriesAToken) {
  const Request r = parse_ok(R"({"type":"refresh","token":"a.b.c","id":2})");
  EXPECT_EQ(r.type, RequestType::refresh);
  EXPECT_EQ(r.token, "a.b.c");
  EXPECT_EQ(parse_error(R"({"type":"refresh"})").code, "bad_request");
  EXPECT_EQ(parse_error(R"({"type":"refresh","token":""})").code, "bad_request");
  EXPECT_EQ(parse_error(R"({"type":"refresh","token":5})").code, "bad_request");
}

TEST(ProtocolParse, MessageNeedsData) { EXPECT_EQ(parse_error(R"({"type":"message"})").code, "bad_request"); }

TEST(ProtocolParse, RejectsUnusableIds) {
  EXPECT_EQ(parse_error(R"({"type":"ping","id":{"a":1}})").code, "bad_request");
  EXPECT_EQ(parse_error(R"({"type":"ping","id":1.5})").code, "bad_request");
  EXPECT_EQ(parse_ok(R"({"type":"ping","id":18446744073709551615})").id_json, "18446744073709551615");
  EXPECT_EQ(parse_ok(R"({"type":"ping","id":-3})").id_json, "-3");
  EXPECT_EQ(parse_error(R"({"type":"ping","id":")" + std::string(129, 'a') + "\"}").code, "bad_request");
}

TEST(ProtocolParse, RejectsNestingBeyondLimit) {
  std::string deep = R"({"type":"message","data":)";
  for (int i = 0; i < 100; ++i) deep += '[';
  for (int i = 0; i < 100; ++i) deep += ']';
  deep += '}';
  EXPECT_EQ(parse_error(deep).code, "bad_json");
}

TEST(ProtocolCheckJson, AcceptsAnyJsonValue) {
  for (const char* ok : {"{}", "[]", "\"s\"", "1.5e3", "true", "null", " {\"a\" : [1, {\"b\": null}]} "}) {
    EXPECT_FALSE(check_json(ok).has_value()) << ok;
  }
}

TEST(ProtocolCheckJson, ExplainsWhereItFailed) {
  const auto problem = check_json(R"({"a": 1,})");
  ASSERT_TRUE(problem.has_value());
  EXPECT_NE(problem->find("at byte"), std::string::npos) << *problem;
  EXPECT_TRUE(check_json("{} {}").has_value());
  EXPECT_TRUE(check_json("").has_value());
}

TEST(ProtocolEncode, NotificationHasDocumentedShape) {
  const std::string frame = encode_notification("n-1", "like", "", R"({"post":42})", 1700000000123);
  EXPECT_EQ(frame, R"({"type":"notification","id":"n-1","event":"like","data":{"post":42},"ts":1700000000123})");
  const auto v = boost::json::parse(frame);
  EXPECT_FALSE(v.as_object().contains("topic"));
}

TEST(ProtocolEncode, NotificationWithTopicAndNullData) {
  const auto v = boost::json::parse(encode_notification("n-2", "view", "post:1", "", 5));
  EXPECT_EQ(v.at("topic"), "post:1");
  EXPECT_TRUE(v.at("data").is_null());
  EXPECT_FALSE(v.as_object().contains("collapse_key"));
  const auto keyed = boost::json::parse(encode_notification("n-3", "view", "post:1", "120", 5, "views"));
  EXPECT_EQ(keyed.at("collapse_key"), "views");
}

TEST(ProtocolEncode, EscapesStrings) {
  const auto v = boost::json::parse(encode_error({"bad_json", "quote \" backslash \\ newline \n ctl \x01", "1"}));
  EXPECT_EQ(v.at("message"), "quote \" backslash \\ newline \n ctl \x01");
  EXPECT_EQ(v.at("id"), 1);
}

TEST(ProtocolEncode, RepliesEchoTheRequestId) {
  EXPECT_EQ(encode_pong(""), R"({"type":"pong"})");
  EXPECT_EQ(encode_pong(R"("abc")"), R"({"type":"pong","id":"abc"})");
  EXPECT_EQ(encode_subscribed("t", "9"), R"({"type":"subscribed","topic":"t","id":9})");
  EXPECT_EQ(encode_unsubscribed("t", ""), R"({"type":"unsubscribed","topic":"t"})");
  EXPECT_EQ(encode_ack("4", "m-1"), R"({"type":"ack","id":4,"message_id":"m-1"})");
  EXPECT_EQ(encode_welcome("c1", "alice", 0), R"({"type":"welcome","connection_id":"c1","user_id":"alice"})");
  EXPECT_EQ(encode_welcome("c1", "alice", 1700000000),
            R"({"type":"welcome","connection_id":"c1","user_id":"alice","expires_at":1700000000})");
  EXPECT_EQ(encode_refreshed(1700000000, "5"), R"({"type":"refreshed","expires_at":1700000000,"id":5})");
  EXPECT_EQ(encode_unsubscribed("t", "", "forbidden"), R"({"type":"unsubscribed","topic":"t","reason":"forbidden"})");
}

TEST(ProtocolParse, ResumeListsItsStreamsInOrder) {
  const auto r = parse_ok(
      R"({"type":"resume","id":3,"streams":{"user:alice":{"epoch":"e-1","offset":7},"topic:news":{"epoch":"","offset":0}}})");
  EXPECT_EQ(r.type, RequestType::resume);
  EXPECT_EQ(r.id_json, "3");
  ASSERT_EQ(r.streams.size(), 2u);
  EXPECT_EQ(r.streams[0].stream, "user:alice");
  EXPECT_EQ(r.streams[0].epoch, "e-1");
  EXPECT_EQ(r.streams[0].offset, 7u);
  EXPECT_EQ(r.streams[1].stream, "topic:news");
  EXPECT_EQ(r.streams[1].offset, 0u);
  // Offsets beyond int64 still parse (JSON integers up to 2^64-1).
  EXPECT_EQ(
      parse_ok(R"({"type":"resume","streams":{"all":{"epoch":"e","offset":18446744073709551615}}})").streams[0].offset,
      18446744073709551615ull);
}

TEST(ProtocolParse, AckCarriesNotificationIds) {
  const auto r = parse_ok(R"({"type":"ack","ids":["n-1","01a22999-2bec-7a4b-9196-c4fd46c2eec0"]})");
  EXPECT_EQ(r.type, RequestType::ack);
  EXPECT_EQ(r.ids, (std::vector<std::string>{"n-1", "01a22999-2bec-7a4b-9196-c4fd46c2eec0"}));
  std::string many = R"({"type":"ack","ids":[)";
  for (std::size_t i = 0; i <= kMaxAckIds; ++i) many += (i ? ",\"" : "\"") + std::to_string(i) + "\"";
  many += "]}";
  for (const std::string& text : {std::string(R"({"type":"ack"})"), std::string(R"({"type":"ack","ids":"n-1"})"),
                                  std::string(R"({"type":"ack","ids":[]})"), std::string(R"({"type":"ack","ids":[1]})"),
                                  std::string(R"({"type":"ack","ids":["bad id"]})"), many}) {
    EXPECT_EQ(parse_error(text).code, "bad_request") << text.substr(0, 60);
  }
}

TEST(ProtocolEncode, ANotificationThatAsksForAnAckSaysSo) {
  EXPECT_EQ(encode_notification("n1", "like", "", "1", 5, {}, nullptr, true),
            R"({"type":"notification","id":"n1","event":"like","data":1,"ts":5,"require_ack":true})");
  EXPECT_EQ(encode_notification("n1", "like", "", "1", 5).find("require_ack"), std::string::npos);
}

TEST(ProtocolParse, ResumeRefusesMalformedPositions) {
  for (const char* text : {
           R"({"type":"resume"})",
           R"({"type":"resume","streams":[]})",
           R"({"type":"resume","streams":{"all":3}})",
           R"({"type":"resume","streams":{"all":{"offset":1}}})",
           R"({"type":"resume","streams":{"all":{"epoch":"e","offset":-1}}})",
           R"({"type":"resume","streams":{"all":{"epoch":"e","offset":1.5}}})",
           R"({"type":"resume","streams":{"all":{"epoch":7,"offset":1}}})",
       }) {
    EXPECT_EQ(parse_error(text).code, "bad_request") << text;
  }
  std::string many = R"({"type":"resume","streams":{)";
  for (std::size_t i = 0; i <= kMaxResumeStreams; ++i) {
    many += (i ? "," : "") + std::string("\"topic:t") + std::to_string(i) + R"(":{"epoch":"e","offset":0})";
  }
  EXPECT_EQ(parse_error(many + "}}").code, "bad_request");
}

TEST(ProtocolEncode, HistoryFramesHaveTheDocumentedShape) {
  const Position p{"user:alice", "abc-1", 42};
  EXPECT_EQ(
      boost::json::parse(encode_notification("n1", "like", "", "{}", 5, "", &p)),
      boost::json::parse(
          R"({"type":"notification","id":"n1","event":"like","data":{},"ts":5,"stream":"user:alice","epoch":"abc-1","offset":42})"));
  EXPECT_EQ(boost::json::parse(encode_skipped(p, 40)),
            boost::json::parse(R"({"type":"skipped","stream":"user:alice","epoch":"abc-1","offset":42,"from":40})"));
  EXPECT_EQ(
      boost::json::parse(encode_resume_failed(p, "too_old", "9")),
      boost::json::parse(
          R"({"type":"resume_failed","stream":"user:alice","epoch":"abc-1","offset":42,"reason":"too_old","id":9})"));
  const std::vector<Position> streams = {p, {"all", "abc-2", 0}};
  EXPECT_EQ(
      boost::json::parse(encode_resumed(streams, "")),
      boost::json::parse(
          R"({"type":"resumed","streams":{"user:alice":{"epoch":"abc-1","offset":42},"all":{"epoch":"abc-2","offset":0}}})"));
  EXPECT_EQ(boost::json::parse(encode_welcome("c", "alice", 0, streams)).at("streams").at("all").at("epoch"), "abc-2");
  EXPECT_EQ(boost::json::parse(encode_subscribed("news", "1", &p)).at("offset"), 42);
}

}  // namespace
}  // namespace notify::gateway::protocol
