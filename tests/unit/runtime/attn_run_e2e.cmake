#===- attn_run_e2e.cmake - attn-randn -> attn-run on the fake library -----===#
#
# cmake -DATTN_RUN=... -DATTN_RANDN=... -DLIB=... -DWORK=... -P this file.
# Generates weights and inputs, runs the (only) model with --repeat and
# --threads, and checks that a float64 input fails with exit status 1 and a
# message naming both dtypes.
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
