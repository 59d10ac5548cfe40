# What an install (and the .deb) holds: the programs echolab ships, the Python tools and
# their packages, the specs and the result schemas. Never tests, micro-benchmarks or fuzzers.
#
# PREFIX/share/echolab mirrors the source layout (bench/runner, bench/specs,
# plots/echolab_plot, results/schema), so the packages' relative lookups (runner/spec.py's
# specs, compare/load.py's plots/) work unchanged; the launchers in PREFIX/bin find their
# package in ../share/echolab (bench/echolab-bench says how).
include(GNUInstallDirs)
set(ECHOLAB_INSTALL_SHARE ${CMAKE_INSTALL_DATADIR}/echolab)
set(_no_cache PATTERN "__pycache__" EXCLUDE PATTERN "*.pyc" EXCLUDE)

install(TARGETS echolab-server echolab-loadgen RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET echolab-loadgen-mpi)
  # Every host of an MPI run needs it at the same path: the package is the way to get there
  # (the .deb then depends on Open MPI's library, found by dpkg-shlibdeps).
  install(TARGETS echolab-loadgen-mpi RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
if(ECHOLAB_BUILD_BENCH)
  install(TARGETS echolab-bare-client RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  # The twins are references for bench/fidelity.py, not commands: generic names like
  # twin-fork do not belong on PATH.
  install(TARGETS twin-iterative twin-fork twin-thread twin-prefork twin-select twin-epoll
          RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/echolab)
endif()

install(PROGRAMS bench/echolab-bench bench/echolab-compare plots/echolab-plot
        DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES bench/echolab_home.py DESTINATION ${ECHOLAB_INSTALL_SHARE}/bench)
install(DIRECTORY bench/runner bench/compare bench/specs DESTINATION ${ECHOLAB_INSTALL_SHARE}/bench ${_no_cache})
install(DIRECTORY plots/echolab_plot DESTINATION ${ECHOLAB_INSTALL_SHARE}/plots ${_no_cache})
install(DIRECTORY results/schema DESTINATION ${ECHOLAB_INSTALL_SHARE}/results)
# The runner makes its simulated hosts with it (cells of several generators, as root).
install(PROGRAMS scripts/netns-hosts.sh DESTINATION ${ECHOLAB_INSTALL_SHARE}/scripts)
# Its presence marks an installed copy (bench/echolab_home.py); written with version.h.
install(FILES ${ECHOLAB_VERSION_JSON} DESTINATION ${ECHOLAB_INSTALL_SHARE})

# cpack -G DEB in a release build: echolab_<version>_<arch>.deb for /usr.
set(CPACK_PACKAGE_NAME echolab)
set(CPACK_PACKAGE_VENDOR "echolab")
set(CPACK_PACKAGE_CONTACT "echolab maintainers <echolab@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Echo servers of every concurrency model, a load generator and a benchmark runner")
set(CPACK_PACKAGE_DESCRIPTION
    "echolab serves one echo protocol with many concurrency models (iterative, fork, thread, "
    "prefork, select, poll, epoll, reactor pools, UDP) and measures them: echolab-loadgen drives "
    "a server in open or closed loop, echolab-bench runs matrices of engines and loads, "
    "echolab-compare judges a candidate against a baseline and echolab-plot draws the results.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
# Shared libraries from dpkg-shlibdeps, plus the interpreter of the Python tools.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "python3")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3-matplotlib")
include(CPack)
