// Fuzz target for the TrackableObjectGraph parser (the value stored under
// "_CHECKPOINTABLE_OBJECT_GRAPH"). Checked beyond "no crash": a graph that
// parses has every node id in range, and serializes to bytes that parse back
// to the same graph.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "trackpoint/object_graph.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace trackpoint;  // NOLINT: a fuzz target
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto graph = ParseObjectGraph(bytes);
  if (!graph.ok()) return 0;
  const size_t n = graph->nodes.size();
  for (const TrackableObject& node : graph->nodes) {
    for (const ObjectReference& child : node.children) {
      Check(child.node_id >= 0 && static_cast<size_t>(child.node_id) < n);
    }
    for (const SlotVariableReference& slot : node.slot_variables) {
      Check(slot.original_variable_node_id >= 0 &&
            static_cast<size_t>(slot.original_variable_node_id) < n);
      Check(slot.slot_variable_node_id >= 0 &&
            static_cast<size_t>(slot.slot_variable_node_id) < n);
    }
  }
  auto again = ParseObjectGraph(SerializeObjectGraph(*graph));
  Check(again.ok() && *again == *graph);
  return 0;
}
