// Wire encoding of TrackableObjectGraph (tensorflow/core/protobuf/
// trackable_object_graph.proto, proto3), as TensorFlow writes it. Tags in
// hex; "omitted if 0/empty" means proto3 leaves the default out.
//
// TrackableObjectGraph                 e.g. 0a 12 <node 0> 0a 3e <node 1> ...
//   0a nodes          TrackableObject  one per node; node id = position
// TrackableObject
//   0a children       ObjectReference        repeated, dependency order
//   12 attributes     SerializedTensor       repeated
//   1a slot_variables SlotVariableReference  repeated
//   22 registered_saver RegisteredSaver      written when present
//   2a has_checkpoint_values BoolValue       written when present:
//                                            true 2a 02 08 01, false 2a 00
// ObjectReference                  e.g. 0a 05 08 01 12 01 's'
//   08 node_id        int32 varint   omitted if 0 (a back edge to the root)
//   12 local_name     string         unescaped; omitted if empty
// SerializedTensor
//   0a name           string         omitted if empty
//   12 full_name      string         omitted if empty
//   1a checkpoint_key string         omitted if empty
//   (20 optional_restore bool: older TF; skipped as an unknown field)
// SlotVariableReference
//   08 original_variable_node_id int32 varint   omitted if 0
//   12 slot_name                 string         omitted if empty
//   18 slot_variable_node_id     int32 varint   omitted if 0
// RegisteredSaver
//   0a name           string         omitted if empty
//   12 object_name    string         omitted if empty
// google.protobuf.BoolValue
//   08 value          bool           omitted if false
#include "trackpoint/object_graph.h"

#include <string>
#include <utility>

#include "proto/wire.h"

namespace trackpoint {
namespace {

constexpr char kGraphName[] = "TrackableObjectGraph";
constexpr char kObjectName[] = "TrackableObject";
constexpr char kReferenceName[] = "ObjectReference";
constexpr char kTensorName[] = "SerializedTensor";
constexpr char kSlotName[] = "SlotVariableReference";
constexpr char kSaverName[] = "RegisteredSaver";
constexpr char kBoolValueName[] = "BoolValue";

// ---- serialization ----------------------------------------------------------

void WriteString(ProtoWriter* w, uint32_t field, const std::string& value) {
  if (!value.empty()) w->WriteBytes(field, value);
}

void WriteNodeId(ProtoWriter* w, uint32_t field, int32_t value) {
  if (value != 0) w->WriteInt32(field, value);
}

void AppendObject(const TrackableObject& object, std::string* out) {
  ProtoWriter w(out);
  std::string sub;
  for (const ObjectReference& child : object.children) {
    sub.clear();
    ProtoWriter c(&sub);
    WriteNodeId(&c, 1, child.node_id);
    WriteString(&c, 2, child.local_name);
    w.WriteMessage(1, sub);
  }
  for (const SerializedTensor& attr : object.attributes) {
    sub.clear();
    ProtoWriter a(&sub);
    WriteString(&a, 1, attr.name);
    WriteString(&a, 2, attr.full_name);
    WriteString(&a, 3, attr.checkpoint_key);
    w.WriteMessage(2, sub);
  }
  for (const SlotVariableReference& slot : object.slot_variables) {
    sub.clear();
    ProtoWriter s(&sub);
    WriteNodeId(&s, 1, slot.original_variable_node_id);
    WriteString(&s, 2, slot.slot_name);
    WriteNodeId(&s, 3, slot.slot_variable_node_id);
    w.WriteMessage(3, sub);
  }
  if (object.registered_saver.has_value()) {
    sub.clear();
    ProtoWriter r(&sub);
    WriteString(&r, 1, object.registered_saver->name);
    WriteString(&r, 2, object.registered_saver->object_name);
    w.WriteMessage(4, sub);
  }
  if (object.has_checkpoint_values.has_value()) {
    sub.clear();
    ProtoWriter b(&sub);
    if (*object.has_checkpoint_values) b.WriteBool(1, true);
    w.WriteMessage(5, sub);
  }
}

// ---- parsing (protobuf merge semantics: repeated fields accumulate, scalars
// keep the last value, a message field seen twice is merged) -----------------

// Whether bytes is well-formed UTF-8 (no overlong forms, surrogates or code
// points past U+10FFFF), as protobuf requires of a proto3 string.
bool IsValidUtf8(std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t length;
    unsigned char low = 0x80, high = 0xbf;  // range of the second byte
    if (c >= 0xc2 && c <= 0xdf) {
      length = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      length = 3;
      if (c == 0xe0) low = 0xa0;   // overlong
      if (c == 0xed) high = 0x9f;  // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      length = 4;
      if (c == 0xf0) low = 0x90;   // overlong
      if (c == 0xf4) high = 0x8f;  // past U+10FFFF
    } else {
      return false;
    }
    if (bytes.size() - i < length) return false;
    for (size_t k = 1; k < length; ++k) {
      const unsigned char b = static_cast<unsigned char>(bytes[i + k]);
      if (b < (k == 1 ? low : 0x80) || b > (k == 1 ? high : 0xbf)) {
        return false;
      }
    }
    i += length;
  }
  return true;
}

// Reads the current field, a proto3 string (so valid UTF-8), into *out.
Status ReadString(ProtoReader* r, const char* message, const char* field,
                  std::string* out) {
  std::string_view bytes;
  if (!r->ReadBytes(&bytes)) return FieldError(message, field, *r);
  if (!IsValidUtf8(bytes)) {
    return DataLossError(std::string("malformed ") + message + "." + field +
                         ": not valid UTF-8");
  }
  out->assign(bytes.data(), bytes.size());
  return OkStatus();
}

Status MergeReference(std::string_view data, ObjectReference* ref) {
  ProtoReader r(data);
  while (r.Next()) {
    switch (r.field()) {
      case 1:
        if (!r.ReadInt32(&ref->node_id)) {
          return FieldError(kReferenceName, "node_id", r);
        }
        break;
      case 2:
        TP_RETURN_IF_ERROR(
            ReadString(&r, kReferenceName, "local_name", &ref->local_name));
        break;
      default:
        break;
    }
  }
  return EndStatus(kReferenceName, r);
}

Status MergeTensor(std::string_view data, SerializedTensor* tensor) {
  ProtoReader r(data);
  while (r.Next()) {
    switch (r.field()) {
      case 1:
        TP_RETURN_IF_ERROR(ReadString(&r, kTensorName, "name", &tensor->name));
        break;
      case 2:
        TP_RETURN_IF_ERROR(
            ReadString(&r, kTensorName, "full_name", &tensor->full_name));
        break;
      case 3:
        TP_RETURN_IF_ERROR(ReadString(&r, kTensorName, "checkpoint_key",
                                      &tensor->checkpoint_key));
        break;
      default:  // includes 4, the retired optional_restore
        break;
    }
  }
  return EndStatus(kTensorName, r);
}

Status MergeSlot(std::string_view data, SlotVariableReference* slot) {
  ProtoReader r(data);
  while (r.Next()) {
    switch (r.field()) {
      case 1:
        if (!r.ReadInt32(&slot->original_variable_node_id)) {
          return FieldError(kSlotName, "original_variable_node_id", r);
        }
        break;
      case 2:
        TP_RETURN_IF_ERROR(
            ReadString(&r, kSlotName, "slot_name", &slot->slot_name));
        break;
      case 3:
        if (!r.ReadInt32(&slot->slot_variable_node_id)) {
          return FieldError(kSlotName, "slot_variable_node_id", r);
        }
        break;
      default:
        break;
    }
  }
  return EndStatus(kSlotName, r);
}

Status MergeSaver(std::string_view data, RegisteredSaver* saver) {
  ProtoReader r(data);
  while (r.Next()) {
    switch (r.field()) {
      case 1:
        TP_RETURN_IF_ERROR(ReadString(&r, kSaverName, "name", &saver->name));
        break;
      case 2:
        TP_RETURN_IF_ERROR(
            ReadString(&r, kSaverName, "object_name", &saver->object_name));
        break;
      default:
        break;
    }
  }
  return EndStatus(kSaverName, r);
}

Status MergeBoolValue(std::string_view data, bool* value) {
  ProtoReader r(data);
  while (r.Next()) {
    if (r.field() == 1 && !r.ReadBool(value)) {
      return FieldError(kBoolValueName, "value", r);
    }
  }
  return EndStatus(kBoolValueName, r);
}

Status MergeObject(std::string_view data, TrackableObject* object) {
  ProtoReader r(data);
  std::string_view bytes;
  while (r.Next()) {
    switch (r.field()) {
      case 1: {
        if (!r.ReadBytes(&bytes)) return FieldError(kObjectName, "children", r);
        ObjectReference ref;
        TP_RETURN_IF_ERROR(MergeReference(bytes, &ref)
                               .Annotate(Where(kObjectName, "children")));
        object->children.push_back(std::move(ref));
        break;
      }
      case 2: {
        if (!r.ReadBytes(&bytes)) {
          return FieldError(kObjectName, "attributes", r);
        }
        SerializedTensor tensor;
        TP_RETURN_IF_ERROR(MergeTensor(bytes, &tensor)
                               .Annotate(Where(kObjectName, "attributes")));
        object->attributes.push_back(std::move(tensor));
        break;
      }
      case 3: {
        if (!r.ReadBytes(&bytes)) {
          return FieldError(kObjectName, "slot_variables", r);
        }
        SlotVariableReference slot;
        TP_RETURN_IF_ERROR(MergeSlot(bytes, &slot)
                               .Annotate(Where(kObjectName, "slot_variables")));
        object->slot_variables.push_back(std::move(slot));
        break;
      }
      case 4: {
        if (!r.ReadBytes(&bytes)) {
          return FieldError(kObjectName, "registered_saver", r);
        }
        if (!object->registered_saver.has_value()) {
          object->registered_saver.emplace();
        }
        TP_RETURN_IF_ERROR(
            MergeSaver(bytes, &*object->registered_saver)
                .Annotate(Where(kObjectName, "registered_saver")));
        break;
      }
      case 5: {
        if (!r.ReadBytes(&bytes)) {
          return FieldError(kObjectName, "has_checkpoint_values", r);
        }
        bool value = object->has_checkpoint_values.value_or(false);
        TP_RETURN_IF_ERROR(
            MergeBoolValue(bytes, &value)
                .Annotate(Where(kObjectName, "has_checkpoint_values")));
        object->has_checkpoint_values = value;
        break;
      }
      default:
        break;
    }
  }
  return EndStatus(kObjectName, r);
}

Status CheckNodeId(int32_t id, size_t num_nodes, size_t node,
                   const char* field) {
  if (id >= 0 && static_cast<size_t>(id) < num_nodes) return OkStatus();
  return DataLossError(std::string(kGraphName) + ": node " +
                       std::to_string(node) + " has " + field + " " +
                       std::to_string(id) + ", but the graph has " +
                       std::to_string(num_nodes) + " nodes");
}

Status ValidateNodeIds(const TrackableObjectGraph& graph) {
  const size_t n = graph.nodes.size();
  for (size_t i = 0; i < n; ++i) {
    const TrackableObject& object = graph.nodes[i];
    for (const ObjectReference& child : object.children) {
      TP_RETURN_IF_ERROR(CheckNodeId(child.node_id, n, i, "a child node_id"));
    }
    for (const SlotVariableReference& slot : object.slot_variables) {
      TP_RETURN_IF_ERROR(CheckNodeId(slot.original_variable_node_id, n, i,
                                     "a slot original_variable_node_id"));
      TP_RETURN_IF_ERROR(CheckNodeId(slot.slot_variable_node_id, n, i,
                                     "a slot_variable_node_id"));
    }
  }
  return OkStatus();
}

}  // namespace

std::string SerializeObjectGraph(const TrackableObjectGraph& graph) {
  std::string out;
  ProtoWriter w(&out);
  std::string node;
  for (const TrackableObject& object : graph.nodes) {
    node.clear();
    AppendObject(object, &node);
    w.WriteMessage(1, node);
  }
  return out;
}

Result<TrackableObjectGraph> ParseObjectGraph(std::string_view data) {
  TrackableObjectGraph graph;
  ProtoReader r(data);
  while (r.Next()) {
    if (r.field() != 1) continue;
    std::string_view bytes;
    if (!r.ReadBytes(&bytes)) return FieldError(kGraphName, "nodes", r);
    TrackableObject object;
    TP_RETURN_IF_ERROR(MergeObject(bytes, &object)
                           .Annotate(Where(kGraphName, "nodes") + "[" +
                                     std::to_string(graph.nodes.size()) + "]"));
    graph.nodes.push_back(std::move(object));
  }
  TP_RETURN_IF_ERROR(EndStatus(kGraphName, r));
  TP_RETURN_IF_ERROR(ValidateNodeIds(graph));
  return graph;
}

}  // namespace trackpoint
