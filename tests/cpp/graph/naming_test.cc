#include "graph/naming.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace trackpoint {
namespace {

TEST(NamingTest, Constants) {
  EXPECT_EQ(kObjectGraphKey, "_CHECKPOINTABLE_OBJECT_GRAPH");
  EXPECT_EQ(kVariableValueKey, "VARIABLE_VALUE");
  EXPECT_EQ(kPythonStateKey, "py_state");
  EXPECT_EQ(kObjectAttributesName, ".ATTRIBUTES");
  EXPECT_EQ(kOptimizerSlotName, ".OPTIMIZER_SLOT");
}

TEST(NamingTest, EscapeLocalName) {
  EXPECT_EQ(EscapeLocalName(""), "");
  EXPECT_EQ(EscapeLocalName("kernel"), "kernel");
  EXPECT_EQ(EscapeLocalName("a/b.c"), "a.Sb..c");
  EXPECT_EQ(EscapeLocalName("x.y"), "x..y");
  EXPECT_EQ(EscapeLocalName("p/q"), "p.Sq");
  EXPECT_EQ(EscapeLocalName("./"), "...S");
  EXPECT_EQ(EscapeLocalName(".S"), "..S");  // 'S' itself is not escaped
  EXPECT_EQ(EscapeLocalName("//"), ".S.S");
  EXPECT_EQ(EscapeLocalName(".ATTRIBUTES"), "..ATTRIBUTES");
}

TEST(NamingTest, UnescapeInvertsEscape) {
  for (const std::string& name : std::vector<std::string>{
           "", "kernel", "a/b.c", "x.y", "./", ".S", "..", "//", "S.", "/.S/",
           std::string("nul\0./", 6), "héllo/wörld.✓"}) {
    auto back = UnescapeLocalName(EscapeLocalName(name));
    ASSERT_TRUE(back.ok()) << name << ": " << back.status().ToString();
    EXPECT_EQ(*back, name);
  }
}

TEST(NamingTest, UnescapeRejectsBadEscapes) {
  for (const char* bad : {".", "a.", ".x", "a.b", "..S.", "a/b", ".s"}) {
    auto r = UnescapeLocalName(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(NamingTest, ChildPath) {
  EXPECT_EQ(ChildPath("", "model"), "model");
  EXPECT_EQ(ChildPath("model", "layer"), "model/layer");
  EXPECT_EQ(ChildPath("escaped", "a/b.c"), "escaped/a.Sb..c");
}

TEST(NamingTest, AttributeKey) {
  EXPECT_EQ(AttributeKey("model/layer/kernel", "VARIABLE_VALUE"),
            "model/layer/kernel/.ATTRIBUTES/VARIABLE_VALUE");
  EXPECT_EQ(AttributeKey("save_counter", "VARIABLE_VALUE"),
            "save_counter/.ATTRIBUTES/VARIABLE_VALUE");
  EXPECT_EQ(AttributeKey("t", "py_state"), "t/.ATTRIBUTES/py_state");
  // The attribute name is stored escaped and escaped again in the key
  // (FORMAT.md §7.3): tensor "a.b/c" -> name "a..b.Sc" -> "a....b..Sc".
  EXPECT_EQ(AttributeKey("t", EscapeLocalName("a.b/c")),
            "t/.ATTRIBUTES/a....b..Sc");
}

TEST(NamingTest, SlotVariablePath) {
  EXPECT_EQ(SlotVariablePath("model/w", "optimizer", "m"),
            "model/w/.OPTIMIZER_SLOT/optimizer/m");
  EXPECT_EQ(AttributeKey(SlotVariablePath("model/w", "optimizer", "m"),
                         kVariableValueKey),
            "model/w/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE");
  // The slot name is escaped; the paths are taken as they are.
  EXPECT_EQ(SlotVariablePath("a.Sb", "opt/x", "s/1.0"),
            "a.Sb/.OPTIMIZER_SLOT/opt/x/s.S1..0");
}

}  // namespace
}  // namespace trackpoint
