# Compiler flags shared by every meshrpc target, applied through the meshrpc_flags interface target.
add_library(meshrpc_flags INTERFACE)
target_compile_options(meshrpc_flags INTERFACE -Wall -Wextra -Wpedantic)
if(MESHRPC_WERROR)
  target_compile_options(meshrpc_flags INTERFACE -Werror)
endif()
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # GCC 12 reports Asio's coroutine frame operator delete as mismatched with its operator new
  # (a false positive at -O2 on every awaitable function that returns a value).
  target_compile_options(meshrpc_flags INTERFACE -Wno-mismatched-new-delete)
endif()
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  target_compile_options(meshrpc_flags INTERFACE -Wthread-safety)
endif()

if(MESHRPC_SANITIZE STREQUAL "address")
  # -fno-sanitize=function: clang 14's function sanitizer emits prologue data that the
  # assembler rejects inside C++20 coroutines ("Cannot represent a difference across sections").
  set(_san -fsanitize=address,undefined -fno-sanitize=function -fno-sanitize-recover=undefined
           -fno-omit-frame-pointer)
  if(MESHRPC_BUILD_FUZZ)
    list(APPEND _san -fsanitize=fuzzer-no-link)
  endif()
  add_compile_options(${_san})
  add_link_options(-fsanitize=address,undefined -fno-sanitize=function)
elseif(MESHRPC_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(NOT MESHRPC_SANITIZE STREQUAL "")
  message(FATAL_ERROR "MESHRPC_SANITIZE must be '', 'address' or 'thread', not '${MESHRPC_SANITIZE}'")
endif()

# Installs a library (or a tool) into the meshrpcTargets export set as meshrpc::<export_name>,
# and records libraries in link-dependency order for meshrpc.pc (cmake/MeshrpcInstall.cmake):
# each library is added after the libraries it uses.
function(meshrpc_install_target target export_name)
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${export_name})
  install(TARGETS ${target} EXPORT meshrpcTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  get_target_property(_type ${target} TYPE)
  if(_type STREQUAL "STATIC_LIBRARY")
    set_property(GLOBAL APPEND PROPERTY MESHRPC_STATIC_LIBRARIES ${target})
  endif()
endfunction()

# Adds a meshrpc layer library from every .cc in src/<layer>/ (globbed so that adding a file
# needs no CMake edit) and exports include/ as its public headers: the source tree's when
# built here, the install prefix's once installed. Add layers after the layers they use.
function(meshrpc_layer name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB_RECURSE _srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${name}/*.cc)
  add_library(meshrpc_${name} STATIC ${_srcs})
  add_library(meshrpc::${name} ALIAS meshrpc_${name})
  target_include_directories(meshrpc_${name}
    PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE ${PROJECT_SOURCE_DIR}/src)
  # The warning flags are this build's business, not an installed library's users'.
  target_link_libraries(meshrpc_${name} PUBLIC ${ARG_DEPS} PRIVATE $<BUILD_INTERFACE:meshrpc_flags>)
  meshrpc_install_target(meshrpc_${name} ${name})
endfunction()
