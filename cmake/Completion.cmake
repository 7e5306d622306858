# Bash completion for shapex (tools/completion/shapex.bash), installed where bash-completion
# looks for it on demand: ${CMAKE_INSTALL_DATADIR}/bash-completion/completions/shapex. Include
# after GNUInstallDirs. The ctest completion (tests/cli/completion.sh) checks its flag lists
# against `shapex --help`.

include_guard(GLOBAL)

option(SHAPEX_BASH_COMPLETION "Install the bash completion for shapex" ON)

if(SHAPEX_BASH_COMPLETION)
  install(FILES ${CMAKE_CURRENT_LIST_DIR}/../tools/completion/shapex.bash
          DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
          RENAME shapex)
endif()
