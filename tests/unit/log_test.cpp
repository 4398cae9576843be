#include "common/log.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace notify::log {
namespace {

TEST(Log, JsonLinesAreValidJsonWithTypedFields) {
  const std::string line = format_line(Format::json, Level::warn, "slow \"consumer\"",
                                       {{"user", "a\nb"}, {"queued", 42}, {"drained", true}});
  ASSERT_EQ(line.back(), '\n');
  const auto v = boost::json::parse(line);
  EXPECT_EQ(v.at("level"), "warn");
  EXPECT_EQ(v.at("msg"), "slow \"consumer\"");
  EXPECT_EQ(v.at("user"), "a\nb");
  EXPECT_EQ(v.at("queued"), 42);
  EXPECT_EQ(v.at("drained"), true);
  EXPECT_TRUE(v.at("ts").is_string());
}

TEST(Log, TextLinesQuoteOnlyWhenNeeded) {
  const std::string line = format_line(Format::text, Level::info, "listening", {{"port", 8080}, {"bind", "a b"}});
  EXPECT_NE(line.find(" INFO listening port=8080 bind=\"a b\""), std::string::npos) << line;
}

TEST(Log, LevelsAndFormatsParse) {
  Level l;
  EXPECT_TRUE(parse_level("debug", l));
  EXPECT_EQ(l, Level::debug);
  EXPECT_FALSE(parse_level("verbose", l));
  Format f;
  EXPECT_TRUE(parse_format("json", f));
  EXPECT_EQ(f, Format::json);
  EXPECT_FALSE(parse_format("yaml", f));
}

}  // namespace
}  // namespace notify::log
