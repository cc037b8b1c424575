# Install layout (GNUInstallDirs) and the two Debian packages (CPack DEB, one per component):
#   cmake --install build --prefix /usr          # or: cpack --config build/CPackConfig.cmake
# dmagent: the agent, its unit, /etc/dmagent/dmagent.conf, docs.
# dmserver: the server, its unit, sysusers/tmpfiles snippets (system user and state
#   directory, made by the postinst), /etc/dmserver/dmserver.conf, docs.
include(GNUInstallDirs)

# The units name the installed binaries and the configuration goes to /etc for the /usr
# prefix: both are written at install time (cmake/InstallPackageFiles.cmake), for the prefix
# that install or CPack uses.
function(dm_install_package_files component)
  install(CODE "set(SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")
                set(STAGING_DIR \"${PROJECT_BINARY_DIR}/package-files\")
                set(COMPONENT ${component})
                include(\"${PROJECT_SOURCE_DIR}/cmake/InstallPackageFiles.cmake\")"
          COMPONENT ${component})
endfunction()
set(dm_doc_dir ${CMAKE_INSTALL_DATAROOTDIR}/doc)

# Man pages, generated from the binaries' own --help (cmake/ManPage.cmake, help2man), so they
# cannot drift from the command line.
find_program(HELP2MAN help2man)
function(dm_man_page target description)
  if(NOT HELP2MAN)
    message(STATUS "help2man not found: no man page for ${target}")
    return()
  endif()
  set(out ${PROJECT_BINARY_DIR}/man/${target}.8.gz)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DPROGRAM=$<TARGET_FILE:${target}> -DNAME=${target}
            "-DDESCRIPTION=${description}"
            "-DINCLUDES=${PROJECT_SOURCE_DIR}/samples/man/${target}.h2m|${PROJECT_SOURCE_DIR}/samples/man/common.h2m"
            -DOUTPUT=${out} -P ${PROJECT_SOURCE_DIR}/cmake/ManPage.cmake
    DEPENDS ${target} ${PROJECT_SOURCE_DIR}/cmake/ManPage.cmake
            ${PROJECT_SOURCE_DIR}/samples/man/${target}.h2m
            ${PROJECT_SOURCE_DIR}/samples/man/common.h2m
    COMMENT "man page ${target}(8)"
    VERBATIM)
  add_custom_target(${target}_man ALL DEPENDS ${out})
  install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man8 COMPONENT ${target})
endfunction()

install(TARGETS dmagent RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT dmagent)
dm_install_package_files(dmagent)
dm_man_page(dmagent "OMA-DM (MS-MDM) device agent with Windows Hello-style containers")
install(FILES README.md SECURITY.md docs/json-output.md DESTINATION ${dm_doc_dir}/dmagent
        COMPONENT dmagent)

if(TARGET dmserver)
  install(TARGETS dmserver RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT dmserver)
  dm_install_package_files(dmserver)
  dm_man_page(dmserver "reference Intune-like MDM server for dmagent")
  # systemd looks in <prefix>/lib, whatever libdir is (multiarch or not).
  install(FILES samples/systemd/sysusers.d/dmserver.conf DESTINATION lib/sysusers.d
          COMPONENT dmserver)
  install(FILES samples/systemd/tmpfiles.d/dmserver.conf DESTINATION lib/tmpfiles.d
          COMPONENT dmserver)
  install(FILES README.md SECURITY.md docs/json-output.md DESTINATION ${dm_doc_dir}/dmserver
          COMPONENT dmserver)
  install(FILES samples/server/README.md DESTINATION ${dm_doc_dir}/dmserver
          RENAME README.server.md COMPONENT dmserver)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME dmagent)
set(CPACK_PACKAGE_VENDOR "dmagent")
# Packagers set their own; .invalid (RFC 2606) until the project has a list.
set(DMAGENT_PACKAGE_MAINTAINER "dmagent maintainers <maintainers@dmagent.invalid>"
    CACHE STRING "Maintainer field of the Debian packages")
set(CPACK_PACKAGE_CONTACT "${DMAGENT_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL dmagent dmserver)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies from the binaries themselves (dpkg-shlibdeps).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_DMAGENT_PACKAGE_NAME dmagent)
set(CPACK_DEBIAN_DMSERVER_PACKAGE_NAME dmserver)
set(CPACK_DEBIAN_DMAGENT_DESCRIPTION "OMA-DM (MS-MDM) device agent with Windows Hello-style containers
Enrolls with MS-MDE2 servers, applies PassportForWork and Policy CSP
settings to local credential containers and reports per-setting compliance
and PIN recovery state to the server.")
set(CPACK_DEBIAN_DMSERVER_DESCRIPTION "reference Intune-like MDM server for dmagent
MS-MDE2 enrollment, OMA-DM management, a PIN reset service, an identity
provider and an admin API, on HTTPS with its own CA.")
# adduser: the postinst's fallback where systemd-sysusers is missing (containers).
set(CPACK_DEBIAN_DMSERVER_PACKAGE_DEPENDS "adduser")
# Maintainer scripts and conffiles per package (samples/debian/<package>/).
foreach(pkg dmagent dmserver)
  string(TOUPPER ${pkg} upper)
  set(CPACK_DEBIAN_${upper}_PACKAGE_CONTROL_EXTRA
      ${PROJECT_SOURCE_DIR}/samples/debian/${pkg}/postinst
      ${PROJECT_SOURCE_DIR}/samples/debian/${pkg}/prerm
      ${PROJECT_SOURCE_DIR}/samples/debian/${pkg}/conffiles)
endforeach()
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
