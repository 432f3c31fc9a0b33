#!/usr/bin/env bash
# Installs a built meshrpc into a scratch prefix and builds this folder's program against it,
# as a user would (find_package(meshrpc) + meshrpc_generate), then runs it; also checks that
# pkg-config finds meshrpc.pc in the prefix. Registered with ctest as
# install.out_of_tree_example (examples/CMakeLists.txt).
#   build_against_install.sh BUILD_DIR SOURCE_DIR
# BUILD_DIR: a configured and built meshrpc tree; SOURCE_DIR: this folder. Scratch files go
# under $TMPDIR and are removed at exit.
set -euo pipefail
build_dir=$(cd "${1:?BUILD_DIR}" && pwd)
source_dir=$(cd "${2:?SOURCE_DIR}" && pwd)

scratch=$(mktemp -d "${TMPDIR:-/tmp}/meshrpc-install.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
prefix="$scratch/prefix"
fail() {
  echo "FAIL (install.out_of_tree_example): $*" >&2
  exit 1
}

cmake --install "$build_dir" --prefix "$prefix" >"$scratch/install.log" ||
  { cat "$scratch/install.log" >&2; fail "cmake --install"; }
[[ -x "$prefix/bin/protoc-gen-meshrpc" ]] || fail "no bin/protoc-gen-meshrpc"

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
# The user's program gets the warnings meshrpc holds itself to, so installed headers and
# generated code must compile cleanly in someone else's build too.
cmake -S "$source_dir" -B "$scratch/build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  "${launcher[@]}" -DCMAKE_CXX_FLAGS="-Wall -Wextra -Wpedantic -Werror" >"$scratch/configure.log" ||
  { cat "$scratch/configure.log" >&2; fail "configuring the example against $prefix"; }
cmake --build "$scratch/build" || fail "building the example"

output=$("$scratch/build/greeter") || fail "greeter exited $?: $output"
[[ "$output" == "greeter: Hello, out-of-tree!" ]] || fail "unexpected output '$output'"
echo "$output"

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pkg-config --exists meshrpc || fail "pkg-config does not find meshrpc"
flags=$(pkg-config --cflags --libs meshrpc) || fail "pkg-config --cflags --libs meshrpc"
for want in "-I$prefix/include" "-L$prefix/lib" -lmeshrpc_codec -lmeshrpc_base -lprotobuf; do
  [[ " $flags " == *" $want "* ]] || fail "pkg-config --cflags --libs meshrpc lacks $want: $flags"
done
echo "pkg-config: $flags"
# The flags are enough to compile and link a program against the static libraries, one that
# needs every layer: a codec::Server and a core::Channel over TCP on a RealEnv (asio, runtime,
# transport, wire, core, codec, base) and protobuf's codec, answering one call it makes itself.
cat >"$scratch/echo.cc" <<'PROGRAM'
#include <google/protobuf/wrappers.pb.h>

#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdio>
#include <string>

#include "meshrpc/codec/protobuf.h"
#include "meshrpc/codec/server.h"
#include "meshrpc/codec/unary_call.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/runtime/real_env.h"
#include "meshrpc/transport/tcp.h"

using google::protobuf::StringValue;

int main() {
  meshrpc::runtime::RealEnv env(meshrpc::runtime::RealEnv::Options{.threads = 1});
  meshrpc::transport::TcpNetwork network(env);
  meshrpc::codec::Server server(env, network);
  server.handle<StringValue, StringValue>(
      "/pkgconfig.Echo/Say",
      [](meshrpc::core::ServerContext&,
         const StringValue& request) -> meshrpc::Result<StringValue> {
        StringValue reply;
        reply.set_value("echo: " + request.value());
        return reply;
      });
  meshrpc::Result<meshrpc::transport::Address> address = server.start({"127.0.0.1", 0});
  if (!address.ok()) {
    std::fprintf(stderr, "%s\n", address.status().to_string().c_str());
    return 1;
  }
  meshrpc::Result<StringValue> reply = meshrpc::internal_error("no reply");
  {
    meshrpc::core::Channel channel(env, network, *address);
    StringValue request;
    request.set_value("linked");
    meshrpc::core::CallOptions options;
    options.timeout = std::chrono::seconds(10);
    reply = meshrpc::codec::async_unary_call<StringValue>(channel, "/pkgconfig.Echo/Say", request,
                                                          options, meshrpc::asio::use_future)
                .get();
  }  // the channel closes on the env's threads, which must still run
  if (!reply.ok()) {
    std::fprintf(stderr, "%s\n", reply.status().to_string().c_str());
    return 1;
  }
  std::puts(reply->value().c_str());
}
PROGRAM
# shellcheck disable=SC2086  # $flags is a list of words
"${CXX:-c++}" -Wall -Wextra -Wpedantic -Werror "$scratch/echo.cc" -o "$scratch/echo" $flags ||
  fail "compiling and linking with pkg-config's flags"
output=$("$scratch/echo") || fail "the pkg-config-linked program exited $?: $output"
[[ "$output" == "echo: linked" ]] || fail "the pkg-config-linked program printed '$output'"
echo "pkg-config: $output"
echo "PASS (install.out_of_tree_example)"
