# Run at build time (cmake -P): the man page of PROGRAM (a built binary) with help2man, from its
# own --help and --version plus every command's --help, so the page cannot drift from the
# command line. Inputs: PROGRAM, NAME (program name), DESCRIPTION, INCLUDES (|-separated .h2m
# files), OUTPUT (<name>.8.gz).
string(REPLACE "|" ";" INCLUDES "${INCLUDES}")
execute_process(COMMAND "${PROGRAM}" --help OUTPUT_VARIABLE top RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} --help failed")
endif()
# The commands are the lines under "Subcommands:" in the top-level help.
string(REGEX REPLACE ".*\nSubcommands:\n" "" commands_text "${top}")
string(REGEX MATCHALL "\n  [a-z][a-z-]*" commands "\n${commands_text}")
set(section "[COMMANDS]\n")
foreach(c ${commands})
  string(STRIP "${c}" c)
  execute_process(COMMAND "${PROGRAM}" ${c} --help OUTPUT_VARIABLE help RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${PROGRAM} ${c} --help failed")
  endif()
  string(REPLACE "\\" "\\\\" help "${help}")
  set(section "${section}.SS ${c}\n.nf\n${help}.fi\n")
endforeach()
get_filename_component(dir "${OUTPUT}" DIRECTORY)
file(WRITE "${dir}/${NAME}-commands.h2m" "${section}")
set(include_args --include "${dir}/${NAME}-commands.h2m")
foreach(i ${INCLUDES})
  list(APPEND include_args --include "${i}")
endforeach()
execute_process(COMMAND help2man --no-info --section 8 --name "${DESCRIPTION}" ${include_args}
                        --output "${dir}/${NAME}.8" "${PROGRAM}"
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "help2man ${PROGRAM} failed")
endif()
execute_process(COMMAND gzip -9n -f "${dir}/${NAME}.8" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip ${NAME}.8 failed")
endif()
