// The TF2 object graph (TensorFlow's TrackableObjectGraph message), stored in
// a checkpoint under the key "_CHECKPOINTABLE_OBJECT_GRAPH".
//
// A checkpoint's objects form a graph: node 0 is the root, each node lists
// its children by local name, the tensors it saved (with the bundle key of
// each), and, for an optimizer, its slot variables. Restoring matches live
// objects to nodes by walking children edges from the root and reads each
// value from the stored checkpoint_key (never a recomputed one).
//
// These are plain values. Thread safety: distinct objects may be used from
// different threads; one object must not be mutated concurrently.
#ifndef TRACKPOINT_OBJECT_GRAPH_H_
#define TRACKPOINT_OBJECT_GRAPH_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trackpoint/status.h"

namespace trackpoint {

// Bundle key of the serialized TrackableObjectGraph (a scalar string tensor),
// as TensorFlow names it. The one definition: C++ and Python read it here.
inline constexpr std::string_view kObjectGraphKey = "_CHECKPOINTABLE_OBJECT_GRAPH";

// An edge from a node to a child.
struct ObjectReference {
  int32_t node_id = 0;     // index into TrackableObjectGraph::nodes
  std::string local_name;  // the edge name, unescaped (e.g. "a/b.c")

  bool operator==(const ObjectReference& o) const {
    return node_id == o.node_id && local_name == o.local_name;
  }
};

// One tensor an object saved.
struct SerializedTensor {
  std::string name;            // attribute name, e.g. "VARIABLE_VALUE"
  std::string full_name;       // TF1 global name of a variable, or ""
  std::string checkpoint_key;  // the bundle key holding the value

  bool operator==(const SerializedTensor& o) const {
    return name == o.name && full_name == o.full_name &&
           checkpoint_key == o.checkpoint_key;
  }
};

// An optimizer's slot (e.g. Adam's "m") for one variable.
struct SlotVariableReference {
  int32_t original_variable_node_id = 0;
  std::string slot_name;
  int32_t slot_variable_node_id = 0;

  bool operator==(const SlotVariableReference& o) const {
    return original_variable_node_id == o.original_variable_node_id &&
           slot_name == o.slot_name &&
           slot_variable_node_id == o.slot_variable_node_id;
  }
};

// An object saved by a registered saver into its own bundle(s).
struct RegisteredSaver {
  std::string name;         // the registered saver's name
  std::string object_name;  // the object's path

  bool operator==(const RegisteredSaver& o) const {
    return name == o.name && object_name == o.object_name;
  }
};

struct TrackableObject {
  std::vector<ObjectReference> children;
  std::vector<SerializedTensor> attributes;
  std::vector<SlotVariableReference> slot_variables;
  std::optional<RegisteredSaver> registered_saver;
  // Whether this node or any node below it holds a value. TensorFlow sets it
  // on every node; checkpoints from older versions leave it out.
  std::optional<bool> has_checkpoint_values;

  bool operator==(const TrackableObject& o) const {
    return children == o.children && attributes == o.attributes &&
           slot_variables == o.slot_variables &&
           registered_saver == o.registered_saver &&
           has_checkpoint_values == o.has_checkpoint_values;
  }
};

struct TrackableObjectGraph {
  std::vector<TrackableObject> nodes;  // node id = index; node 0 is the root

  bool operator==(const TrackableObjectGraph& o) const {
    return nodes == o.nodes;
  }
};

// TensorFlow's bytes for graph: fields in number order, proto3 defaults
// (node id 0, empty strings) left out, has_checkpoint_values written as a
// BoolValue message when set. Node ids are written as they are, unchecked.
std::string SerializeObjectGraph(const TrackableObjectGraph& graph);

// Parses a serialized TrackableObjectGraph. Unknown fields are skipped.
// Malformed input, and any node id that is not the index of a node, are
// DataLoss.
Result<TrackableObjectGraph> ParseObjectGraph(std::string_view data);

}  // namespace trackpoint

#endif  // TRACKPOINT_OBJECT_GRAPH_H_
