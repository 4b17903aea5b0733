# SofieModel.cmake: compile neural-network models to C++ at build time with swift-sofie.
#
#   include(SofieModel)            # or find_package(Sofie) after scripts/install.sh
#   sofie_add_model(mlp MODEL models/mlp.onnx)
#   target_link_libraries(app PRIVATE mlp)
#
# sofie_add_model(TARGET MODEL path [NAME name] [WEIGHTS file|embed] [OUTPUT_DIR dir]
#                 [OPTIONS sofie-compile-options...])
#
# Runs `sofie compile` when the model file (or the sofie executable) changes, into
# OUTPUT_DIR (default ${CMAKE_CURRENT_BINARY_DIR}/sofie/TARGET), and defines TARGET as an
# INTERFACE library that carries:
#   - the include directory of the generated NAME.hxx (NAME defaults to the model file's name
#     without its extension, and is the C++ namespace);
#   - C++17 as the minimum standard;
#   - with WEIGHTS file (the default), the compile definition
#     SOFIE_<NAME in upper case>_WEIGHTS="<absolute path of NAME.weights>", so that code can
#     write `NAME::Session session(SOFIE_MLP_WEIGHTS);`. WEIGHTS embed puts the weights in the
#     header instead (no file to ship; slow to compile above a few MiB), `NAME::Session session;`.
# The target's properties SOFIE_HEADER and SOFIE_WEIGHTS hold the two paths (for install()).
# OPTIONS are passed to `sofie compile` as they are, e.g. OPTIONS --batch-block 1 --dim N=16.
#
# The sofie executable: the cache variable SOFIE_EXECUTABLE, else `sofie` on the PATH.

cmake_minimum_required(VERSION 3.19)

if(NOT SOFIE_EXECUTABLE)
  find_program(SOFIE_EXECUTABLE sofie DOC "the swift-sofie compiler")
endif()

function(sofie_add_model TARGET)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "MODEL;NAME;WEIGHTS;OUTPUT_DIR" "OPTIONS")
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "sofie_add_model(${TARGET}): unknown arguments: ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT ARG_MODEL)
    message(FATAL_ERROR "sofie_add_model(${TARGET}): MODEL path/to/model.onnx (or .keras, .h5) is required")
  endif()
  if(NOT SOFIE_EXECUTABLE)
    message(FATAL_ERROR "sofie_add_model(${TARGET}): no sofie executable; put sofie on the PATH "
                        "(scripts/install.sh) or set -DSOFIE_EXECUTABLE=/path/to/sofie")
  endif()
  get_filename_component(model "${ARG_MODEL}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  if(NOT EXISTS "${model}")
    message(FATAL_ERROR "sofie_add_model(${TARGET}): model file ${model} does not exist")
  endif()
  if(ARG_NAME)
    set(name "${ARG_NAME}")
  else()
    get_filename_component(name "${model}" NAME_WE)
  endif()
  # sofie names the namespace and the files after a sanitized NAME; require one that sanitizing
  # leaves as it is, so that the files this function declares are the files sofie writes.
  string(LENGTH "${name}" length)
  if(NOT name MATCHES "^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*$" OR length GREATER 48)
    message(FATAL_ERROR "sofie_add_model(${TARGET}): '${name}' is not usable as a C++ namespace; "
                        "give NAME: letters, digits and single underscores, starting with a letter, at most 48 characters")
  endif()
  set(cname "${name}")
  if(NOT ARG_WEIGHTS)
    set(ARG_WEIGHTS file)
  endif()
  if(NOT ARG_WEIGHTS MATCHES "^(file|embed)$")
    message(FATAL_ERROR "sofie_add_model(${TARGET}): WEIGHTS must be file or embed (got ${ARG_WEIGHTS})")
  endif()
  if(ARG_OUTPUT_DIR)
    get_filename_component(dir "${ARG_OUTPUT_DIR}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
  else()
    set(dir "${CMAKE_CURRENT_BINARY_DIR}/sofie/${TARGET}")
  endif()
  set(header "${dir}/${name}.hxx")
  set(outputs "${header}")
  if(ARG_WEIGHTS STREQUAL "file")
    set(weights "${dir}/${name}.weights")
    list(APPEND outputs "${weights}")
  endif()

  add_custom_command(
    OUTPUT ${outputs}
    COMMAND "${SOFIE_EXECUTABLE}" compile "${model}" -o "${dir}" --name "${name}" --weights ${ARG_WEIGHTS} ${ARG_OPTIONS}
    DEPENDS "${model}" "${SOFIE_EXECUTABLE}"
    COMMENT "sofie: compiling ${ARG_MODEL} to ${name}.hxx"
    VERBATIM)
  add_custom_target(${TARGET}_sofie DEPENDS ${outputs})

  add_library(${TARGET} INTERFACE)
  add_dependencies(${TARGET} ${TARGET}_sofie)
  target_include_directories(${TARGET} INTERFACE "${dir}")
  target_compile_features(${TARGET} INTERFACE cxx_std_17)
  set_target_properties(${TARGET} PROPERTIES SOFIE_HEADER "${header}")
  if(ARG_WEIGHTS STREQUAL "file")
    string(TOUPPER "${cname}" upper)
    target_compile_definitions(${TARGET} INTERFACE "SOFIE_${upper}_WEIGHTS=\"${weights}\"")
    set_target_properties(${TARGET} PROPERTIES SOFIE_WEIGHTS "${weights}")
  endif()
endfunction()
