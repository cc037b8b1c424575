# Run at install time (install(CODE) in Packaging.cmake), so the prefix is the one given to
# `cmake --install --prefix` or CPack, not the one configured: writes the systemd units naming
# <prefix>/bin, and the sample configuration into /etc for the /usr prefix (Debian's layout),
# <prefix>/etc otherwise; and the Debian changelog (gzip -9n, as policy wants it) into the
# component's doc directory. Inputs: SOURCE_DIR, STAGING_DIR
# (in the build tree), COMPONENT.
set(prefix "${CMAKE_INSTALL_PREFIX}")
if(prefix STREQUAL "/usr")
  set(etc "/etc")
else()
  set(etc "${prefix}/etc")
endif()
set(CMAKE_INSTALL_FULL_BINDIR "${prefix}/bin")
set(staging "${STAGING_DIR}/${COMPONENT}")
configure_file("${SOURCE_DIR}/samples/systemd/${COMPONENT}.service.in"
               "${staging}/${COMPONENT}.service" @ONLY)
file(INSTALL "${staging}/${COMPONENT}.service" DESTINATION "${prefix}/lib/systemd/system"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
file(INSTALL "${SOURCE_DIR}/samples/config/${COMPONENT}.conf" DESTINATION "${etc}/${COMPONENT}"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
execute_process(COMMAND gzip -9n -c "${SOURCE_DIR}/samples/debian/changelog"
                OUTPUT_FILE "${staging}/changelog.gz" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip of the changelog failed")
endif()
file(INSTALL "${staging}/changelog.gz" DESTINATION "${prefix}/share/doc/${COMPONENT}"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
