#include "graph/saver_graph.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "graph/naming.h"
#include "test_util.h"
#include "trackpoint/bundle_reader.h"
#include "trackpoint/object_graph.h"

namespace trackpoint {
namespace {

using testing::FixturePath;
using testing::FixturePrefixes;

// An object saving one variable value.
GraphObjectSpec Variable(const std::string& full_name = "") {
  GraphObjectSpec spec;
  spec.tensor_names = {"VARIABLE_VALUE"};
  spec.full_names = {full_name};
  return spec;
}

GraphObjectSpec Parent(std::vector<std::pair<std::string, int>> children) {
  GraphObjectSpec spec;
  spec.children = std::move(children);
  return spec;
}

SaverGraphPlan BuildOrDie(const std::vector<GraphObjectSpec>& objects,
                          int root = 0) {
  auto plan = BuildSaverGraph(objects, root);
  EXPECT_TRUE(plan.ok()) << plan.status().ToString();
  return plan.ok() ? std::move(plan).value() : SaverGraphPlan{};
}

// The plan must be self-consistent: bytes match the graph, every saved
// object's keys match its node's attributes.
void CheckConsistent(const std::vector<GraphObjectSpec>& objects,
                     const SaverGraphPlan& plan) {
  EXPECT_EQ(plan.serialized_graph, SerializeObjectGraph(plan.graph));
  ASSERT_EQ(plan.graph.nodes.size(), plan.node_objects.size());
  ASSERT_EQ(plan.keys.size(), objects.size());
  for (size_t k = 0; k < plan.node_objects.size(); ++k) {
    const auto& attributes = plan.graph.nodes[k].attributes;
    const auto& keys = plan.keys[plan.node_objects[k]];
    ASSERT_EQ(attributes.size(), keys.size());
    for (size_t t = 0; t < keys.size(); ++t) {
      EXPECT_EQ(attributes[t].checkpoint_key, keys[t]);
    }
  }
  auto parsed = ParseObjectGraph(plan.serialized_graph);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, plan.graph);
}

using Order = std::vector<std::pair<int, int>>;

// ---- FORMAT.md §12 ----------------------------------------------------------

TEST(SaverGraphTest, WorkedExample) {
  // tf.train.Checkpoint(v=..., s=...): kwargs sorted by name.
  const std::vector<GraphObjectSpec> objects = {
      Parent({{"s", 1}, {"v", 2}}), Variable("Variable"), Variable("Variable")};
  const SaverGraphPlan plan = BuildOrDie(objects);
  CheckConsistent(objects, plan);

  const std::string expected =
      testing::ReadFileOrDie(
          FixturePath("worked_example/tv.data-00000-of-00001"))
          .substr(22);
  ASSERT_EQ(expected.size(), 148u);
  EXPECT_EQ(plan.serialized_graph, expected);
  EXPECT_EQ(plan.node_objects, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(plan.keys, (std::vector<std::vector<std::string>>{
                           {},
                           {"s/.ATTRIBUTES/VARIABLE_VALUE"},
                           {"v/.ATTRIBUTES/VARIABLE_VALUE"}}));
  EXPECT_EQ(plan.tensor_order, (Order{{1, 0}, {2, 0}}));
}

// ---- every TensorFlow fixture with an object graph
// ---------------------------

// The objects TensorFlow described in graph, node i as object i: slot
// variable nodes are reachable only through their optimizer's slots.
std::vector<GraphObjectSpec> SpecsFromGraph(const TrackableObjectGraph& graph) {
  std::vector<GraphObjectSpec> objects(graph.nodes.size());
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const TrackableObject& node = graph.nodes[i];
    GraphObjectSpec& spec = objects[i];
    for (const ObjectReference& child : node.children) {
      spec.children.emplace_back(child.local_name, child.node_id);
    }
    for (const SerializedTensor& attribute : node.attributes) {
      auto name = UnescapeLocalName(attribute.name);
      EXPECT_TRUE(name.ok()) << name.status().ToString();
      spec.tensor_names.push_back(name.ok() ? *name : attribute.name);
      spec.full_names.push_back(attribute.full_name);
      if (attribute.name == kPythonStateKey) spec.python_state = true;
    }
    for (const SlotVariableReference& slot : node.slot_variables) {
      if (std::find(spec.slot_names.begin(), spec.slot_names.end(),
                    slot.slot_name) == spec.slot_names.end()) {
        spec.slot_names.push_back(slot.slot_name);
      }
      spec.slots.emplace_back(slot.slot_name, slot.original_variable_node_id,
                              slot.slot_variable_node_id);
    }
  }
  return objects;
}

class TfFixtureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TfFixtureTest, RebuildsTheObjectGraphByteForByte) {
  const std::string prefix = FixturePath(GetParam());
  auto reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  if ((*reader)->Find(kObjectGraphKey) == nullptr) {
    GTEST_SKIP() << GetParam() << " has no object graph (name-based)";
  }
  auto strings = (*reader)->ReadStringTensor(kObjectGraphKey);
  ASSERT_TRUE(strings.ok()) << strings.status().ToString();
  ASSERT_EQ(strings->size(), 1u);
  const std::string& tf_bytes = (*strings)[0];
  auto tf_graph = ParseObjectGraph(tf_bytes);
  ASSERT_TRUE(tf_graph.ok()) << tf_graph.status().ToString();
  for (const TrackableObject& node : tf_graph->nodes) {
    if (node.registered_saver.has_value()) {
      GTEST_SKIP() << "registered savers are not planned by BuildSaverGraph";
    }
  }

  // Objects with a legacy saveable name (hash tables, iterators) record one
  // attribute ("table") stored under keys that extend its key
  // ("table-keys"): their layout is not the planner's.
  const std::vector<std::string> keys = (*reader)->Keys();
  for (const TrackableObject& node : tf_graph->nodes) {
    for (const SerializedTensor& attribute : node.attributes) {
      const std::string& key = attribute.checkpoint_key;
      auto it = std::lower_bound(keys.begin(), keys.end(), key);
      if ((it == keys.end() || *it != key) && it != keys.end() &&
          it->compare(0, key.size(), key) == 0) {
        GTEST_SKIP() << key << " is stored under suffixed keys (" << *it << ")";
      }
    }
  }

  const std::vector<GraphObjectSpec> objects = SpecsFromGraph(*tf_graph);
  auto plan = BuildSaverGraph(objects, 0);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  CheckConsistent(objects, *plan);
  EXPECT_EQ(plan->serialized_graph, tf_bytes);
  EXPECT_EQ(plan->graph, *tf_graph);
  ASSERT_EQ(plan->node_objects.size(), tf_graph->nodes.size());
  for (size_t i = 0; i < plan->node_objects.size(); ++i) {
    EXPECT_EQ(plan->node_objects[i], static_cast<int>(i));
    const auto& attributes = tf_graph->nodes[i].attributes;
    ASSERT_EQ(plan->keys[i].size(), attributes.size()) << "node " << i;
    for (size_t t = 0; t < attributes.size(); ++t) {
      EXPECT_EQ(plan->keys[i][t], attributes[t].checkpoint_key);
      EXPECT_NE((*reader)->Find(plan->keys[i][t]), nullptr) << plan->keys[i][t];
    }
  }

  // TensorFlow wrote one data file densely in tensor_order, then the graph.
  if ((*reader)->header().num_shards != 1) return;
  int64_t end = 0;
  for (const auto& [object, tensor] : plan->tensor_order) {
    const std::string& key = plan->keys[object][tensor];
    const BundleEntry* entry = (*reader)->Find(key);
    ASSERT_NE(entry, nullptr) << key;
    if (!entry->slices.empty()) return;  // sliced: laid out elsewhere
    EXPECT_EQ(entry->offset, end) << key;
    end = entry->offset + entry->size;
  }
  EXPECT_EQ((*reader)->Find(kObjectGraphKey)->offset, end);
}

std::string ParamName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TfFixtureTest,
                         ::testing::ValuesIn(FixturePrefixes()), ParamName);

TEST(SaverGraphTest, KnownFixturesAreScanned) {
  const std::vector<std::string> prefixes = FixturePrefixes();
  for (const char* known : {"dtypes/ckpt", "multishard/ckpt", "manager/ckpt-5",
                            "many_keys/ckpt", "worked_example/tv"}) {
    EXPECT_NE(std::find(prefixes.begin(), prefixes.end(), known),
              prefixes.end())
        << known;
  }
}

// ---- numbering, paths, edges
// ---------------------------------------------------

TEST(SaverGraphTest, SharedObjectIsSavedOnceUnderTheShortestPath) {
  // root -> a -> c -> v and root -> b -> v: v is found from b first.
  const std::vector<GraphObjectSpec> objects = {
      Parent({{"a", 1}, {"b", 2}}), Parent({{"c", 3}}), Parent({{"v", 4}}),
      Parent({{"v", 4}}), Variable("v")};
  const SaverGraphPlan plan = BuildOrDie(objects);
  CheckConsistent(objects, plan);
  EXPECT_EQ(plan.node_objects, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(plan.keys[4],
            (std::vector<std::string>{"b/v/.ATTRIBUTES/VARIABLE_VALUE"}));
  // Both edges to v are recorded.
  EXPECT_EQ(plan.graph.nodes[2].children,
            (std::vector<ObjectReference>{{4, "v"}}));
  EXPECT_EQ(plan.graph.nodes[3].children,
            (std::vector<ObjectReference>{{4, "v"}}));
  EXPECT_EQ(plan.tensor_order, (Order{{4, 0}}));
}

TEST(SaverGraphTest, EqualLengthPathsTakeTheEarliest) {
  // Object indices deliberately out of BFS order.
  const std::vector<GraphObjectSpec> objects = {
      Variable(), Parent({{"y", 3}, {"x", 2}}), Parent({{"v", 0}}),
      Parent({{"w", 0}})};
  const SaverGraphPlan plan = BuildOrDie(objects, 1);
  CheckConsistent(objects, plan);
  EXPECT_EQ(plan.node_objects, (std::vector<int>{1, 3, 2, 0}));
  EXPECT_EQ(plan.keys[0],
            (std::vector<std::string>{"y/w/.ATTRIBUTES/VARIABLE_VALUE"}));
  EXPECT_EQ(plan.graph.nodes[0].children,
            (std::vector<ObjectReference>{{1, "y"}, {2, "x"}}));
  EXPECT_EQ(plan.graph.nodes[2].children,
            (std::vector<ObjectReference>{{3, "v"}}));
}

TEST(SaverGraphTest, CyclesAndBackEdgesToTheRoot) {
  // root -> m -> (root, v); root -> e1 <-> e2 (a cycle with no values).
  const std::vector<GraphObjectSpec> objects = {
      Parent({{"m", 1}, {"e1", 3}}), Parent({{"root", 0}, {"v", 2}}),
      Variable(), Parent({{"e2", 4}}), Parent({{"e1", 3}, {"up", 0}})};
  const SaverGraphPlan plan = BuildOrDie(objects);
  CheckConsistent(objects, plan);
  EXPECT_EQ(plan.node_objects, (std::vector<int>{0, 1, 3, 2, 4}));
  EXPECT_EQ(plan.graph.nodes[1].children,
            (std::vector<ObjectReference>{{0, "root"}, {3, "v"}}));
  EXPECT_EQ(plan.keys[2],
            (std::vector<std::string>{"m/v/.ATTRIBUTES/VARIABLE_VALUE"}));
  // The back edge is written with node_id 0 left out: 0a 06 12 04 "root".
  EXPECT_NE(plan.serialized_graph.find(std::string("\x0a\x06\x12\x04root")),
            std::string::npos);
  // e1 and e2 reach the root, which has values; so everything does.
  for (const TrackableObject& node : plan.graph.nodes) {
    EXPECT_EQ(node.has_checkpoint_values, true);
  }
}

TEST(SaverGraphTest, HasCheckpointValues) {
  // root -> a -> b <-> c (no values), root -> d -> e (values), root -> f.
  const std::vector<GraphObjectSpec> objects = {
      Parent({{"a", 1}, {"d", 4}, {"f", 6}}),
      Parent({{"b", 2}}),
      Parent({{"c", 3}}),
      Parent({{"b", 2}}),
      Parent({{"e", 5}}),
      Variable(),
      GraphObjectSpec{}};
  const SaverGraphPlan plan = BuildOrDie(objects);
  CheckConsistent(objects, plan);
  // Nodes: 0 root, 1 a, 2 d, 3 f, 4 b, 5 e, 6 c.
  EXPECT_EQ(plan.node_objects, (std::vector<int>{0, 1, 4, 6, 2, 5, 3}));
  const std::vector<bool> expected = {true,  false, true, false,
                                      false, true,  false};
  for (size_t k = 0; k < expected.size(); ++k) {
    EXPECT_EQ(plan.graph.nodes[k].has_checkpoint_values, expected[k]) << k;
  }
  // false is written as an empty BoolValue: 2a 00.
  EXPECT_NE(plan.serialized_graph.find(std::string("\x2a\x00", 2)),
            std::string::npos);
}

TEST(SaverGraphTest, EscapesNamesAndDoubleEscapesKeySuffixes) {
  GraphObjectSpec tensors;
  tensors.tensor_names = {"a.b/c", "VARIABLE_VALUE"};
  tensors.full_names = {"", "x/y"};
  const std::vector<GraphObjectSpec> objects = {
      Parent({{"a/b.c", 1}}), Parent({{"x.y", 2}, {"p/q", 3}}), Variable(),
      tensors};
  const SaverGraphPlan plan = BuildOrDie(objects);
  CheckConsistent(objects, plan);
  EXPECT_EQ(plan.graph.nodes[0].children,
            (std::vector<ObjectReference>{{1, "a/b.c"}}));  // unescaped
  EXPECT_EQ(
      plan.keys[2],
      (std::vector<std::string>{"a.Sb..c/x..y/.ATTRIBUTES/VARIABLE_VALUE"}));
  EXPECT_EQ(plan.keys[3], (std::vector<std::string>{
                              "a.Sb..c/p.Sq/.ATTRIBUTES/a....b..Sc",
                              "a.Sb..c/p.Sq/.ATTRIBUTES/VARIABLE_VALUE"}));
  const auto& attributes = plan.graph.nodes[3].attributes;
  ASSERT_EQ(attributes.size(), 2u);
  EXPECT_EQ(attributes[0].name, "a..b.Sc");
  EXPECT_EQ(attributes[0].full_name, "");
  EXPECT_EQ(attributes[1].name, "VARIABLE_VALUE");
  EXPECT_EQ(attributes[1].full_name, "x/y");
  EXPECT_EQ(plan.tensor_order, (Order{{2, 0}, {3, 0}, {3, 1}}));
}

TEST(SaverGraphTest, RootAttributesAndEmptyGraph) {
  const SaverGraphPlan plan = BuildOrDie({Variable("r")});
  EXPECT_EQ(plan.keys[0],
            (std::vector<std::string>{"/.ATTRIBUTES/VARIABLE_VALUE"}));
  const SaverGraphPlan empty = BuildOrDie({GraphObjectSpec{}});
  EXPECT_EQ(empty.serialized_graph, std::string("\x0a\x02\x2a\x00", 4));
  EXPECT_TRUE(empty.tensor_order.empty());
}

TEST(SaverGraphTest, PythonStateTensorsGoLast) {
  GraphObjectSpec state;
  state.tensor_names = {"py_state"};
  state.full_names = {""};
  state.python_state = true;
  GraphObjectSpec pair;
  pair.tensor_names = {"b", "a"};
  pair.full_names = {"", ""};
  const std::vector<GraphObjectSpec> objects = {
      Parent({{"state", 1}, {"v", 2}, {"late", 4}, {"pair", 5}}),
      state,
      Variable(),
      state,
      Variable(),
      pair,
      Parent({{"s2", 3}})};
  std::vector<GraphObjectSpec> with_nested = objects;
  with_nested[2].children = {{"more", 6}};
  const SaverGraphPlan plan = BuildOrDie(with_nested);
  CheckConsistent(with_nested, plan);
  // Nodes: 0, 1 state, 2 v, 4 late, 5 pair, 6 more, 3 s2.
  EXPECT_EQ(plan.node_objects, (std::vector<int>{0, 1, 2, 4, 5, 6, 3}));
  EXPECT_EQ(plan.tensor_order,
            (Order{{2, 0}, {4, 0}, {5, 0}, {5, 1}, {1, 0}, {3, 0}}));
  EXPECT_EQ(plan.keys[1],
            (std::vector<std::string>{"state/.ATTRIBUTES/py_state"}));
  EXPECT_EQ(plan.keys[3],
            (std::vector<std::string>{"v/more/s2/.ATTRIBUTES/py_state"}));
}

TEST(SaverGraphTest, UnreachableObjectsAreNotSaved) {
  const std::vector<GraphObjectSpec> objects = {Parent({{"v", 2}}),
                                                Parent({{"w", 3}, {"root", 0}}),
                                                Variable(), Variable()};
  const SaverGraphPlan plan = BuildOrDie(objects);
  CheckConsistent(objects, plan);
  EXPECT_EQ(plan.node_objects, (std::vector<int>{0, 2}));
  EXPECT_TRUE(plan.keys[1].empty());
  EXPECT_TRUE(plan.keys[3].empty());
  EXPECT_EQ(plan.tensor_order, (Order{{2, 0}}));
}

// ---- slot variables
// ------------------------------------------------------------

TEST(SaverGraphTest, SlotVariablesFollowTheBreadthFirstNodes) {
  // root -> model -> (w, b); root -> opt (slots m, v); slots given shuffled.
  // Object 9 is an unreachable variable with a slot (object 10): skipped.
  GraphObjectSpec opt;
  opt.slot_names = {"m", "v"};
  opt.slots = {
      {"v", 4, 8}, {"m", 3, 5}, {"m", 9, 10}, {"m", 4, 6}, {"v", 3, 7}};
  const std::vector<GraphObjectSpec> objects = {
      Parent({{"model", 1}, {"opt", 2}}),
      Parent({{"w", 3}, {"b", 4}}),
      opt,
      Variable("w"),
      Variable("b"),
      Variable("w/m"),
      Variable("b/m"),
      Variable("w/v"),
      Variable("b/v"),
      Variable("x"),
      Variable("x/m")};
  const SaverGraphPlan plan = BuildOrDie(objects);
  CheckConsistent(objects, plan);
  EXPECT_EQ(plan.node_objects, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(plan.graph.nodes[2].slot_variables,
            (std::vector<SlotVariableReference>{
                {3, "m", 5}, {4, "m", 6}, {3, "v", 7}, {4, "v", 8}}));
  EXPECT_EQ(plan.keys[5],
            (std::vector<std::string>{
                "model/w/.OPTIMIZER_SLOT/opt/m/.ATTRIBUTES/VARIABLE_VALUE"}));
  EXPECT_EQ(plan.keys[8],
            (std::vector<std::string>{
                "model/b/.OPTIMIZER_SLOT/opt/v/.ATTRIBUTES/VARIABLE_VALUE"}));
  EXPECT_TRUE(plan.keys[9].empty());
  EXPECT_TRUE(plan.keys[10].empty());
  // The optimizer has values through its slots alone.
  EXPECT_EQ(plan.graph.nodes[2].has_checkpoint_values, true);
  EXPECT_EQ(plan.tensor_order,
            (Order{{3, 0}, {4, 0}, {5, 0}, {6, 0}, {7, 0}, {8, 0}}));
}

TEST(SaverGraphTest, SlotNamesAreEscaped) {
  GraphObjectSpec opt;
  opt.slot_names = {"a/b.c"};
  opt.slots = {{"a/b.c", 1, 3}};
  const std::vector<GraphObjectSpec> objects = {
      Parent({{"v.1", 1}, {"o/p", 2}}), Variable(), opt, Variable()};
  const SaverGraphPlan plan = BuildOrDie(objects);
  EXPECT_EQ(plan.keys[3], (std::vector<std::string>{
                              "v..1/.OPTIMIZER_SLOT/o.Sp/a.Sb..c/.ATTRIBUTES/"
                              "VARIABLE_VALUE"}));
  EXPECT_EQ(plan.graph.nodes[2].slot_variables,
            (std::vector<SlotVariableReference>{{1, "a/b.c", 3}}));
}

// ---- errors
// --------------------------------------------------------------------

void ExpectInvalid(const std::vector<GraphObjectSpec>& objects, int root,
                   const std::string& what) {
  auto plan = BuildSaverGraph(objects, root);
  ASSERT_FALSE(plan.ok()) << what;
  EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument)
      << what << ": " << plan.status().ToString();
}

TEST(SaverGraphTest, BadIndicesAreInvalidArgument) {
  ExpectInvalid({}, 0, "no objects");
  ExpectInvalid({Variable()}, 1, "root past the end");
  ExpectInvalid({Variable()}, -1, "negative root");
  ExpectInvalid({Parent({{"a", 1}})}, 0, "child past the end");
  ExpectInvalid({Parent({{"a", -1}})}, 0, "negative child");
  // Checked even on objects that are not reachable.
  ExpectInvalid({Variable(), Parent({{"a", 7}})}, 0, "unreachable bad child");
  GraphObjectSpec opt;
  opt.slot_names = {"m"};
  opt.slots = {{"m", 0, 5}};
  ExpectInvalid({opt, Variable()}, 0, "slot variable past the end");
  opt.slots = {{"m", -3, 1}};
  ExpectInvalid({opt, Variable()}, 0, "negative original variable");
}

TEST(SaverGraphTest, MalformedSpecsAreInvalidArgument) {
  GraphObjectSpec mismatch = Variable();
  mismatch.full_names.clear();
  ExpectInvalid({mismatch}, 0, "full_names shorter");
  mismatch.full_names = {"a", "b"};
  ExpectInvalid({mismatch}, 0, "full_names longer");
  ExpectInvalid({Parent({{"a", 1}, {"a", 1}}), Variable()}, 0,
                "duplicate child names");
  GraphObjectSpec twice;
  twice.tensor_names = {"t", "t"};
  twice.full_names = {"", ""};
  ExpectInvalid({twice}, 0, "duplicate tensor names");

  GraphObjectSpec opt;
  opt.slot_names = {"m"};
  opt.slots = {{"v", 1, 2}};
  std::vector<GraphObjectSpec> objects = {Parent({{"w", 1}, {"opt", 3}}),
                                          Variable(), Variable(), opt};
  ExpectInvalid(objects, 0, "slot name not among slot_names");
  objects[3].slot_names = {"m", "m"};
  objects[3].slots = {{"m", 1, 2}};
  ExpectInvalid(objects, 0, "slot name listed twice");
  objects[3].slot_names = {"m"};
  objects[3].slots = {{"m", 1, 2}, {"m", 1, 2}};
  ExpectInvalid(objects, 0, "slot given twice");
  objects[3].slots = {{"m", 1, 2}};
  EXPECT_TRUE(BuildSaverGraph(objects, 0).ok());
  objects[3].slots = {{"m", 1, 1}};
  ExpectInvalid(objects, 0, "slot variable reachable from the root");
  objects[3].slot_names = {"m", "v"};
  objects[3].slots = {{"m", 1, 2}, {"v", 1, 2}};
  ExpectInvalid(objects, 0, "slot variable serving two slots");
  objects[3].slots = {{"m", 1, 2}};
  objects[2].children = {{"x", 1}};
  ExpectInvalid(objects, 0, "slot variable with children");
}

}  // namespace
}  // namespace trackpoint
