// Early-return helpers for Status and Result<T>, in the style of Abseil's status_macros.h.
#pragma once

#include "meshrpc/base/result.h"
#include "meshrpc/base/status.h"

#define MESHRPC_CONCAT_INNER_(a, b) a##b
#define MESHRPC_CONCAT_(a, b) MESHRPC_CONCAT_INNER_(a, b)

// Evaluates `expr` (a Status); returns it from the enclosing function if it is not OK.
#define MESHRPC_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::meshrpc::Status meshrpc_status_ = (expr);        \
    if (!meshrpc_status_.ok()) return meshrpc_status_; \
  } while (false)

// Evaluates `rexpr` (a Result<T>); on error returns its Status, else moves the value into
// `lhs`, which may be a declaration: MESHRPC_ASSIGN_OR_RETURN(auto frame, decode(bytes));
// It expands to several statements: never the unbraced body of an if or a loop. Wrap an
// `rexpr` that contains a top-level comma in parentheses.
#define MESHRPC_ASSIGN_OR_RETURN(lhs, rexpr) \
  MESHRPC_ASSIGN_OR_RETURN_IMPL_(MESHRPC_CONCAT_(meshrpc_result_, __LINE__), lhs, rexpr)

#define MESHRPC_ASSIGN_OR_RETURN_IMPL_(result, lhs, rexpr) \
  auto result = (rexpr);                                   \
  if (!result.ok()) return std::move(result).status();     \
  lhs = std::move(result).value()

// Coroutine forms: the same, with co_return.
#define MESHRPC_CO_RETURN_IF_ERROR(expr)                  \
  do {                                                    \
    ::meshrpc::Status meshrpc_status_ = (expr);           \
    if (!meshrpc_status_.ok()) co_return meshrpc_status_; \
  } while (false)

#define MESHRPC_CO_ASSIGN_OR_RETURN(lhs, rexpr) \
  MESHRPC_CO_ASSIGN_OR_RETURN_IMPL_(MESHRPC_CONCAT_(meshrpc_result_, __LINE__), lhs, rexpr)

#define MESHRPC_CO_ASSIGN_OR_RETURN_IMPL_(result, lhs, rexpr) \
  auto result = (rexpr);                                      \
  if (!result.ok()) co_return std::move(result).status();     \
  lhs = std::move(result).value()
