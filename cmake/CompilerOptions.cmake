# Warnings and sanitizers, applied to the project's own targets through
# notify_project_options (generated protobuf code gets the sanitizers only).

find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
endif()

add_library(notify_project_options INTERFACE)
target_compile_options(notify_project_options INTERFACE -Wall -Wextra -Wpedantic
                                                        -Wshadow -Wnon-virtual-dtor)
if(NOTIFY_WERROR)
  target_compile_options(notify_project_options INTERFACE -Werror)
endif()

if(NOTIFY_SANITIZE)
  message(STATUS "Sanitizers: ${NOTIFY_SANITIZE}")
  add_compile_options(-fsanitize=${NOTIFY_SANITIZE} -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${NOTIFY_SANITIZE})
endif()
