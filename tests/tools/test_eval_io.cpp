// The evaluation's file formats: the JSON reader of its task files (strict, bounded, with
// the byte offset of a problem), the JSON string writer, and the SVG charts.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "tools/cli/eval.h"
#include "tools/json.h"
#include "tools/svg.h"

namespace amskv {
namespace {

TEST(Json, ParsesTheTaskFileShapes) {
  json::Value v;
  std::string err;
  ASSERT_TRUE(json::parse(
      R"({"id": "t1", "pieces": ["a\nb", "\u00e9\ud83d\ude00"], "facts": [{"piece": 1,
          "offset": 2, "ok": true, "no": false, "none": null, "x": -1.5e2}]})",
      &v, &err))
      << err;
  ASSERT_EQ(v.kind, json::Value::kObject);
  EXPECT_EQ(v.get("id")->str, "t1");
  EXPECT_EQ(v.get("pieces")->arr[0].str, "a\nb");
  EXPECT_EQ(v.get("pieces")->arr[1].str, "\xc3\xa9\xf0\x9f\x98\x80");  // é and U+1F600
  const json::Value& f = v.get("facts")->arr[0];
  EXPECT_EQ(f.get("piece")->num, 1);
  EXPECT_TRUE(f.get("ok")->b);
  EXPECT_FALSE(f.get("no")->b);
  EXPECT_EQ(f.get("none")->kind, json::Value::kNull);
  EXPECT_EQ(f.get("x")->num, -150);
  EXPECT_EQ(f.get("missing"), nullptr);
}

TEST(Json, RejectsBrokenTextWithWhere) {
  const char* bad[] = {"",           "{",       "{\"a\" 1}",   "[1,]",
                       "\"abc",      "\"\\x\"", "\"\\ud800\"", "{} x",
                       "[\"\x01\"]", "tru",     "{\"a\":-}",   "[1 2]"};
  for (const char* b : bad) {
    json::Value v;
    std::string err;
    EXPECT_FALSE(json::parse(b, &v, &err)) << b;
    EXPECT_NE(err.find("at byte"), std::string::npos) << b << ": " << err;
  }
  std::string deep(100, '[');
  json::Value v;
  std::string err;
  EXPECT_FALSE(json::parse(deep + std::string(100, ']'), &v, &err));
  EXPECT_NE(err.find("too deep"), std::string::npos) << err;
}

TEST(Json, QuoteRoundTrips) {
  const std::string s = "a\"b\\c\nd\te\x01 \xc3\xa9";
  json::Value v;
  std::string err;
  ASSERT_TRUE(json::parse(json::quote(s), &v, &err)) << err;
  EXPECT_EQ(v.str, s);
}

TEST(Svg, ChartsHoldTheirSeriesAndEscapeText) {
  svg::Series a;
  a.name = "ams:tova <x>";
  a.color = "#123456";
  a.x = {0.1, 0.25, 0.5};
  a.y = {0.3, NAN, 0.1};
  const std::string s = svg::line_chart("t & t", "x", "y", {a});
  EXPECT_EQ(s.rfind("<svg", 0), 0u);
  EXPECT_NE(s.find("</svg>"), std::string::npos);
  EXPECT_NE(s.find("ams:tova &lt;x&gt;"), std::string::npos);
  EXPECT_NE(s.find("t &amp; t"), std::string::npos);
  size_t circles = 0;
  for (size_t p = s.find("<circle"); p != std::string::npos; p = s.find("<circle", p + 1))
    ++circles;
  EXPECT_EQ(circles, 2u);  // the NaN point is left out

  svg::EventPanel e;
  e.title = "ams";
  e.positions = {0, 1, 2, 3};
  e.mass = {0.5f, 0.1f, 0.3f, 0.1f};
  e.kept = {1, 0, 0, 0};
  e.seg_start = {0, 2};
  e.seg_quota = {1, 1};
  const std::string f = svg::event_figure("event", {e});
  EXPECT_NE(f.find("#fbd5d5"), std::string::npos);  // region 1 (slots 2, 3) is wiped out
  EXPECT_NE(f.find("1 kept"), std::string::npos);
}

// Every dtype the library names has its row (rank, dash) in eval's table and nothing past
// them does (so the table is exactly as long), and a smaller dtype ranks higher: a dtype
// added without its row would index past the table.
TEST(EvalDtypes, EveryDtypeHasItsRow) {
  for (int d = 0; d < amskv_dtype_count(); ++d) {
    const eval::DtypeLook* l = eval::dtype_look((amskv_dtype)d);
    ASSERT_NE(l, nullptr) << amskv_dtype_name((amskv_dtype)d);
    EXPECT_NE(l->dash, nullptr);
  }
  EXPECT_EQ(eval::dtype_look((amskv_dtype)amskv_dtype_count()), nullptr);
  EXPECT_LT(eval::dtype_look(AMSKV_F16)->rank, eval::dtype_look(AMSKV_Q8)->rank);
  EXPECT_LT(eval::dtype_look(AMSKV_Q8)->rank, eval::dtype_look(AMSKV_K8V4)->rank);
  EXPECT_LT(eval::dtype_look(AMSKV_K8V4)->rank, eval::dtype_look(AMSKV_Q4)->rank);
  EXPECT_EQ(eval::dtype_look(AMSKV_Q4)->rank, eval::dtype_look(AMSKV_Q4H)->rank);
}

}  // namespace
}  // namespace amskv
