# Third-party dependencies, all exposed as imported targets.
#
# Required: fmt::fmt, CLI11::CLI11, GTest::gtest / GTest::gmock / GTest::gtest_main (tests only),
#   Threads::Threads, OpenSSL::Crypto (SHA-256 in the engine), msgpackc-cxx, Boost::boost
#   (Interprocess), nlohmann_json::nlohmann_json (JSON output), PkgConfig::XXHASH,
#   PkgConfig::SECCOMP. Each is linked only by the libraries that use it.
# google-benchmark is not used: the benchmarks under tools/bench/ time whole operations against a
# baseline measured in the same run (raw socket, memcpy, Lua, CPython) with their own harness.

find_package(Threads REQUIRED)
find_package(fmt REQUIRED CONFIG)
# Debian's libcli11-dev installs its config in /usr/share/cmake/CLI11.
find_package(CLI11 REQUIRED CONFIG)
if(SHAPEX_BUILD_TESTS)
  find_package(GTest REQUIRED CONFIG)
endif()
find_package(nlohmann_json 3 REQUIRED CONFIG)

# Debian ships msgpack-cxx's config as cmake/msgpackc-cxx/msgpack-config.cmake.
find_package(msgpackc-cxx CONFIG REQUIRED NAMES msgpackc-cxx msgpack-cxx msgpack)
set(SHAPEX_HAVE_MSGPACK ${msgpackc-cxx_FOUND})

find_package(OpenSSL REQUIRED COMPONENTS Crypto)
set(SHAPEX_HAVE_OPENSSL ${OpenSSL_FOUND})

find_package(Boost REQUIRED)
if(Boost_FOUND AND NOT TARGET Boost::boost)
  add_library(Boost::boost INTERFACE IMPORTED)
  target_include_directories(Boost::boost INTERFACE ${Boost_INCLUDE_DIRS})
endif()
set(SHAPEX_HAVE_BOOST ${Boost_FOUND})

find_package(PkgConfig REQUIRED)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)
set(SHAPEX_HAVE_XXHASH ${XXHASH_FOUND})
set(SHAPEX_HAVE_SECCOMP ${SECCOMP_FOUND})

message(STATUS "shapex deps: msgpack=${SHAPEX_HAVE_MSGPACK} "
               "openssl=${SHAPEX_HAVE_OPENSSL} boost=${SHAPEX_HAVE_BOOST} "
               "xxhash=${SHAPEX_HAVE_XXHASH} seccomp=${SHAPEX_HAVE_SECCOMP}")
