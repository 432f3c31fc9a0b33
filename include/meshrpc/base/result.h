// Result<T>: a value of type T, or the non-OK Status that explains why there is none.
//
// Like absl::StatusOr. Constructing a Result from an OK Status is a programmer error (there
// would be neither value nor error) and is turned into an INTERNAL status, so a bug never
// looks like success. value() on an error is a programmer error too and aborts.
#pragma once

#include <optional>
#include <type_traits>
#include <utility>

#include "meshrpc/base/status.h"

namespace meshrpc {

namespace internal {
// Prints the status and aborts: reading the value of a failed Result is a bug, in every build.
[[noreturn]] void die_on_bad_result_access(const Status& status);
}  // namespace internal

template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::decay_t<T>, Status>, "Result<Status> is meaningless");

 public:
  using value_type = T;

  // Implicit on purpose: `return value;` and `return status;` both read naturally.
  Result(const T& value) : value_(std::in_place, value) {}  // NOLINT(google-explicit-constructor)
  Result(T&& value)
      : value_(std::in_place, std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (status_.ok()) status_ = Status(StatusCode::kInternal, "Result built from an OK status");
  }
  template <typename U>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, T> &&
           !std::is_same_v<std::decay_t<U>, Status> && !std::is_same_v<std::decay_t<U>, Result<T>>)
      Result(U&& value)
      : value_(std::in_place, std::forward<U>(value)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }

  // OK when a value is present.
  const Status& status() const& { return status_; }
  Status status() && { return std::move(status_); }

  T& value() & {
    if (!ok()) [[unlikely]]
      internal::die_on_bad_result_access(status_);
    return *value_;
  }
  const T& value() const& {
    if (!ok()) [[unlikely]]
      internal::die_on_bad_result_access(status_);
    return *value_;
  }
  T&& value() && {
    if (!ok()) [[unlikely]]
      internal::die_on_bad_result_access(status_);
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
  // Always constructed in place, so a T that is itself an optional (Result<optional<X>>
  // holding nullopt) is a present value, never mistaken for a missing one.
  std::optional<T> value_;
};

}  // namespace meshrpc
