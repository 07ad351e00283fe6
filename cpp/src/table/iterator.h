// Iterator: a cursor over sorted key/value pairs (a block or a whole table).
//
// Keys are ordered bytewise (memcmp order, a prefix before its extensions).
// A positioned iterator is Valid(); once it runs off the end, or once it has
// met corrupt data, it is not. Corruption is reported through status(), which
// is sticky: after an error the iterator stays invalid until it is destroyed.
#ifndef TRACKPOINT_TABLE_ITERATOR_H_
#define TRACKPOINT_TABLE_ITERATOR_H_

#include <string_view>

#include "trackpoint/status.h"

namespace trackpoint {
namespace table {

// Thread safety: an iterator is not thread-safe; use one per thread.
class Iterator {
 public:
  Iterator() = default;
  Iterator(const Iterator&) = delete;
  Iterator& operator=(const Iterator&) = delete;
  virtual ~Iterator() = default;

  // True when positioned at an entry.
  virtual bool Valid() const = 0;

  // Positions at the first entry (invalid if there is none).
  virtual void SeekToFirst() = 0;

  // Positions at the first entry whose key is >= target (invalid if none).
  virtual void Seek(std::string_view target) = 0;

  // REQUIRES: Valid().
  virtual void Next() = 0;

  // REQUIRES: Valid(). The views stay valid until the iterator moves or is
  // destroyed.
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;

  // OK unless corrupt data was met; a non-OK status means iteration stopped
  // early and the entries seen so far are not the whole contents.
  virtual Status status() const = 0;
};

}  // namespace table
}  // namespace trackpoint

#endif  // TRACKPOINT_TABLE_ITERATOR_H_
