# SPDX-License-Identifier: MIT
# Install rules and the Debian package (included from the top CMakeLists.txt).
#
#   cmake --install build [--prefix /usr/local]    the programs, man pages,
#                                                  completion and units
#   cd build && cpack -G DEB                       build/drover_VERSION_ARCH.deb
#
# The man pages are generated at build time from the CLI's own help and the
# README's Configuration table (deploy/man/mkman.sh); the completion asks the
# CLI and the cluster at completion time. The package is made by CPack rather
# than a debian/ directory: the build is already CMake's, CPack needs nothing
# beyond cmake (no debhelper toolchain on a build machine), and one command
# after the build makes it. Maintainer scripts are in deploy/debian/.
include(GNUInstallDirs)

# ---- man pages ----
set(DROVER_MAN_DIR ${CMAKE_BINARY_DIR}/man)
set(DROVER_MAN_PAGES drover.1 drover-controller.8 drover-agent.8)
set(DROVER_MAN_OUTPUTS)
foreach(page ${DROVER_MAN_PAGES})
  add_custom_command(
    OUTPUT ${DROVER_MAN_DIR}/${page}.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${DROVER_MAN_DIR}
    COMMAND ${CMAKE_SOURCE_DIR}/deploy/man/mkman.sh ${page} ${DROVER_MAN_DIR}/${page}.gz
            $<TARGET_FILE:drover> ${CMAKE_SOURCE_DIR}/README.md ${PROJECT_VERSION}
    DEPENDS drover ${CMAKE_SOURCE_DIR}/deploy/man/mkman.sh ${CMAKE_SOURCE_DIR}/README.md
    COMMENT "Generating man page ${page}"
    VERBATIM)
  list(APPEND DROVER_MAN_OUTPUTS ${DROVER_MAN_DIR}/${page}.gz)
endforeach()
add_custom_target(man ALL DEPENDS ${DROVER_MAN_OUTPUTS})

# ---- docs ----
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/doc/changelog.gz
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/doc
  COMMAND sh -c "gzip -9n <'${CMAKE_SOURCE_DIR}/deploy/debian/changelog' >'${CMAKE_BINARY_DIR}/doc/changelog.gz'"
  DEPENDS ${CMAKE_SOURCE_DIR}/deploy/debian/changelog
  VERBATIM)
add_custom_target(docs ALL DEPENDS ${CMAKE_BINARY_DIR}/doc/changelog.gz)

# ---- install ----
install(TARGETS drover drover-controller drover-agent RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The agent's helpers, drover-exec (node-agent/exec_main.c) and drover-unpack
# (node-agent/unpack_main.c): not for people, so not on PATH;
# the agent looks for them in ../libexec/drover/ from its own binary.
install(TARGETS drover-exec drover-unpack RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/drover)
if(DROVER_STATIC_PIE) # node-agent/CMakeLists.txt: the helper is static on purpose
  install(FILES ${CMAKE_SOURCE_DIR}/deploy/debian/lintian-overrides
          DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides RENAME drover)
endif()
install(FILES ${DROVER_MAN_DIR}/drover.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${DROVER_MAN_DIR}/drover-controller.8.gz ${DROVER_MAN_DIR}/drover-agent.8.gz
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/completion/drover.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME drover)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/completion/_drover
        DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
# The units name the installed binaries, so they are made at install time,
# for the prefix installed to: /usr (the package) puts them in
# /lib/systemd/system, where Debian 12's systemd and lintian want them; any
# other prefix in PREFIX/lib/systemd/system.
install(CODE "
  set(BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
  if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
    set(unitdir /lib/systemd/system)
  else()
    set(unitdir \"\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\")
  endif()
  foreach(u drover-controller drover-agent)
    message(STATUS \"Installing: \$ENV{DESTDIR}\${unitdir}/\${u}.service\")
    configure_file(${CMAKE_SOURCE_DIR}/deploy/systemd/\${u}.service.in
                   \"\$ENV{DESTDIR}\${unitdir}/\${u}.service\" @ONLY)
  endforeach()
")
install(FILES ${CMAKE_SOURCE_DIR}/deploy/debian/copyright ${CMAKE_SOURCE_DIR}/README.md
              ${CMAKE_BINARY_DIR}/doc/changelog.gz
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# ---- the Debian package ----
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME drover)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# No project mail host exists yet: a distributor sets -DDROVER_MAINTAINER (lintian's
# bogus-mail-host until then).
set(DROVER_MAINTAINER "drover maintainers <drover@localhost.localdomain>" CACHE STRING
    "the package's Maintainer field")
set(CPACK_PACKAGE_CONTACT "${DROVER_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "multi-host process orchestrator for twelve-factor apps")
string(CONCAT CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "A controller holds the desired processes of each app's current release; a\n"
    "node agent on every machine starts them with their port and config,\n"
    "checks their health, restarts crashed ones and drains them gracefully.\n"
    "The drover CLI deploys a directory as a release, scales, runs one-off\n"
    "commands and streams logs. Ships drover, drover-controller and\n"
    "drover-agent with systemd units (installed, not enabled).")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/drover/drover")
# Runtime library dependencies from the binaries (dpkg-shlibdeps), never -dev.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/deploy/debian/postinst ${CMAKE_SOURCE_DIR}/deploy/debian/prerm
    ${CMAKE_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON) # install(CODE) above sees CMAKE_INSTALL_PREFIX=/usr
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
include(CPack)
