#===- attn_run_e2e.cmake - attn-randn -> attn-run on the fake library -----===#
#
# cmake -DATTN_RUN=... -DATTN_RANDN=... -DLIB=... -DWORK=... -P this file.
# Generates weights and inputs, runs the (only) model with --repeat and
# --threads, and checks that a float64 input fails with exit status 1 and a
# message naming both dtypes, that --copy-weights gives the same output, and
# that a FIFO as weights or input is refused at once, and --memory-limit.
#
#===------------------------------------------------------------------------===#
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

function(run expect_rc)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc
    OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL expect_rc)
    message(FATAL_ERROR "`${ARGN}` exited with ${rc}, expected ${expect_rc}\n"
      "stdout: ${out}\nstderr: ${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
  set(err "${err}" PARENT_SCOPE)
endfunction()

run(0 ${ATTN_RANDN} ${LIB} --seed 7 --size B=2 --size S=5
  --weights ${WORK}/w.safetensors --inputs-dir ${WORK}/in)
foreach(f w.safetensors in/x.npy in/lengths.npy)
  if(NOT EXISTS ${WORK}/${f})
    message(FATAL_ERROR "attn-randn did not write ${f}")
  endif()
endforeach()

run(0 ${ATTN_RUN} ${LIB} --weights ${WORK}/w.safetensors
  --input x=${WORK}/in/x.npy --input lengths=${WORK}/in/lengths.npy
  --output ${WORK}/y.npy --repeat 5 --threads 1)
if(NOT out MATCHES "axpy: median [0-9.]+ ms over 5 runs")
  message(FATAL_ERROR "no median time printed: ${out}")
endif()
file(SIZE ${WORK}/y.npy y_size)
if(NOT y_size EQUAL 288) # 128-byte header + 2*5*4 floats
  message(FATAL_ERROR "y.npy has ${y_size} bytes, expected 288")
endif()

# A float64 array for the f32 input: "got float64 (<f8)" and exit 1.
file(READ ${WORK}/in/x.npy x_hex HEX)
string(REPLACE "3c6634" "3c6638" f8_hex "${x_hex}") # '<f4' -> '<f8'
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" f8_bytes "${f8_hex}")
file(WRITE ${WORK}/x64.npy "")
execute_process(COMMAND printf "${f8_bytes}" OUTPUT_FILE ${WORK}/x64.npy)
run(1 ${ATTN_RUN} ${LIB} --weights ${WORK}/w.safetensors
  --input x=${WORK}/x64.npy --input lengths=${WORK}/in/lengths.npy
  --output ${WORK}/y.npy)
if(NOT err MATCHES "input 'x': got float64 \\(<f8\\) but the model expects f32 \\(<f4\\)")
  message(FATAL_ERROR "unexpected message: ${err}")
endif()

# A missing weights file for a model with params.
run(1 ${ATTN_RUN} ${LIB} --input x=${WORK}/in/x.npy
  --input lengths=${WORK}/in/lengths.npy)
if(NOT err MATCHES "pass --weights")
  message(FATAL_ERROR "unexpected message: ${err}")
endif()

# A weights file holding a tensor the model does not use (a checkpoint with
# more than the model): bound as Hugging Face does, the extra one ignored
# with a note on stderr, and the model runs with w = [1, 2, 3, 4].
set(json "{\"extra.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[4,20]}}")
string(LENGTH "${json}" n)
math(EXPR pad "(8 - ${n} % 8) % 8")
string(REPEAT " " ${pad} spaces)
string(APPEND json "${spaces}")
math(EXPR n "${n} + ${pad}")
math(EXPR n_hex "${n}" OUTPUT_FORMAT HEXADECIMAL) # < 256: one byte
string(SUBSTRING "${n_hex}" 2 -1 n_hex)
string(LENGTH "${n_hex}" digits)
if(digits EQUAL 1)
  set(n_hex "0${n_hex}")
endif()
execute_process(COMMAND printf
  "\\x${n_hex}\\x00\\x00\\x00\\x00\\x00\\x00\\x00%s\\x00\\x00\\x00\\x00\\x00\\x00\\x80\\x3f\\x00\\x00\\x00\\x40\\x00\\x00\\x40\\x40\\x00\\x00\\x80\\x40"
  "${json}" OUTPUT_FILE ${WORK}/w_extra.safetensors)
run(0 ${ATTN_RUN} ${LIB} --weights ${WORK}/w_extra.safetensors
  --input x=${WORK}/in/x.npy --input lengths=${WORK}/in/lengths.npy
  --output ${WORK}/y_extra.npy)
if(NOT err MATCHES "note: .*w_extra.safetensors holds 1 tensor that model 'axpy' does not use \\(ignored\\): 'extra.bias'")
  message(FATAL_ERROR "no note on the unused tensor: ${err}")
endif()

# No --output: the model runs, and a note says what was not written.
run(0 ${ATTN_RUN} ${LIB} --weights ${WORK}/w.safetensors
  --input x=${WORK}/in/x.npy --input lengths=${WORK}/in/lengths.npy)
if(NOT err MATCHES "note: no --output given; computed y \\[2, 5, 4\\], not written")
  message(FATAL_ERROR "no note on the unwritten output: ${err}")
endif()

# --copy-weights reads the weights into memory: the same output.
run(0 ${ATTN_RUN} ${LIB} --weights ${WORK}/w.safetensors --copy-weights
  --input x=${WORK}/in/x.npy --input lengths=${WORK}/in/lengths.npy
  --output ${WORK}/y_copy.npy)
file(SHA256 ${WORK}/y.npy y_hash)
file(SHA256 ${WORK}/y_copy.npy y_copy_hash)
if(NOT y_hash STREQUAL y_copy_hash)
  message(FATAL_ERROR "--copy-weights changed the output")
endif()

# A FIFO (nobody writes to it) as weights or as an input: an error at once,
# not a read that blocks forever (TIMEOUT guards the old behaviour).
execute_process(COMMAND mkfifo ${WORK}/fifo RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "mkfifo failed")
endif()
foreach(args "--weights;${WORK}/fifo;--input;x=${WORK}/in/x.npy"
             "--weights;${WORK}/w.safetensors;--input;x=${WORK}/fifo")
  execute_process(COMMAND ${ATTN_RUN} ${LIB} ${args}
    --input lengths=${WORK}/in/lengths.npy
    RESULT_VARIABLE rc ERROR_VARIABLE err TIMEOUT 20)
  if(NOT rc EQUAL 1 OR NOT err MATCHES "fifo is a FIFO; weights and .npy files must be regular files")
    message(FATAL_ERROR "a FIFO in `${args}`: exit ${rc}, stderr: ${err}")
  endif()
endforeach()

# --memory-limit: B=2, S=5 needs inputs 168 + output 160 + scratch 80 bytes.
run(1 ${ATTN_RUN} ${LIB} --weights ${WORK}/w.safetensors --memory-limit 407
  --input x=${WORK}/in/x.npy --input lengths=${WORK}/in/lengths.npy)
if(NOT err MATCHES "model 'axpy': the call needs 408 bytes \\(inputs 168, outputs 160, scratch 80\\) for B=2, S=5, above the memory limit of 407 bytes")
  message(FATAL_ERROR "--memory-limit 407: ${err}")
endif()
run(0 ${ATTN_RUN} ${LIB} --weights ${WORK}/w.safetensors --memory-limit 1K
  --input x=${WORK}/in/x.npy --input lengths=${WORK}/in/lengths.npy)
run(1 ${ATTN_RUN} ${LIB} --memory-limit 12X)
if(NOT err MATCHES "--memory-limit expects a byte count > 0 with an optional K, M or G suffix, got '12X'")
  message(FATAL_ERROR "--memory-limit 12X: ${err}")
endif()
