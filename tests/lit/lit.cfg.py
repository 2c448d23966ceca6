# -*- Python -*- lit configuration for attnc's FileCheck tests.
import os
import shutil
import sys
import lit.formats
from lit.llvm import llvm_config

config.name = "attnc"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".attn", ".test"]
config.excludes = ["Inputs", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.attn_obj_root, "tests", "lit")

config.substitutions.append(("%examples", os.path.join(config.attn_src_root, "examples")))
config.substitutions.append(("%scripts", os.path.join(config.attn_src_root, "scripts")))
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.attn_tools_dir, append_path=True)
llvm_config.use_default_substitutions()
llvm_config.add_tool_substitutions(["attn-opt", "attnc"], [config.attn_tools_dir])
config.substitutions.append(("%python", sys.executable))

# ptxas (CUDA toolkit) assembles the PTX of CUDA targets when it is there.
ptxas = shutil.which("ptxas") or (
    "/usr/local/cuda/bin/ptxas" if os.access("/usr/local/cuda/bin/ptxas", os.X_OK) else None)
if ptxas:
    config.available_features.add("ptxas")
    llvm_config.with_environment("PATH", os.path.dirname(ptxas), append_path=True)

# Tests that need gigabytes (a buffer over 2 GiB): opt-in with
# ATTN_BIG_TESTS=1, and only with 10 GiB of memory available.
def mem_available_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / (1 << 20)
    except OSError:
        pass
    return 0
if os.environ.get("ATTN_BIG_TESTS") == "1" and mem_available_gib() >= 10:
    config.available_features.add("large-memory")
