// The save-side planner: from the objects the Python layer describes, builds
// the TrackableObjectGraph TensorFlow would write for them, the checkpoint key
// of every tensor, and the order in which tensors go to the data file.
//
// What TensorFlow does, and so what this does (FORMAT.md §7.3-7.4):
//   - Nodes are numbered breadth-first from the root, visiting each object's
//     children in its dependency order; an object reachable several ways is
//     one node, under the first (shortest, then earliest) path. Every edge is
//     still recorded in its parent's children, back edges included.
//   - An object's path is its escaped edge names joined by '/'. Tensor t of
//     an object is attribute escape(t), stored under
//     AttributeKey(path, escape(t)) (so escaped twice; FORMAT.md §7.3).
//   - Slot variables come after every breadth-first node: for each optimizer
//     node in node order, for each of its slot names in order, for each node
//     in node order that has that slot, the slot variable becomes the next
//     node, with path SlotVariablePath(variable, optimizer, slot name).
//   - has_checkpoint_values is set on every node: true iff the node, or a
//     node reachable from it through children, saves a tensor or has slots.
//   - Objects not reachable from the root are not saved.
//
// BuildSaverGraph is a pure function, safe to call from several threads.
#ifndef TRACKPOINT_GRAPH_SAVER_GRAPH_H_
#define TRACKPOINT_GRAPH_SAVER_GRAPH_H_

#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "trackpoint/object_graph.h"
#include "trackpoint/status.h"

namespace trackpoint {

// One object to save, as the Python layer describes it. Objects refer to
// each other by their index in the list given to BuildSaverGraph.
struct GraphObjectSpec {
  // (local name, object index), in dependency order. Names are unescaped
  // and unique within one object.
  std::vector<std::pair<std::string, int>> children;
  // Names of the tensors this object saves, e.g. "VARIABLE_VALUE".
  std::vector<std::string> tensor_names;
  // Parallel to tensor_names: the TF1 global name, or "".
  std::vector<std::string> full_names;
  // A Python-state object: its tensors go after every other object's.
  bool python_state = false;
  // For an optimizer: its slot names, in order.
  std::vector<std::string> slot_names;
  // For an optimizer: (slot name, original variable index, slot variable
  // index). A slot variable has no children and is reachable only through
  // its optimizer; a slot of a variable that is not saved is skipped.
  std::vector<std::tuple<std::string, int, int>> slots;
};

struct SaverGraphPlan {
  TrackableObjectGraph graph;     // the object graph to store
  std::string serialized_graph;   // SerializeObjectGraph(graph)
  std::vector<int> node_objects;  // node id -> object index
  // object index -> checkpoint key of each of its tensors (parallel to
  // tensor_names); empty for an object that is not saved.
  std::vector<std::vector<std::string>> keys;
  // (object index, tensor index) in data-file order: node order, with the
  // tensors of Python-state objects after all others.
  std::vector<std::pair<int, int>> tensor_order;
};

// Plans the save of objects from objects[root]. InvalidArgument for an index
// out of range, full_names not parallel to tensor_names, a child name or
// tensor name used twice on one object, a slot whose name is not among the
// optimizer's slot_names or given twice, and a slot variable that has
// children, is reachable from the root, or serves two slots (TensorFlow
// refuses those too).
Result<SaverGraphPlan> BuildSaverGraph(
    const std::vector<GraphObjectSpec>& objects, int root);

}  // namespace trackpoint

#endif  // TRACKPOINT_GRAPH_SAVER_GRAPH_H_
