// The Asio vocabulary meshrpc uses everywhere: the `asio` namespace alias, the executor type
// for coroutines, and the completion token that keeps errors as values.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

namespace meshrpc {

namespace asio = boost::asio;
using error_code = boost::system::error_code;

// `co_await op(..., use_nothrow_awaitable)` yields a tuple (error_code, results...) instead of
// throwing on error (STYLE.md: errors stay values inside coroutines).
inline constexpr auto use_nothrow_awaitable = asio::as_tuple(asio::use_awaitable);

template <typename T>
using awaitable = asio::awaitable<T, asio::any_io_executor>;

}  // namespace meshrpc
