# meshrpc_generate(TARGET <target> PROTOS <a.proto>... [IMPORT_DIRS <dir>...])
#
# Runs protoc on the .proto files with protoc's C++ generator and protoc-gen-meshrpc, into
# ${CMAKE_CURRENT_BINARY_DIR}/meshrpc_generated, and builds the results into <target>:
#
#   find_package(meshrpc REQUIRED)
#   add_executable(app main.cc)
#   meshrpc_generate(TARGET app PROTOS echo.proto)   # main.cc: #include "echo.meshrpc.h"
#
# A .proto is named relative to the first of IMPORT_DIRS and the current source directory
# that holds it, and its generated files keep that relative path (protos/kv.proto gives
# protos/kv.pb.h and protos/kv.meshrpc.h). Imports are looked up in the same directories
# (and protoc's own, for google/protobuf/*.proto); a .proto is generated again when it or
# anything it imports changes (protoc's --dependency_out is the custom command's DEPFILE).
# The target gets the generated directory on its include path and links meshrpc::meshrpc
# and protobuf::libprotobuf, with the keyword signature (PUBLIC): use keywords in your own
# target_link_libraries for it too.
#
# The plugin is meshrpc::protoc-gen-meshrpc: the target built alongside in meshrpc's own
# build, the installed executable after find_package(meshrpc).
include_guard(GLOBAL)

# The directory of `dirs` that holds `proto` (absolute), or "" when none does.
function(_meshrpc_import_root proto dirs out_var)
  foreach(dir IN LISTS dirs)
    cmake_path(IS_PREFIX dir "${proto}" NORMALIZE _inside)
    if(_inside)
      set(${out_var} "${dir}" PARENT_SCOPE)
      return()
    endif()
  endforeach()
  set(${out_var} "" PARENT_SCOPE)
endfunction()

function(meshrpc_generate)
  cmake_parse_arguments(ARG "" "TARGET" "PROTOS;IMPORT_DIRS" ${ARGN})
  if(NOT ARG_TARGET OR NOT ARG_PROTOS)
    message(FATAL_ERROR "meshrpc_generate: TARGET and PROTOS are required")
  endif()
  if(NOT TARGET meshrpc::protoc-gen-meshrpc OR NOT TARGET protobuf::protoc)
    message(FATAL_ERROR "meshrpc_generate: needs meshrpc::protoc-gen-meshrpc and protobuf::protoc "
                        "(find_package(meshrpc) provides both)")
  endif()
  set(_out ${CMAKE_CURRENT_BINARY_DIR}/meshrpc_generated)
  set(_dirs)
  foreach(dir IN LISTS ARG_IMPORT_DIRS ITEMS ${CMAKE_CURRENT_SOURCE_DIR})
    cmake_path(ABSOLUTE_PATH dir BASE_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR} NORMALIZE)
    list(APPEND _dirs ${dir})
  endforeach()
  list(REMOVE_DUPLICATES _dirs)

  list(TRANSFORM _dirs PREPEND "-I" OUTPUT_VARIABLE _import_flags)
  set(_all_outputs)
  foreach(proto IN LISTS ARG_PROTOS)
    cmake_path(ABSOLUTE_PATH proto BASE_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR} NORMALIZE)
    _meshrpc_import_root(${proto} "${_dirs}" _root)
    if(NOT _root)
      message(FATAL_ERROR "meshrpc_generate: ${proto} is under none of: ${_dirs}")
    endif()
    cmake_path(RELATIVE_PATH proto BASE_DIRECTORY ${_root} OUTPUT_VARIABLE _relative)
    string(REGEX REPLACE "\\.proto$" "" _base ${_relative})
    # In the order protoc's depfile names them (sorted): Ninja takes the depfile for this
    # command's only when its first target is the command's first output.
    set(_outputs)
    foreach(suffix .meshrpc.cc .meshrpc.h .pb.cc .pb.h)
      list(APPEND _outputs ${_out}/${_base}${suffix})
    endforeach()
    # protoc lists every file the .proto imports, directly or not, in the depfile, so editing
    # an import regenerates. One protoc run per .proto: --dependency_out takes one input.
    set(_depfile ${_out}/${_base}.proto.d)
    cmake_path(GET _depfile PARENT_PATH _depfile_dir)
    # The paths in the depfile are absolute, so both settings of CMP0116 read it right; NEW
    # keeps CMake from warning when the caller's policies leave it unset.
    cmake_policy(PUSH)
    cmake_policy(SET CMP0116 NEW)
    add_custom_command(
      OUTPUT ${_outputs}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${_depfile_dir}
      COMMAND protobuf::protoc
              --plugin=protoc-gen-meshrpc=$<TARGET_FILE:meshrpc::protoc-gen-meshrpc>
              --cpp_out=${_out} --meshrpc_out=${_out} --dependency_out=${_depfile}
              ${_import_flags} ${proto}
      DEPENDS ${proto} meshrpc::protoc-gen-meshrpc protobuf::protoc
      DEPFILE ${_depfile}
      COMMENT "protoc-gen-meshrpc: ${_relative}"
      VERBATIM)
    cmake_policy(POP)
    list(APPEND _all_outputs ${_outputs})
  endforeach()

  target_sources(${ARG_TARGET} PRIVATE ${_all_outputs})
  target_include_directories(${ARG_TARGET} PUBLIC $<BUILD_INTERFACE:${_out}>)
  target_link_libraries(${ARG_TARGET} PUBLIC meshrpc::meshrpc protobuf::libprotobuf)
endfunction()
