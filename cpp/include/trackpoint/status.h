// Status and Result<T>: errors as values across the whole C++ API.
//
// A Status is a null pointer when OK, so the common path costs one branch.
// Codes are named after abseil's canonical codes. The Python bindings map each
// code to one exception class (see cpp/python/bind_status.cc).
#ifndef TRACKPOINT_STATUS_H_
#define TRACKPOINT_STATUS_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace trackpoint {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 3,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
};

// Thread safety: a Status is a value; distinct objects may be used from
// different threads, one object must not be mutated concurrently.
class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string_view message);
  Status(const Status& other);
  Status& operator=(const Status& other);
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  bool ok() const { return state_ == nullptr; }
  StatusCode code() const { return ok() ? StatusCode::kOk : state_->code; }
  // The message without the code name; empty when OK.
  const std::string& message() const;
  // "DataLoss: <message>" (or "OK").
  std::string ToString() const;

  // Returns a copy whose message is "<prefix>: <message>" (OK stays OK).
  Status Annotate(std::string_view prefix) const;

 private:
  struct State {
    StatusCode code;
    std::string message;
  };
  std::unique_ptr<State> state_;
};

inline Status OkStatus() { return Status(); }
Status InvalidArgumentError(std::string_view message);
Status NotFoundError(std::string_view message);
Status AlreadyExistsError(std::string_view message);
Status PermissionDeniedError(std::string_view message);
Status ResourceExhaustedError(std::string_view message);
Status FailedPreconditionError(std::string_view message);
Status OutOfRangeError(std::string_view message);
Status UnimplementedError(std::string_view message);
Status InternalError(std::string_view message);
Status UnavailableError(std::string_view message);
Status DataLossError(std::string_view message);

// Turns an errno value from a failed system call into a Status whose code
// follows the errno (ENOENT -> NotFound, ENOSPC -> ResourceExhausted, ...).
Status ErrnoToStatus(int errno_value, std::string_view context);

const char* StatusCodeName(StatusCode code);

// Either a value or a non-OK Status.
template <typename T>
class Result {
 public:
  Result(const Status& status) : status_(status) {}  // NOLINT: implicit
  Result(Status&& status) : status_(std::move(status)) {}  // NOLINT
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  // REQUIRES: ok().
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace trackpoint

#define TP_CONCAT_IMPL_(a, b) a##b
#define TP_CONCAT_(a, b) TP_CONCAT_IMPL_(a, b)

#define TP_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::trackpoint::Status tp_status_ = (expr);     \
    if (!tp_status_.ok()) return tp_status_;      \
  } while (0)

#define TP_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

// TP_ASSIGN_OR_RETURN(auto x, Foo()); declares x from an OK Result or returns
// the error.
#define TP_ASSIGN_OR_RETURN(lhs, expr) \
  TP_ASSIGN_OR_RETURN_IMPL_(TP_CONCAT_(tp_result_, __LINE__), lhs, expr)

#endif  // TRACKPOINT_STATUS_H_
