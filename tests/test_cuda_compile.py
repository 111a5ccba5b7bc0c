"""The code must run on CUDA unchanged. Without a GPU, NVRTC (bundled with warp-lang) still
compiles every kernel module to PTX for a current architecture, which catches CUDA-only build
errors (types, atomics, intrinsics) that the CPU build accepts."""

import importlib
import pkgutil

import pytest
import warp as wp

import simulator.kernels
from simulator.md.potentials import warp_runtime


def kernel_modules() -> list:
    """Every module of ``simulator.kernels`` that registers kernels (``math`` and
    ``md_potentials`` hold only functions, compiled into the others; ``constants`` holds enums and
    ``md`` gathers the md_* modules): none is left out by name."""
    modules = [importlib.import_module(f"simulator.kernels.{info.name}") for info in pkgutil.iter_modules(simulator.kernels.__path__)]
    return [m for m in modules if wp.get_module(m.__name__).kernels]


def test_every_kernel_module_compiles_for_cuda(tmp_path):
    wp.init()
    archs = sorted(getattr(warp_runtime(), "nvrtc_supported_archs", None) or [])
    if not archs:
        pytest.skip("this warp-lang build cannot compile CUDA (no NVRTC)")
    arch = 90 if 90 in archs else archs[-1]
    modules = kernel_modules()
    expected = {"rigid", "control", "articulation", "md_neighbors", "md_pairs", "md_integrators", "md_adjoints", "md_observables"}
    assert {m.__name__.rsplit(".", 1)[1] for m in modules} >= expected
    for module in modules:
        paths = wp.compile_aot_module(module, arch=arch, module_dir=tmp_path, use_ptx=True)
        assert paths and all(p.exists() and p.stat().st_size > 0 for p in paths), module.__name__
