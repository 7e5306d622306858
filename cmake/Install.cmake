# Installing shapex: the `shapex` binary (CLI, supervisor and executor in one), the embedding
# libraries with their public headers, a CMake package (find_package(shapex) gives the target
# shapex::shapex) and a pkg-config file (shapex.pc). The man page and the bash completion have
# their own modules (ManPage.cmake, Completion.cmake); the systemd user units are installed by
# sandbox/CMakeLists.txt.
#
# The libraries are static archives: the C++ API has no stable ABI yet (0.x: templates and
# inline conversions in the headers, layouts that change between releases), so an application
# links the version it was built against and no SONAME promise would be true. They are built
# as the compiler's default (position-independent executables on Debian), not -fPIC: -fPIC
# would make the interpreter's calls interposable and slower; an application that wants them
# inside its own shared library builds shapex with -DCMAKE_POSITION_INDEPENDENT_CODE=ON.
# docs/embedding.md says the same.
#
# Installed: bin/shapex; lib/libshapex_{client,ipc,engine,core}.a; include/shapex/... (the
# public headers of core, engine, ipc and client, and the umbrella <shapex/shapex.h>);
# lib/cmake/shapex/{shapexConfig,shapexConfigVersion,shapexTargets}.cmake;
# lib/pkgconfig/shapex.pc.

include_guard(GLOBAL)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(SHAPEX_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/shapex)
set(SHAPEX_LIBRARIES shapex_client shapex_ipc shapex_engine shapex_core)

# shapex::shapex: everything an embedder links (the client pulls in ipc, engine and core).
add_library(shapex_shapex INTERFACE)
target_link_libraries(shapex_shapex INTERFACE shapex_client)
set_target_properties(shapex_shapex PROPERTIES EXPORT_NAME shapex)
add_library(shapex::shapex ALIAS shapex_shapex)

foreach(lib IN LISTS SHAPEX_LIBRARIES)
  string(REPLACE "shapex_" "" short ${lib})
  set_target_properties(${lib} PROPERTIES EXPORT_NAME ${short})
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${short}/include/shapex
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endforeach()

install(TARGETS shapex RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS shapex_shapex ${SHAPEX_LIBRARIES} EXPORT shapexTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT shapexTargets NAMESPACE shapex:: DESTINATION ${SHAPEX_INSTALL_CMAKEDIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/shapexConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/shapexConfig.cmake INSTALL_DESTINATION ${SHAPEX_INSTALL_CMAKEDIR}
  PATH_VARS CMAKE_INSTALL_BINDIR)
# 0.x: a minor version may break the API, so only the same major.minor is compatible.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/shapexConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/shapexConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/shapexConfigVersion.cmake DESTINATION ${SHAPEX_INSTALL_CMAKEDIR})

configure_file(${CMAKE_CURRENT_LIST_DIR}/shapex.pc.in ${CMAKE_CURRENT_BINARY_DIR}/shapex.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/shapex.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
