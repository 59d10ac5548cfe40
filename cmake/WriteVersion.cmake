# Writes generated/echolab/version.h with the source tree's git commit as it is now. Run by
# the echolab_version target on every build (not only at configure time), so that a binary
# never reports the commit of an older configure: every JSON result names what produced it.
# configure_file rewrites the header only when its text changes, so an unchanged commit
# recompiles nothing.
# OUTPUT_JSON, beside it, is the same for the installed Python tools (bench/echolab_home.py).
#   cmake -DSOURCE_DIR=... -DOUTPUT=... -DOUTPUT_JSON=... -DECHOLAB_VERSION=... -DBUILD_FLAGS=... -DCOMPILER=... -P
execute_process(COMMAND git rev-parse --short=12 HEAD
                WORKING_DIRECTORY ${SOURCE_DIR}
                OUTPUT_VARIABLE ECHOLAB_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET RESULT_VARIABLE git_rc)
if(NOT git_rc EQUAL 0 OR ECHOLAB_GIT_COMMIT STREQUAL "")
  set(ECHOLAB_GIT_COMMIT "unknown")
else()
  execute_process(COMMAND git status --porcelain --untracked-files=no
                  WORKING_DIRECTORY ${SOURCE_DIR}
                  OUTPUT_VARIABLE git_dirty ERROR_QUIET)
  if(NOT git_dirty STREQUAL "")
    string(APPEND ECHOLAB_GIT_COMMIT "-dirty")
  endif()
endif()
configure_file(${SOURCE_DIR}/cmake/version.h.in ${OUTPUT} @ONLY)
configure_file(${SOURCE_DIR}/cmake/version.json.in ${OUTPUT_JSON} @ONLY)
