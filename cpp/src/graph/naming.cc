#include "graph/naming.h"

#include <string>

namespace trackpoint {

std::string EscapeLocalName(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    if (c == '.') {
      out += "..";
    } else if (c == '/') {
      out += ".S";
    } else {
      out += c;
    }
  }
  return out;
}

Result<std::string> UnescapeLocalName(std::string_view escaped) {
  std::string out;
  out.reserve(escaped.size());
  for (size_t i = 0; i < escaped.size(); ++i) {
    const char c = escaped[i];
    if (c == '/') {
      return InvalidArgumentError("bad escaped local name '" +
                                  std::string(escaped) +
                                  "': unescaped '/' at " + std::to_string(i));
    }
    if (c != '.') {
      out += c;
      continue;
    }
    const char next = i + 1 < escaped.size() ? escaped[i + 1] : '\0';
    if (next == '.') {
      out += '.';
    } else if (next == 'S') {
      out += '/';
    } else {
      return InvalidArgumentError(
          "bad escaped local name '" + std::string(escaped) + "': '.' at " +
          std::to_string(i) + " must be followed by '.' or 'S'");
    }
    ++i;
  }
  return out;
}

std::string ChildPath(std::string_view parent_path,
                      std::string_view local_name) {
  std::string path(parent_path);
  if (!path.empty()) path += '/';
  path += EscapeLocalName(local_name);
  return path;
}

std::string AttributeKey(std::string_view object_path,
                         std::string_view attribute_name) {
  std::string key(object_path);
  key += '/';
  key += kObjectAttributesName;
  key += '/';
  key += EscapeLocalName(attribute_name);
  return key;
}

std::string SlotVariablePath(std::string_view original_path,
                             std::string_view optimizer_path,
                             std::string_view slot_name) {
  std::string path(original_path);
  path += '/';
  path += kOptimizerSlotName;
  path += '/';
  path += optimizer_path;
  path += '/';
  path += EscapeLocalName(slot_name);
  return path;
}

}  // namespace trackpoint
