# The shapex(1) man page: generated at build time from docs/shapex.1.scd with scdoc(1) (Debian
# package scdoc, installed by tools/setup-debian.sh) into ${CMAKE_BINARY_DIR}/man/shapex.1, as
# part of ALL, and installed into ${CMAKE_INSTALL_MANDIR}/man1. Without scdoc the build goes on
# without the page and says so. Include after GNUInstallDirs.
#
# The ctest man_page (tests/cli/man_page.sh) checks the generated page against `shapex --help`.

include_guard(GLOBAL)

option(SHAPEX_MAN_PAGE "Build and install the shapex(1) man page (needs scdoc)" ON)

set(SHAPEX_MAN_SOURCE ${CMAKE_CURRENT_LIST_DIR}/../docs/shapex.1.scd)
set(SHAPEX_MAN_PAGE_FILE ${CMAKE_BINARY_DIR}/man/shapex.1)

if(SHAPEX_MAN_PAGE)
  find_program(SHAPEX_SCDOC scdoc)
  if(SHAPEX_SCDOC)
    # scdoc reads stdin and writes stdout; the page is written whole or not at all.
    add_custom_command(
      OUTPUT ${SHAPEX_MAN_PAGE_FILE}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
      COMMAND sh -c "\"$0\" < \"$1\" > \"$2.tmp\" && mv \"$2.tmp\" \"$2\""
              ${SHAPEX_SCDOC} ${SHAPEX_MAN_SOURCE} ${SHAPEX_MAN_PAGE_FILE}
      DEPENDS ${SHAPEX_MAN_SOURCE}
      COMMENT "Generating man page shapex.1 (scdoc)"
      VERBATIM)
    add_custom_target(shapex_man_page ALL DEPENDS ${SHAPEX_MAN_PAGE_FILE})
    install(FILES ${SHAPEX_MAN_PAGE_FILE} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
  else()
    message(WARNING "scdoc not found: the shapex(1) man page will not be built or installed "
                    "(apt-get install scdoc, or configure with -DSHAPEX_MAN_PAGE=OFF)")
  endif()
endif()
