# Per-target warning flags. Use shapex_set_warnings(<target>) on every target we own.
function(shapex_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  if(SHAPEX_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
