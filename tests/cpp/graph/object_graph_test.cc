#include "trackpoint/object_graph.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "graph/naming.h"
#include "test_util.h"
#include "trackpoint/bundle_reader.h"

namespace trackpoint {
namespace {

using testing::FixturePath;
using testing::FixturePrefixes;
using testing::Unhex;

// A length-delimited field: tag, one-byte length, body.
std::string Field(uint8_t tag, const std::string& body) {
  EXPECT_LT(body.size(), 128u);
  return std::string(1, static_cast<char>(tag)) +
         static_cast<char>(body.size()) + body;
}

// FORMAT.md §12: the object graph of
// Checkpoint(s=Variable(["hi", ""]), v=Variable([1., 2.])), 148 bytes.
const std::string kWorkedExample = Unhex(
    "0a120a0508011201730a0508021201762a0208010a3e12380a0e5641524941424c455f"
    "56414c554512085661726961626c651a1c732f2e415454524942555445532f56415249"
    "41424c455f56414c55452a0208010a3e12380a0e5641524941424c455f56414c554512"
    "085661726961626c651a1c762f2e415454524942555445532f5641524941424c455f56"
    "414c55452a020801");

// The serialized object graph stored in the bundle at prefix, or "" if the
// bundle has none.
std::string ReadGraphBytes(const std::string& prefix) {
  auto reader = BundleReader::Open(prefix);
  EXPECT_TRUE(reader.ok()) << prefix << ": " << reader.status().ToString();
  if (!reader.ok() || (*reader)->Find(kObjectGraphKey) == nullptr) return "";
  auto strings = (*reader)->ReadStringTensor(kObjectGraphKey);
  EXPECT_TRUE(strings.ok()) << strings.status().ToString();
  if (!strings.ok() || strings->size() != 1) return "";
  return (*strings)[0];
}

TEST(ObjectGraphTest, WorkedExampleParses) {
  ASSERT_EQ(kWorkedExample.size(), 148u);
  EXPECT_EQ(ReadGraphBytes(FixturePath("worked_example/tv")), kWorkedExample);

  auto graph = ParseObjectGraph(kWorkedExample);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  ASSERT_EQ(graph->nodes.size(), 3u);
  const TrackableObject& root = graph->nodes[0];
  EXPECT_EQ(root.children, (std::vector<ObjectReference>{{1, "s"}, {2, "v"}}));
  EXPECT_TRUE(root.attributes.empty());
  EXPECT_EQ(root.has_checkpoint_values, true);
  EXPECT_FALSE(root.registered_saver.has_value());
  for (int i : {1, 2}) {
    const TrackableObject& node = graph->nodes[i];
    EXPECT_TRUE(node.children.empty());
    EXPECT_TRUE(node.slot_variables.empty());
    EXPECT_EQ(node.has_checkpoint_values, true);
    const std::string key =
        std::string(i == 1 ? "s" : "v") + "/.ATTRIBUTES/VARIABLE_VALUE";
    EXPECT_EQ(
        node.attributes,
        (std::vector<SerializedTensor>{{"VARIABLE_VALUE", "Variable", key}}));
  }
  EXPECT_EQ(SerializeObjectGraph(*graph), kWorkedExample);
}

TEST(ObjectGraphTest, EveryFixtureGraphRoundTrips) {
  int graphs = 0;
  for (const std::string& prefix : FixturePrefixes()) {
    const std::string bytes = ReadGraphBytes(FixturePath(prefix));
    if (bytes.empty()) continue;
    ++graphs;
    auto graph = ParseObjectGraph(bytes);
    ASSERT_TRUE(graph.ok()) << prefix << ": " << graph.status().ToString();
    EXPECT_EQ(SerializeObjectGraph(*graph), bytes) << prefix;
  }
  EXPECT_GE(graphs, 5);
}

TEST(ObjectGraphTest, SerializeLeavesOutDefaults) {
  TrackableObjectGraph graph;
  graph.nodes.resize(2);
  graph.nodes[0].children = {{1, "a"}, {0, "root"}};
  graph.nodes[0].has_checkpoint_values = false;
  graph.nodes[1].attributes = {{"py_state", "", "a/.ATTRIBUTES/py_state"}};
  graph.nodes[1].has_checkpoint_values = true;
  const std::string node0 =
      Field(0x0a, Unhex("0801") + Field(0x12, "a")) +  // child (1, "a")
      Field(0x0a, Field(0x12, "root")) +  // child (0, "root"): 0 omitted
      Unhex("2a00");                      // has_checkpoint_values false
  const std::string node1 =
      Field(0x12, Field(0x0a, "py_state") +  // empty full_name omitted
                      Field(0x1a, "a/.ATTRIBUTES/py_state")) +
      Unhex("2a020801");  // has_checkpoint_values true
  const std::string expected = Field(0x0a, node0) + Field(0x0a, node1);
  EXPECT_EQ(node0, Unhex("0a050801120161"
                         "0a061204") +
                       "root" + Unhex("2a00"));
  EXPECT_EQ(SerializeObjectGraph(graph), expected);

  auto back = ParseObjectGraph(expected);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, graph);
}

TEST(ObjectGraphTest, AbsentHasCheckpointValuesIsOmitted) {
  TrackableObjectGraph graph;
  graph.nodes.resize(1);
  EXPECT_EQ(SerializeObjectGraph(graph), Unhex("0a00"));
  auto back = ParseObjectGraph(Unhex("0a00"));
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->nodes.size(), 1u);
  EXPECT_FALSE(back->nodes[0].has_checkpoint_values.has_value());
}

TEST(ObjectGraphTest, SlotVariablesAndRegisteredSaverRoundTrip) {
  TrackableObjectGraph graph;
  graph.nodes.resize(4);
  graph.nodes[0].children = {{1, "w"}, {2, "opt"}};
  graph.nodes[2].slot_variables = {{1, "m", 3}, {0, "", 0}};
  graph.nodes[1].registered_saver = RegisteredSaver{"saver", "w"};
  graph.nodes[3].registered_saver = RegisteredSaver{};
  for (auto& node : graph.nodes) node.has_checkpoint_values = true;
  const std::string bytes = SerializeObjectGraph(graph);
  // The slot reference {1, "m", 3} and the all-default one.
  EXPECT_NE(bytes.find(Unhex("1a07080112016d1803")), std::string::npos);
  EXPECT_NE(bytes.find(Unhex("1a00")), std::string::npos);
  // An empty registered saver is still written (22 00).
  EXPECT_NE(bytes.find(Unhex("0a06"
                             "2200"
                             "2a020801")),
            std::string::npos);
  auto back = ParseObjectGraph(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, graph);
}

TEST(ObjectGraphTest, EmptyInputIsAnEmptyGraph) {
  auto graph = ParseObjectGraph("");
  ASSERT_TRUE(graph.ok());
  EXPECT_TRUE(graph->nodes.empty());
  EXPECT_EQ(SerializeObjectGraph(*graph), "");
}

TEST(ObjectGraphTest, SkipsUnknownFields) {
  // Unknown fields of every wire type in every message, including field 4
  // of SerializedTensor (optional_restore, written by older TF).
  const std::string tensor = Unhex(
                                 "0a0156"
                                 "1a026b31") +
                             Unhex("2001") +       // optional_restore true
                             Unhex("2d01020304");  // field 5, fixed32
  const std::string child = Unhex(
                                "0801"
                                "120178") +
                            Unhex("3805") +               // field 7, varint
                            Unhex("4100000000000000ff");  // field 8, fixed64
  const std::string node0 = Field(0x0a, child) + Unhex("7a03616263");
  const std::string node1 = Field(0x12, tensor) +
                            Field(0x2a, Unhex("0801"
                                              "1000")) +
                            Unhex("309901");
  const std::string data =
      Field(0x0a, node0) + Field(0x0a, node1) + Unhex("1005");
  auto graph = ParseObjectGraph(data);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  ASSERT_EQ(graph->nodes.size(), 2u);
  EXPECT_EQ(graph->nodes[0].children, (std::vector<ObjectReference>{{1, "x"}}));
  EXPECT_FALSE(graph->nodes[0].has_checkpoint_values.has_value());
  EXPECT_EQ(graph->nodes[1].attributes,
            (std::vector<SerializedTensor>{{"V", "", "k1"}}));
  EXPECT_EQ(graph->nodes[1].has_checkpoint_values, true);
}

TEST(ObjectGraphTest, RepeatedMessageFieldsMerge) {
  // has_checkpoint_values given twice (true, then empty): merged, stays true.
  // registered_saver given twice: merged field by field.
  const std::string data = Unhex(
      "0a10"
      "2a020801"
      "2a00"
      "2203"
      "0a0161"
      "2203"
      "120162");
  auto graph = ParseObjectGraph(data);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_EQ(graph->nodes[0].has_checkpoint_values, true);
  EXPECT_EQ(graph->nodes[0].registered_saver, (RegisteredSaver{"a", "b"}));
}

void ExpectDataLoss(const std::string& data, const std::string& what) {
  auto graph = ParseObjectGraph(data);
  ASSERT_FALSE(graph.ok()) << what;
  EXPECT_EQ(graph.status().code(), StatusCode::kDataLoss)
      << what << ": " << graph.status().ToString();
}

TEST(ObjectGraphTest, NodeIdsOutOfRangeAreDataLoss) {
  TrackableObjectGraph graph;
  graph.nodes.resize(2);
  graph.nodes[0].children = {{2, "a"}};
  ExpectDataLoss(SerializeObjectGraph(graph), "child node_id == size");
  graph.nodes[0].children = {{-1, "a"}};
  ExpectDataLoss(SerializeObjectGraph(graph), "negative child node_id");
  graph.nodes[0].children = {{1, "a"}};
  EXPECT_TRUE(ParseObjectGraph(SerializeObjectGraph(graph)).ok());
  graph.nodes[1].slot_variables = {{5, "m", 1}};
  ExpectDataLoss(SerializeObjectGraph(graph), "original_variable_node_id");
  graph.nodes[1].slot_variables = {{1, "m", 7}};
  ExpectDataLoss(SerializeObjectGraph(graph), "slot_variable_node_id");
  graph.nodes[1].slot_variables = {{1, "m", -2147483647 - 1}};
  ExpectDataLoss(SerializeObjectGraph(graph), "INT32_MIN");
  // node_id is an int32: 2^32 + 1 reads as 1 (protobuf truncates).
  auto truncated = ParseObjectGraph(
      Field(0x0a, Field(0x0a, Unhex("088180808010"))) + Unhex("0a00"));
  ASSERT_TRUE(truncated.ok()) << truncated.status().ToString();
  EXPECT_EQ(truncated->nodes[0].children[0].node_id, 1);
  // A child reference in a graph with no other nodes than the root: only
  // node id 0 is valid.
  ExpectDataLoss(Unhex("0a04"
                       "0a02"
                       "0801"),
                 "child 1 of a one-node graph");
  EXPECT_TRUE(ParseObjectGraph(Unhex("0a02"
                                     "0a00"))
                  .ok());
}

TEST(ObjectGraphTest, MalformedInputIsDataLoss) {
  ExpectDataLoss(Unhex("0a"), "missing length");
  ExpectDataLoss(Unhex("0a05"
                       "0a00"),
                 "length past the end");
  ExpectDataLoss(Unhex("0affffffff0f"), "huge length");
  ExpectDataLoss(Unhex("0801"), "nodes as a varint");
  ExpectDataLoss(Unhex("0a02"
                       "0801"),
                 "children as a varint");
  ExpectDataLoss(Unhex("0a04"
                       "0a02"
                       "1201"),
                 "local_name as a varint");
  ExpectDataLoss(Unhex("0a04"
                       "2a02"
                       "0a00"),
                 "BoolValue.value as bytes");
  ExpectDataLoss(Unhex("0a03"
                       "0b0c00"),
                 "group");
  ExpectDataLoss(Field(0x0a, Field(0x0a, Unhex("08ffffffffffffffffffff01"))),
                 "11-byte varint");
  ExpectDataLoss(Field(0x0a, Field(0x0a, Unhex("08ffff"))), "truncated varint");
}

TEST(ObjectGraphTest, StringsMustBeUtf8) {
  // proto3 strings: protobuf (and so TensorFlow) rejects invalid UTF-8.
  const std::string good =
      "h\xc3\xa9llo \xe2\x9c\x93 \xe6\x97\xa5 \xf0\x9f\x98\x80";
  auto graph = ParseObjectGraph(Field(0x0a, Field(0x0a, Field(0x12, good))));
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_EQ(graph->nodes[0].children[0].local_name, good);
  for (const char* bad :
       {"\xff", "\x80", "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xed\xa0\x80",
        "\xf0\x80\x80\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xe2\x82",
        "a\xe2\x82\x28"}) {
    ExpectDataLoss(Field(0x0a, Field(0x0a, Field(0x12, bad))), "child name");
    ExpectDataLoss(Field(0x0a, Field(0x12, Field(0x1a, bad))), "key");
    ExpectDataLoss(Field(0x0a, Field(0x1a, Field(0x12, bad))), "slot name");
    ExpectDataLoss(Field(0x0a, Field(0x22, Field(0x0a, bad))), "saver name");
  }
}

TEST(ObjectGraphTest, EveryTruncationIsAnErrorOrAGraph) {
  for (size_t n = 0; n < kWorkedExample.size(); ++n) {
    auto graph = ParseObjectGraph(kWorkedExample.substr(0, n));
    if (graph.ok()) {
      // Only cuts at a node boundary leave a valid graph.
      EXPECT_TRUE(n == 0 || n == 20 || n == 84) << n;
      EXPECT_EQ(SerializeObjectGraph(*graph), kWorkedExample.substr(0, n));
    } else {
      EXPECT_EQ(graph.status().code(), StatusCode::kDataLoss) << n;
    }
  }
}

TEST(ObjectGraphTest, BitFlipsNeverCrash) {
  std::mt19937 rng(20240611);
  int ok = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    std::string data = kWorkedExample;
    const int flips = 1 + trial % 4;
    for (int f = 0; f < flips; ++f) {
      const size_t bit = rng() % (data.size() * 8);
      data[bit / 8] = static_cast<char>(data[bit / 8] ^ (1 << (bit % 8)));
    }
    auto graph = ParseObjectGraph(data);
    if (!graph.ok()) {
      EXPECT_EQ(graph.status().code(), StatusCode::kDataLoss);
      continue;
    }
    ++ok;
    // Whatever parsed is a consistent graph that survives a round trip.
    auto again = ParseObjectGraph(SerializeObjectGraph(*graph));
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(*again, *graph);
  }
  EXPECT_GT(ok, 0);
}

TEST(ObjectGraphTest, RandomBytesNeverCrash) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20000; ++trial) {
    std::string data(rng() % 64, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    auto graph = ParseObjectGraph(data);
    if (!graph.ok()) {
      EXPECT_EQ(graph.status().code(), StatusCode::kDataLoss);
    }
  }
}

}  // namespace
}  // namespace trackpoint
