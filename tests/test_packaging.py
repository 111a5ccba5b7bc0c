"""The wheel installs one top-level package, `simulator`, with kernels/ and scenes/ inside it."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"simulator": "simulator", "kernels": "simulator/kernels", "scenes": "simulator/scenes", "demos": "simulator/demos"}


def _source_packages():
    """Every folder with Python files under the mapped source folders, as its path in the wheel."""
    expected = set()
    for folder, target in MAPPED.items():
        for init in (ROOT / folder).rglob("*.py"):
            if "__pycache__" in init.parts:
                continue
            relative = init.parent.relative_to(ROOT / folder)
            expected.add(str(Path(target) / relative) if str(relative) != "." else target)
    return expected


def test_wheel_contains_every_subpackage_under_simulator(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"simulator"}
    folders = {str(Path(name).parent) for name in names if name.endswith(".py")}
    missing = _source_packages() - folders
    assert not missing, f"subpackages missing from the wheel: {sorted(missing)}"
    assert "simulator/kernels/rigid.py" in names and "simulator/scenes/registry.py" in names
    for folder in MAPPED:
        if folder == "simulator":
            continue
        for name in names:
            assert not name.startswith(folder + "/"), f"{name} would install a top-level {folder!r} module"
