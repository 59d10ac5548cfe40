# The version, git commit, compiler and flags are baked into every binary so that each
# JSON result says what produced it. The commit is read again on every build (the
# echolab_version target): read only at configure time, it went stale with the first
# commit after it.
string(TOUPPER "${CMAKE_BUILD_TYPE}" _build_type_upper)
set(ECHOLAB_BUILD_FLAGS "${CMAKE_BUILD_TYPE} ${CMAKE_CXX_FLAGS} ${CMAKE_CXX_FLAGS_${_build_type_upper}}")
if(ECHOLAB_SANITIZE)
  string(APPEND ECHOLAB_BUILD_FLAGS " -fsanitize=${ECHOLAB_SANITIZE}")
endif()
string(STRIP "${ECHOLAB_BUILD_FLAGS}" ECHOLAB_BUILD_FLAGS)
set(ECHOLAB_VERSION_HEADER ${CMAKE_BINARY_DIR}/generated/echolab/version.h)
set(ECHOLAB_VERSION_JSON ${CMAKE_BINARY_DIR}/generated/echolab-version.json)
set(_write_version ${CMAKE_COMMAND} -DSOURCE_DIR=${CMAKE_SOURCE_DIR} -DOUTPUT=${ECHOLAB_VERSION_HEADER}
    -DOUTPUT_JSON=${ECHOLAB_VERSION_JSON}
    -DECHOLAB_VERSION=${PROJECT_VERSION} "-DBUILD_FLAGS=${ECHOLAB_BUILD_FLAGS}"
    "-DCOMPILER=${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION}"
    -P ${CMAKE_SOURCE_DIR}/cmake/WriteVersion.cmake)
execute_process(COMMAND ${_write_version})  # the header exists before the first build
add_custom_target(echolab_version COMMAND ${_write_version} BYPRODUCTS ${ECHOLAB_VERSION_HEADER} ${ECHOLAB_VERSION_JSON}
                  COMMENT "Reading the git commit for --version" VERBATIM)
