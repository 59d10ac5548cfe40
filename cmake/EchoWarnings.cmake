# Warnings and sanitizers live on an INTERFACE target that every echolab target links,
# so nothing leaks into global flags and third-party code is left alone.
add_library(echolab_warnings INTERFACE)
add_library(echolab::warnings ALIAS echolab_warnings)
target_compile_options(echolab_warnings INTERFACE -Wall -Wextra -Wshadow -Wnon-virtual-dtor
                       -Wold-style-cast -Wcast-align -Woverloaded-virtual)
if(ECHOLAB_WERROR)
  target_compile_options(echolab_warnings INTERFACE -Werror)
endif()
if(ECHOLAB_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "ECHOLAB_FUZZ needs clang (libFuzzer): use the fuzz preset")
  endif()
  # Coverage instrumentation for the code under test; the harnesses link libFuzzer's main.
  target_compile_options(echolab_warnings INTERFACE -fsanitize=fuzzer-no-link)
  if(NOT ECHOLAB_SANITIZE)
    set(ECHOLAB_SANITIZE "address,undefined")
  endif()
endif()
if(ECHOLAB_SANITIZE)
  target_compile_options(echolab_warnings INTERFACE -fsanitize=${ECHOLAB_SANITIZE} -fno-omit-frame-pointer
                         -fno-sanitize-recover=all)
  target_link_options(echolab_warnings INTERFACE -fsanitize=${ECHOLAB_SANITIZE})
endif()
