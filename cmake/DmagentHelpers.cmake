# dmagent_library(NAME <name> SOURCES ... DEPS ...)
#   One static library per module folder; the folder's parent is the include root, so
#   code includes "storage/database.h", "container/container.h", ...
function(dmagent_library)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${ARG_NAME} STATIC ${ARG_SOURCES})
  target_include_directories(${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${ARG_NAME} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS} dmagent_warnings)
endfunction()

# dmagent_test(NAME <name> SOURCES ... DEPS ... [LABELS ...])
#   A GoogleTest executable whose cases ctest discovers one by one.
function(dmagent_test)
  if(NOT DMAGENT_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main
                                            dmagent_warnings)
  target_compile_definitions(${ARG_NAME} PRIVATE
    DMAGENT_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    DMAGENT_BINARY_DIR="${PROJECT_BINARY_DIR}")
  set(labels unit)
  if(ARG_LABELS)
    set(labels ${ARG_LABELS})
  endif()
  gtest_discover_tests(${ARG_NAME} PROPERTIES LABELS "${labels}" DISCOVERY_TIMEOUT 60)
endfunction()
