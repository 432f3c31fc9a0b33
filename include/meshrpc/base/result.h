// Result<T>: a value of type T, or the non-OK Status that explains why there is none.
//
// Like absl::StatusOr. Constructing a Result from an OK Status is a programmer error (there
// would be neither value nor error) and is turned into an INTERNAL status, so a bug never
// looks like success. value() on an error is a programmer error too and asserts.
#pragma once

#include <cassert>
#include <optional>
#include <type_traits>
#include <utility>

#include "meshrpc/base/status.h"

namespace meshrpc {

template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::decay_t<T>, Status>, "Result<Status> is meaningless");

 public:
  using value_type = T;

  // Implicit on purpose: `return value;` and `return status;` both read naturally.
  Result(const T& value) : value_(value) {}  // NOLINT(google-explicit-constructor)
  Result(T&& value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (status_.ok()) status_ = Status(StatusCode::kInternal, "Result built from an OK status");
  }
  template <typename U>
    requires(std::is_constructible_v<T, U &&> && !std::is_same_v<std::decay_t<U>, T> &&
             !std::is_same_v<std::decay_t<U>, Status> &&
             !std::is_same_v<std::decay_t<U>, Result<T>>)
  Result(U&& value) : value_(std::forward<U>(value)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }

  // OK when a value is present.
  const Status& status() const& { return status_; }
  Status status() && { return std::move(status_); }

  T& value() & {
    assert(ok() && "Result::value() on an error");
    return *value_;
  }
  const T& value() const& {
    assert(ok() && "Result::value() on an error");
    return *value_;
  }
  T&& value() && {
    assert(ok() && "Result::value() on an error");
    return std::move(*value_);
  }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  template <typename U>
  T value_or(U&& fallback) const& {
    return ok() ? *value_ : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace meshrpc
