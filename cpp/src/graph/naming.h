// Checkpoint key naming for TF2 object-based checkpoints.
//
// An object's path is the escaped local names of the edges from the root to
// it, joined by '/' (the root's path is ""). An attribute (a saved tensor) of
// an object lives under the key
//
//   <object path> "/.ATTRIBUTES/" <escaped attribute name>
//
// and a slot variable (optimizer state for one variable) has the path
//
//   <variable path> "/.OPTIMIZER_SLOT/" <optimizer path> "/" <escaped slot>
//
// Escaping makes paths unambiguous: '.' becomes ".." and then '/' becomes
// ".S", so an escaped name never contains '/' and every '.' starts a
// two-character escape. Names such as ".ATTRIBUTES" can then never collide
// with an escaped local name (which would read "..ATTRIBUTES").
#ifndef TRACKPOINT_GRAPH_NAMING_H_
#define TRACKPOINT_GRAPH_NAMING_H_

#include <string>
#include <string_view>

#include "trackpoint/object_graph.h"
#include "trackpoint/status.h"

namespace trackpoint {

// Attribute name of a variable's value.
inline constexpr std::string_view kVariableValueKey = "VARIABLE_VALUE";
// Attribute name of a Python-state object's value (a scalar string).
inline constexpr std::string_view kPythonStateKey = "py_state";
// Path component separating an object path from its attribute names.
inline constexpr std::string_view kObjectAttributesName = ".ATTRIBUTES";
// Path component separating a variable's path from its optimizer slots.
inline constexpr std::string_view kOptimizerSlotName = ".OPTIMIZER_SLOT";

// '.' -> "..", then '/' -> ".S". "a/b.c" -> "a.Sb..c".
std::string EscapeLocalName(std::string_view name);

// The inverse of EscapeLocalName. A '.' that is not followed by '.' or 'S',
// and a '/' (which escaping never produces), are InvalidArgument.
Result<std::string> UnescapeLocalName(std::string_view escaped);

// The path of the child named local_name (unescaped) of the object at
// parent_path: the escaped name alone under the root, else joined by '/'.
std::string ChildPath(std::string_view parent_path,
                      std::string_view local_name);

// <object_path>/.ATTRIBUTES/<escape(attribute_name)>. attribute_name is the
// SerializedTensor.name as stored in the object graph (itself already the
// escaped tensor name, so the key suffix is escaped twice; FORMAT.md §7.3).
std::string AttributeKey(std::string_view object_path,
                         std::string_view attribute_name);

// <original_path>/.OPTIMIZER_SLOT/<optimizer_path>/<escape(slot_name)>.
std::string SlotVariablePath(std::string_view original_path,
                             std::string_view optimizer_path,
                             std::string_view slot_name);

}  // namespace trackpoint

#endif  // TRACKPOINT_GRAPH_NAMING_H_
