# What `cmake --install build --prefix P` puts under P, for find_package(meshrpc) and
# pkg-config:
#   include/meshrpc/**                      the public headers
#   lib/libmeshrpc_*.a                      the layer libraries (meshrpc_install_target)
#   bin/protoc-gen-meshrpc                  the protoc plugin
#   lib/cmake/meshrpc/                      meshrpcConfig.cmake (+ version), the exported
#                                           meshrpc:: targets, MeshrpcGenerate.cmake
#   lib/pkgconfig/meshrpc.pc
# Included from the top-level CMakeLists.txt after every target exists.
include(CMakePackageConfigHelpers)

set(_meshrpc_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/meshrpc)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/meshrpc
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
install(EXPORT meshrpcTargets NAMESPACE meshrpc:: DESTINATION ${_meshrpc_cmake_dir})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/meshrpcConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/meshrpcConfig.cmake
                              INSTALL_DESTINATION ${_meshrpc_cmake_dir})
# 0.x: a minor release may break the API, so only the same minor version matches.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/meshrpcConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/meshrpcConfig.cmake
              ${PROJECT_BINARY_DIR}/meshrpcConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/MeshrpcGenerate.cmake
        DESTINATION ${_meshrpc_cmake_dir})

# meshrpc.pc lists the static libraries users of each library come before it, so the reverse of
# the order they were added in (each after the libraries it uses).
get_property(_meshrpc_libraries GLOBAL PROPERTY MESHRPC_STATIC_LIBRARIES)
list(REVERSE _meshrpc_libraries)
list(TRANSFORM _meshrpc_libraries PREPEND "-l")
list(JOIN _meshrpc_libraries " " MESHRPC_PC_LIBS)
# The prefix is the one given at install time (`cmake --install --prefix P`), not the one
# configured: so the .pc is configured twice, the second time when installing.
set(CMAKE_INSTALL_PREFIX_AT_INSTALL "@CMAKE_INSTALL_PREFIX@")
configure_file(${PROJECT_SOURCE_DIR}/cmake/meshrpc.pc.in ${PROJECT_BINARY_DIR}/meshrpc.pc.in @ONLY)
install(CODE "
  configure_file(\"${PROJECT_BINARY_DIR}/meshrpc.pc.in\" \"${PROJECT_BINARY_DIR}/pkgconfig/meshrpc.pc\" @ONLY)
  file(INSTALL \"${PROJECT_BINARY_DIR}/pkgconfig/meshrpc.pc\"
       DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig\")")
