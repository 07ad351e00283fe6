// The object graph: the save planner (build_saver_graph) and the
// TrackableObjectGraph codec (parse_object_graph, serialize_object_graph).
// Objects and nodes cross as plain dicts; the Python side
// (trackpoint/trackable) owns the Trackable objects behind them.
#include <nanobind/nanobind.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "bindings.h"
#include "graph/saver_graph.h"
#include "trackpoint/object_graph.h"

namespace nb = nanobind;

namespace trackpoint::python {
namespace {

// h as a dict whose keys are all in `known`: a misspelt key is a ValueError
// rather than silently dropping what it held. `what` names h in errors.
nb::dict CheckedDict(nb::handle h, const std::string& what,
                     std::initializer_list<const char*> known) {
  if (!nb::isinstance<nb::dict>(h)) {
    throw nb::type_error((what + ": expected a dict").c_str());
  }
  nb::dict d = nb::borrow<nb::dict>(h);
  for (auto [key, value] : d) {
    std::string name;
    bool ok = false;
    if (nb::try_cast(key, name)) {
      for (const char* k : known) ok = ok || name == k;
    }
    if (!ok) {
      throw nb::value_error(
          (what + ": unknown key " + nb::cast<std::string>(nb::repr(key)))
              .c_str());
    }
  }
  return d;
}

// d[key] cast to T (T{} if absent); a TypeError naming `expected` otherwise.
template <typename T>
T Get(const nb::dict& d, const char* key, const std::string& what,
      const char* expected) {
  T value{};
  if (d.contains(key) && !nb::try_cast(d[key], value)) {
    throw nb::type_error(
        (what + "['" + key + "']: expected " + expected).c_str());
  }
  return value;
}

GraphObjectSpec ToSpec(nb::handle h, size_t i) {
  const std::string what = "objects[" + std::to_string(i) + "]";
  nb::dict d = CheckedDict(h, what,
                           {"children", "tensor_names", "full_names",
                            "python_state", "slot_names", "slots"});
  GraphObjectSpec spec;
  spec.children = Get<decltype(spec.children)>(d, "children", what,
                                               "list[tuple[str, int]]");
  spec.tensor_names =
      Get<decltype(spec.tensor_names)>(d, "tensor_names", what, "list[str]");
  spec.full_names =
      Get<decltype(spec.full_names)>(d, "full_names", what, "list[str]");
  spec.python_state = Get<bool>(d, "python_state", what, "bool");
  spec.slot_names =
      Get<decltype(spec.slot_names)>(d, "slot_names", what, "list[str]");
  spec.slots =
      Get<decltype(spec.slots)>(d, "slots", what, "list[tuple[str, int, int]]");
  return spec;
}

TrackableObject ToNode(nb::handle h, size_t i) {
  const std::string what = "nodes[" + std::to_string(i) + "]";
  nb::dict d = CheckedDict(h, what,
                           {"children", "attributes", "slot_variables",
                            "registered_saver", "has_checkpoint_values"});
  TrackableObject node;
  using Child = std::pair<int32_t, std::string>;
  for (const auto& [id, name] :
       Get<std::vector<Child>>(d, "children", what, "list[tuple[int, str]]")) {
    node.children.push_back({id, name});
  }
  using Attribute = std::tuple<std::string, std::string, std::string>;
  for (const auto& [name, full_name, key] : Get<std::vector<Attribute>>(
           d, "attributes", what, "list[tuple[str, str, str]]")) {
    node.attributes.push_back({name, full_name, key});
  }
  using Slot = std::tuple<int32_t, std::string, int32_t>;
  for (const auto& [original, name, variable] : Get<std::vector<Slot>>(
           d, "slot_variables", what, "list[tuple[int, str, int]]")) {
    node.slot_variables.push_back({original, name, variable});
  }
  if (d.contains("registered_saver") && !d["registered_saver"].is_none()) {
    auto [name, object_name] = Get<std::pair<std::string, std::string>>(
        d, "registered_saver", what, "tuple[str, str] or None");
    node.registered_saver = RegisteredSaver{name, object_name};
  }
  if (d.contains("has_checkpoint_values") &&
      !d["has_checkpoint_values"].is_none()) {
    node.has_checkpoint_values =
        Get<bool>(d, "has_checkpoint_values", what, "bool or None");
  }
  return node;
}

nb::dict FromNode(const TrackableObject& node) {
  nb::list children, attributes, slots;
  for (const ObjectReference& c : node.children) {
    children.append(nb::make_tuple(c.node_id, c.local_name));
  }
  for (const SerializedTensor& a : node.attributes) {
    attributes.append(nb::make_tuple(a.name, a.full_name, a.checkpoint_key));
  }
  for (const SlotVariableReference& s : node.slot_variables) {
    slots.append(nb::make_tuple(s.original_variable_node_id, s.slot_name,
                                s.slot_variable_node_id));
  }
  nb::dict d;
  d["children"] = children;
  d["attributes"] = attributes;
  d["slot_variables"] = slots;
  d["registered_saver"] =
      node.registered_saver
          ? nb::object(nb::make_tuple(node.registered_saver->name,
                                      node.registered_saver->object_name))
          : nb::none();
  d["has_checkpoint_values"] =
      node.has_checkpoint_values
          ? nb::object(nb::bool_(*node.has_checkpoint_values))
          : nb::none();
  return d;
}

nb::bytes Bytes(const std::string& s) { return nb::bytes(s.data(), s.size()); }

}  // namespace

void BindGraph(nb::module_& m) {
  m.attr("OBJECT_GRAPH_KEY") = std::string(kObjectGraphKey);
  m.def(
      "build_saver_graph",
      [](const nb::list& objects, int root) {
        std::vector<GraphObjectSpec> specs;
        specs.reserve(objects.size());
        for (nb::handle h : objects) specs.push_back(ToSpec(h, specs.size()));
        SaverGraphPlan plan;
        {
          nb::gil_scoped_release release;
          plan = ValueOrThrow(BuildSaverGraph(specs, root));
        }
        nb::dict out;
        out["serialized_graph"] = Bytes(plan.serialized_graph);
        out["node_objects"] = nb::cast(plan.node_objects);
        out["keys"] = nb::cast(plan.keys);
        out["tensor_order"] = nb::cast(plan.tensor_order);
        return out;
      },
      nb::arg("objects"), nb::arg("root"),
      "Plans a save: object graph bytes, node -> object index, checkpoint "
      "keys per object, and the data-file order of (object, tensor).");

  m.def(
      "parse_object_graph",
      [](const nb::bytes& data) {
        Result<TrackableObjectGraph> graph = Status();
        {
          std::string_view bytes(data.c_str(), data.size());
          nb::gil_scoped_release release;
          graph = ParseObjectGraph(bytes);
        }
        nb::list nodes;
        for (const TrackableObject& node :
             ValueOrThrow(std::move(graph)).nodes) {
          nodes.append(FromNode(node));
        }
        return nodes;
      },
      nb::arg("data"), "Parses a serialized TrackableObjectGraph.");

  m.def(
      "serialize_object_graph",
      [](const nb::list& nodes) {
        TrackableObjectGraph graph;
        graph.nodes.reserve(nodes.size());
        for (nb::handle h : nodes) {
          graph.nodes.push_back(ToNode(h, graph.nodes.size()));
        }
        return Bytes(SerializeObjectGraph(graph));
      },
      nb::arg("nodes"),
      "Serializes nodes (dicts shaped as parse_object_graph returns them).");
}

}  // namespace trackpoint::python
