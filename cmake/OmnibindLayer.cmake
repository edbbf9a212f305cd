# One precompiled header (ATen core) shared by every torch-using target: built once, reused.
function(omnibind_make_pch)
  add_library(omnibind_torch_pch STATIC ${PROJECT_SOURCE_DIR}/src/omnibind/common/torch_pch.cpp)
  target_link_libraries(omnibind_torch_pch PUBLIC ${TORCH_LIBRARIES})
  target_compile_options(omnibind_torch_pch PUBLIC ${TORCH_CXX_FLAGS})
  target_precompile_headers(omnibind_torch_pch PRIVATE ${PROJECT_SOURCE_DIR}/src/omnibind/common/torch_pch.h)
  set_target_properties(omnibind_torch_pch PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()

# omnibind_layer(NAME [DEPS target...] [TORCH])
# One static library per layer folder src/omnibind/NAME, built from every .cpp under it
# (globbed, so adding a file never means editing CMake). Layers only depend downward.
function(omnibind_layer name)
  cmake_parse_arguments(L "TORCH" "" "DEPS" ${ARGN})
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/${name}/*.cpp")
  if(NOT srcs)
    # A layer that has no code yet still exists as a target so others can name it.
    add_library(omnibind_${name} INTERFACE)
    target_include_directories(omnibind_${name} INTERFACE ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(omnibind_${name} INTERFACE ${L_DEPS})
    return()
  endif()
  add_library(omnibind_${name} STATIC ${srcs})
  target_include_directories(omnibind_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(omnibind_${name} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  target_link_libraries(omnibind_${name} PUBLIC ${L_DEPS} Threads::Threads)
  if(L_TORCH)
    target_link_libraries(omnibind_${name} PUBLIC ${TORCH_LIBRARIES})
    target_compile_options(omnibind_${name} PUBLIC ${TORCH_CXX_FLAGS})
    target_precompile_headers(omnibind_${name} REUSE_FROM omnibind_torch_pch)
  endif()
  set_target_properties(omnibind_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()

# omnibind_test(NAME DEPS target...): tests/NAME/*.cpp -> test_NAME, each TEST registered with CTest.
function(omnibind_test name)
  cmake_parse_arguments(T "" "" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/${name}/*.cpp")
  if(NOT srcs)
    return()
  endif()
  add_executable(test_${name} ${srcs})
  target_link_libraries(test_${name} PRIVATE ${T_DEPS} omnibind_testing GTest::gtest GTest::gtest_main)
  target_compile_options(test_${name} PRIVATE ${TORCH_CXX_FLAGS})
  target_compile_definitions(test_${name} PRIVATE
    OMNIBIND_SHARED_DIR="${OMNIBIND_SHARED_DIR}"
    OMNIBIND_BINARY="$<TARGET_FILE:omnibind>"
    OMNIBIND_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  # Tests that drive the CLI need the binary built first.
  if(name STREQUAL "cli")
    add_dependencies(test_${name} omnibind)
  endif()
  gtest_discover_tests(test_${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60
    PROPERTIES ENVIRONMENT "OMNIBIND_SHARED_DIR=${OMNIBIND_SHARED_DIR}")
endfunction()
