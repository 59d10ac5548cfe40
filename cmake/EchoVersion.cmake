# The git commit is baked into every binary so that each JSON result says what produced it.
execute_process(COMMAND git rev-parse --short=12 HEAD
                WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
                OUTPUT_VARIABLE ECHOLAB_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET RESULT_VARIABLE _git_rc)
if(NOT _git_rc EQUAL 0 OR ECHOLAB_GIT_COMMIT STREQUAL "")
  set(ECHOLAB_GIT_COMMIT "unknown")
endif()
execute_process(COMMAND git status --porcelain --untracked-files=no
                WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
                OUTPUT_VARIABLE _git_dirty ERROR_QUIET)
if(NOT _git_dirty STREQUAL "")
  string(APPEND ECHOLAB_GIT_COMMIT "-dirty")
endif()
string(TOUPPER "${CMAKE_BUILD_TYPE}" _build_type_upper)
set(ECHOLAB_BUILD_FLAGS "${CMAKE_BUILD_TYPE} ${CMAKE_CXX_FLAGS} ${CMAKE_CXX_FLAGS_${_build_type_upper}}")
if(ECHOLAB_SANITIZE)
  string(APPEND ECHOLAB_BUILD_FLAGS " -fsanitize=${ECHOLAB_SANITIZE}")
endif()
string(STRIP "${ECHOLAB_BUILD_FLAGS}" ECHOLAB_BUILD_FLAGS)
configure_file(${CMAKE_SOURCE_DIR}/cmake/version.h.in ${CMAKE_BINARY_DIR}/generated/echolab/version.h @ONLY)
