"""The code must run on CUDA unchanged. Without a GPU, NVRTC (bundled with warp-lang) still
compiles every kernel module to PTX for a current architecture, which catches CUDA-only build
errors (types, atomics, intrinsics) that the CPU build accepts."""

import importlib

import pytest
import warp as wp

# every module with kernels (simulator.kernels.math holds only functions, compiled into these)
MODULES = ["simulator.kernels.rigid", "simulator.kernels.control", "simulator.kernels.articulation", "simulator.kernels.md_neighbors",
           "simulator.kernels.md"]


def test_every_kernel_module_compiles_for_cuda(tmp_path):
    wp.init()
    src = getattr(wp, "_src", None)
    runtime = src.context.runtime if src is not None else wp.context.runtime
    archs = sorted(getattr(runtime, "nvrtc_supported_archs", None) or [])
    if not archs:
        pytest.skip("this warp-lang build cannot compile CUDA (no NVRTC)")
    arch = 90 if 90 in archs else archs[-1]
    for name in MODULES:
        module = importlib.import_module(name)
        paths = wp.compile_aot_module(module, arch=arch, module_dir=tmp_path, use_ptx=True)
        assert paths and all(p.exists() and p.stat().st_size > 0 for p in paths), name
