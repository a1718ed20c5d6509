# dngen CMake functions: turn a YAML network spec into a trainer at build time.
#
#   dngen_generate(<out.c> SPEC <spec.yaml> [STANDALONE] [OPTIONS <arg>...])
#   dngen_add_trainer(<target> SPEC <spec.yaml> [OUTPUT <file.c>] [STANDALONE]
#                     [OPTIONS <arg>...])
#
# Both use the targets dngen::dngen and dngen::dnrt: ALIAS targets inside the
# dngen build (add_subdirectory), IMPORTED targets after find_package(dngen).
# Relative SPEC paths are taken from the current source directory, relative
# outputs from the current binary directory. OPTIONS are extra dngen
# command-line arguments. See docs/cmake.md.
include_guard(GLOBAL)

option(DNGEN_NATIVE "Build dngen trainers with -march=native (not portable across CPUs)" OFF)

# One build rule per generated file, like flatbuffers_generate_headers: the
# file is regenerated exactly when dngen or the spec changes, never on every
# build. dngen embeds its templates and runtime sources, so depending on the
# executable also covers template changes.
function(dngen_generate out)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "STANDALONE" "SPEC" "OPTIONS")
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "dngen_generate: unexpected arguments: ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT ARG_SPEC)
    message(FATAL_ERROR "dngen_generate(${out}): SPEC <file.yaml> is required")
  endif()
  if(NOT TARGET dngen::dngen)
    message(FATAL_ERROR "dngen_generate: no target dngen::dngen; call find_package(dngen) first")
  endif()
  get_filename_component(spec "${ARG_SPEC}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  get_filename_component(out "${out}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
  get_filename_component(spec_name "${spec}" NAME)
  get_filename_component(out_name "${out}" NAME)
  get_filename_component(out_dir "${out}" DIRECTORY)
  file(MAKE_DIRECTORY "${out_dir}")
  set(flags ${ARG_OPTIONS})
  if(ARG_STANDALONE)
    list(APPEND flags --standalone)
  endif()
  # dngen records the spec path in the generated file; a path relative to the
  # source directory keeps the output independent of where the tree lives.
  file(RELATIVE_PATH spec_rel "${CMAKE_CURRENT_SOURCE_DIR}" "${spec}")
  add_custom_command(
    OUTPUT "${out}"
    COMMAND dngen::dngen "${spec_rel}" -o "${out}" ${flags}
    DEPENDS dngen::dngen "${spec}"
    WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}"
    COMMENT "Generating ${out_name} from ${spec_name} with dngen"
    VERBATIM)
endfunction()

# Generates <target>.c (or OUTPUT) from SPEC and builds it into an executable.
# A regular trainer links dngen::dnrt (which brings OpenMP, zlib, libm and the
# runtime headers); a STANDALONE one contains the runtime and links only those.
function(dngen_add_trainer target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "STANDALONE" "SPEC;OUTPUT" "OPTIONS")
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "dngen_add_trainer(${target}): unexpected arguments: ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT ARG_SPEC)
    message(FATAL_ERROR "dngen_add_trainer(${target}): SPEC <file.yaml> is required")
  endif()
  if(NOT ARG_OUTPUT)
    set(ARG_OUTPUT "${target}.c")
  endif()
  get_filename_component(out "${ARG_OUTPUT}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
  set(standalone)
  if(ARG_STANDALONE)
    set(standalone STANDALONE)
  endif()
  dngen_generate("${out}" SPEC "${ARG_SPEC}" ${standalone} OPTIONS ${ARG_OPTIONS})

  add_executable(${target} "${out}")
  if(ARG_STANDALONE)
    # Imported targets are directory-scoped: find them here if this directory
    # cannot see them yet (e.g. dngen was added with add_subdirectory).
    if(NOT TARGET OpenMP::OpenMP_C)
      find_package(OpenMP REQUIRED COMPONENTS C)
    endif()
    if(NOT TARGET ZLIB::ZLIB)
      find_package(ZLIB REQUIRED)
    endif()
    target_link_libraries(${target} PRIVATE OpenMP::OpenMP_C ZLIB::ZLIB m)
  else()
    target_link_libraries(${target} PRIVATE dngen::dnrt)
  endif()
  # Target options come after CMAKE_C_FLAGS_<CONFIG>, so -O2 is the default;
  # a later target_compile_options(<target> PRIVATE -O3) overrides it.
  set(gcc_like "$<C_COMPILER_ID:GNU,Clang,AppleClang,IntelLLVM>")
  target_compile_options(${target} PRIVATE "$<${gcc_like}:-O2>")
  if(DNGEN_NATIVE)
    target_compile_options(${target} PRIVATE "$<${gcc_like}:-march=native>")
  endif()
endfunction()
