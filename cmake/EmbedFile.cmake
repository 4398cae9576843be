# embed_file(<target> <input> <symbol>): compiles <input> into <target> as
#   extern const std::string_view <symbol>;
# regenerated whenever the input changes, so the page is edited as plain HTML.
set(NOTIFY_EMBED_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/embed_file_script.cmake)

function(embed_file target input symbol)
  get_filename_component(name ${input} NAME)
  set(output ${CMAKE_CURRENT_BINARY_DIR}/embedded_${name}.cpp)
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -DINPUT=${input} -DOUTPUT=${output} -DSYMBOL=${symbol}
            -P ${NOTIFY_EMBED_SCRIPT}
    DEPENDS ${input} ${NOTIFY_EMBED_SCRIPT}
    COMMENT "Embedding ${name}")
  target_sources(${target} PRIVATE ${output})
endfunction()
