# protoc-gen-meshrpc refuses an rpc named like a member of the classes it generates (Client,
# Service, Methods, ...), with an error naming the rpc and why, where the generated code would
# not compile or would quietly override one of those members. Registered with ctest as
# codegen.reserved_rpc_names (CMakeLists.txt here):
#   cmake -DPROTOC=<protoc> -DPLUGIN=<protoc-gen-meshrpc> -DWORK_DIR=<scratch dir> -P <this>
foreach(var PROTOC PLUGIN WORK_DIR)
  if(NOT ${var})
    message(FATAL_ERROR "reserved_names_test: -D${var}=... is required")
  endif()
endforeach()

# Runs protoc on a one-rpc service whose rpc is `name`, into WORK_DIR/<name>: sets
# <prefix>_result (protoc's exit code) and <prefix>_error (its stderr).
function(run_protoc name prefix)
  set(dir ${WORK_DIR}/${name})
  file(REMOVE_RECURSE ${dir})
  file(MAKE_DIRECTORY ${dir})
  file(WRITE ${dir}/reserved.proto
       "syntax = \"proto3\";\n"
       "package meshrpc.test.reserved;\n"
       "message Path {\n  string path = 1;\n}\n"
       "service Files {\n  rpc List(Path) returns (Path);\n  rpc ${name}(Path) returns (Path);\n}\n")
  execute_process(
    COMMAND ${PROTOC} --plugin=protoc-gen-meshrpc=${PLUGIN} --meshrpc_out=${dir} -I${dir}
            ${dir}/reserved.proto
    RESULT_VARIABLE result
    OUTPUT_VARIABLE output
    ERROR_VARIABLE error)
  set(${prefix}_result "${result}" PARENT_SCOPE)
  set(${prefix}_error "${output}${error}" PARENT_SCOPE)
endfunction()

# Whether `text` contains `part`, in <out_var>.
function(contains text part out_var)
  string(FIND "${text}" "${part}" at)
  if(at EQUAL -1)
    set(${out_var} FALSE PARENT_SCOPE)
  else()
    set(${out_var} TRUE PARENT_SCOPE)
  endif()
endfunction()

set(failures)

# The control: a name close to a reserved one generates code, so the failures below come from
# the names, not from the setup.
run_protoc(Clients control)
if(NOT control_result EQUAL 0 OR NOT EXISTS ${WORK_DIR}/Clients/reserved.meshrpc.h)
  list(APPEND failures "rpc Clients: protoc exited ${control_result}: ${control_error}")
endif()

# The finding this guards: `rpc Client` made Files::Client a class with a member function named
# Client, a constructor with a return type.
run_protoc(Client client)
set(client_expected "service meshrpc.test.reserved.Files: rpc Client would be a member function of the generated class Client named Client, which C++ reserves for its constructor; rename the rpc")
contains("${client_error}" "reserved.proto: ${client_expected}" client_said_it)
if(client_result EQUAL 0)
  list(APPEND failures "rpc Client: protoc succeeded")
elseif(NOT client_said_it)
  list(APPEND failures "rpc Client: protoc said '${client_error}', not '${client_expected}'")
endif()

foreach(name Service Methods kServiceName invoker invoker_ CompletionToken service_name
             register_methods delete co_await class)
  run_protoc(${name} reserved)
  set(expected "service meshrpc.test.reserved.Files: rpc ${name} would ")
  contains("${reserved_error}" "${expected}" names_it)
  contains("${reserved_error}" "; rename the rpc" says_what_to_do)
  if(reserved_result EQUAL 0)
    list(APPEND failures "rpc ${name}: protoc succeeded")
  elseif(NOT names_it OR NOT says_what_to_do)
    list(APPEND failures "rpc ${name}: protoc said '${reserved_error}', not '${expected}...'")
  elseif(EXISTS ${WORK_DIR}/${name}/reserved.meshrpc.h)
    list(APPEND failures "rpc ${name}: protoc failed but wrote reserved.meshrpc.h")
  endif()
endforeach()

if(failures)
  list(JOIN failures "\n  " text)
  message(FATAL_ERROR "reserved_names_test:\n  ${text}")
endif()
message(STATUS "reserved_names_test: every reserved rpc name refused, and rpc Clients accepted")
