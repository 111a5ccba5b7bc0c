"""Small helpers shared by the demos: CSV output, figure setup, command-line arguments."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from simulator.errors import output_folder


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> Path:
    with Path(path).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row[key] for key in columns})
    return Path(path)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out: Path, name: str) -> Path:
    """Lay out, save as ``out/NAME.png`` at 120 dpi, close; return the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(out) / f"{name}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def output_dir(out) -> Path:
    return output_folder("out_dir", out)


def main_for(run, doc: str, argv=None):
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("--out", default="out", help="output folder (default: out)")
    parser.add_argument("--quick", action="store_true", help="small problem (under 90 s on a laptop CPU)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:0 ... (default: Warp's preferred device)")
    args = parser.parse_args(argv)
    result = run(args.out, quick=args.quick, device=args.device)
    print(f"wrote {result['png']} and {result['csv']}")
