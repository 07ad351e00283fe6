#include "graph/saver_graph.h"

#include <algorithm>
#include <limits>
#include <set>
#include <string_view>
#include <tuple>

#include "graph/naming.h"

namespace trackpoint {
namespace {

std::string ObjectName(size_t index) {
  return "object " + std::to_string(index);
}

bool InRange(int index, size_t n) {
  return index >= 0 && static_cast<size_t>(index) < n;
}

Status IndexError(const std::string& what, int index, size_t n) {
  return InvalidArgumentError(what + " is " + std::to_string(index) +
                              ", not an object index in [0, " +
                              std::to_string(n) + ")");
}

Status ValidateObject(const GraphObjectSpec& spec, size_t i, size_t n) {
  const std::string self = ObjectName(i);  // for error messages
  std::set<std::string_view> names;
  for (const auto& [name, child] : spec.children) {
    if (!InRange(child, n)) {
      return IndexError(self + "'s child '" + name + "'", child, n);
    }
    if (!names.insert(name).second) {
      return InvalidArgumentError(self + " has two children named '" + name +
                                  "'");
    }
  }
  if (spec.full_names.size() != spec.tensor_names.size()) {
    return InvalidArgumentError(
        self + " has " + std::to_string(spec.tensor_names.size()) +
        " tensor names but " + std::to_string(spec.full_names.size()) +
        " full names");
  }
  names.clear();
  for (const std::string& name : spec.tensor_names) {
    if (!names.insert(name).second) {
      return InvalidArgumentError(self + " saves two tensors named '" + name +
                                  "'");
    }
  }
  names.clear();
  for (const std::string& name : spec.slot_names) {
    if (!names.insert(name).second) {
      return InvalidArgumentError(self + " lists slot name '" + name +
                                  "' twice");
    }
  }
  std::set<std::pair<std::string_view, int>> slots;
  for (const auto& entry : spec.slots) {
    const std::string& slot_name = std::get<0>(entry);
    const int original = std::get<1>(entry);
    const int variable = std::get<2>(entry);
    auto slot = [&] { return self + "'s slot '" + slot_name + "'"; };
    if (names.count(slot_name) == 0) {
      return InvalidArgumentError(slot() + " is not one of its slot_names");
    }
    if (!InRange(original, n)) {
      return IndexError(slot() + " original variable", original, n);
    }
    if (!InRange(variable, n)) {
      return IndexError(slot() + " slot variable", variable, n);
    }
    if (!slots.insert({slot_name, original}).second) {
      return InvalidArgumentError(slot() + " is given twice for " +
                                  ObjectName(original));
    }
  }
  return OkStatus();
}

// Numbers the objects reachable from root breadth-first. Fills node_objects,
// node_of (object -> node id, -1 if not reached) and each reached object's
// path.
void NumberBreadthFirst(const std::vector<GraphObjectSpec>& objects, int root,
                        std::vector<int>* node_objects,
                        std::vector<int>* node_of,
                        std::vector<std::string>* paths) {
  (*node_of)[root] = 0;
  node_objects->push_back(root);
  // node_objects doubles as the queue: entries past k are still to visit.
  for (size_t k = 0; k < node_objects->size(); ++k) {
    const int parent = (*node_objects)[k];
    for (const auto& [name, child] : objects[parent].children) {
      if ((*node_of)[child] >= 0) continue;
      (*node_of)[child] = static_cast<int>(node_objects->size());
      (*paths)[child] = ChildPath((*paths)[parent], name);
      node_objects->push_back(child);
    }
  }
}

// Appends the slot variables of the first num_bfs nodes as new nodes and
// fills graph->nodes[k].slot_variables of each optimizer node k.
Status AppendSlotVariables(const std::vector<GraphObjectSpec>& objects,
                           size_t num_bfs, std::vector<int>* node_objects,
                           std::vector<int>* node_of,
                           std::vector<std::string>* paths,
                           TrackableObjectGraph* graph) {
  std::vector<std::pair<int, int>> found;  // (original node, slot variable)
  for (size_t k = 0; k < num_bfs; ++k) {
    const int optimizer = (*node_objects)[k];
    const GraphObjectSpec& spec = objects[optimizer];
    for (const std::string& slot_name : spec.slot_names) {
      found.clear();
      for (const auto& [name, original, variable] : spec.slots) {
        const int node = (*node_of)[original];
        // Only variables numbered breadth-first have slots saved.
        if (name != slot_name || node < 0 ||
            static_cast<size_t>(node) >= num_bfs) {
          continue;
        }
        found.emplace_back(node, variable);
      }
      std::sort(found.begin(), found.end());
      for (const auto& [original_node, variable] : found) {
        const std::string what = ObjectName(variable) + ", slot '" + slot_name +
                                 "' of " + ObjectName(optimizer);
        if ((*node_of)[variable] >= 0) {
          return InvalidArgumentError(
              what + (static_cast<size_t>((*node_of)[variable]) < num_bfs
                          ? ", is also reachable from the root"
                          : ", is the slot variable of another slot too"));
        }
        if (!objects[variable].children.empty()) {
          return InvalidArgumentError(what + ", has children");
        }
        const int node = static_cast<int>(node_objects->size());
        (*node_of)[variable] = node;
        (*paths)[variable] =
            SlotVariablePath((*paths)[(*node_objects)[original_node]],
                             (*paths)[optimizer], slot_name);
        node_objects->push_back(variable);
        graph->nodes[k].slot_variables.push_back(
            {original_node, slot_name, node});
      }
    }
  }
  return OkStatus();
}

// Sets has_checkpoint_values on every node: true for a node with attributes
// or slot variables and for every node from which one is reachable through
// children (cycles included).
void MarkCheckpointValues(TrackableObjectGraph* graph) {
  const size_t n = graph->nodes.size();
  std::vector<std::vector<int>> parents(n);
  std::vector<int> pending;
  std::vector<bool> has_values(n, false);
  for (size_t i = 0; i < n; ++i) {
    const TrackableObject& node = graph->nodes[i];
    for (const ObjectReference& child : node.children) {
      parents[child.node_id].push_back(static_cast<int>(i));
    }
    if (!node.attributes.empty() || !node.slot_variables.empty() ||
        node.registered_saver.has_value()) {
      has_values[i] = true;
      pending.push_back(static_cast<int>(i));
    }
  }
  while (!pending.empty()) {
    const int node = pending.back();
    pending.pop_back();
    for (int parent : parents[node]) {
      if (has_values[parent]) continue;
      has_values[parent] = true;
      pending.push_back(parent);
    }
  }
  for (size_t i = 0; i < n; ++i) {
    graph->nodes[i].has_checkpoint_values = has_values[i];
  }
}

}  // namespace

Result<SaverGraphPlan> BuildSaverGraph(
    const std::vector<GraphObjectSpec>& objects, int root) {
  const size_t n = objects.size();
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return InvalidArgumentError("too many objects: " + std::to_string(n));
  }
  if (!InRange(root, n)) return IndexError("the root", root, n);
  for (size_t i = 0; i < n; ++i) {
    TP_RETURN_IF_ERROR(ValidateObject(objects[i], i, n));
  }

  SaverGraphPlan plan;
  std::vector<int> node_of(n, -1);
  std::vector<std::string> paths(n);
  NumberBreadthFirst(objects, root, &plan.node_objects, &node_of, &paths);
  const size_t num_bfs = plan.node_objects.size();
  plan.graph.nodes.resize(num_bfs);
  TP_RETURN_IF_ERROR(AppendSlotVariables(objects, num_bfs, &plan.node_objects,
                                         &node_of, &paths, &plan.graph));
  plan.graph.nodes.resize(plan.node_objects.size());

  plan.keys.resize(n);
  std::vector<std::pair<int, int>> python_state_tensors;
  for (size_t k = 0; k < plan.node_objects.size(); ++k) {
    const int object = plan.node_objects[k];
    const GraphObjectSpec& spec = objects[object];
    TrackableObject& node = plan.graph.nodes[k];
    for (const auto& [name, child] : spec.children) {
      node.children.push_back({node_of[child], name});
    }
    std::vector<std::string>& keys = plan.keys[object];
    for (size_t t = 0; t < spec.tensor_names.size(); ++t) {
      std::string attribute = EscapeLocalName(spec.tensor_names[t]);
      keys.push_back(AttributeKey(paths[object], attribute));
      node.attributes.push_back(
          {std::move(attribute), spec.full_names[t], keys.back()});
      (spec.python_state ? python_state_tensors : plan.tensor_order)
          .emplace_back(object, static_cast<int>(t));
    }
  }
  plan.tensor_order.insert(plan.tensor_order.end(),
                           python_state_tensors.begin(),
                           python_state_tensors.end());
  MarkCheckpointValues(&plan.graph);
  plan.serialized_graph = SerializeObjectGraph(plan.graph);
  return plan;
}

}  // namespace trackpoint
