"""``python -m simulator bench md [--json] [--quick]`` (minimal entry point; the CLI proper lives elsewhere)."""

import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) >= 2 and argv[0] == "bench" and argv[1] == "md":
        from .bench.md import main as bench_md

        return bench_md(argv[2:])
    print("usage: python -m simulator bench md [--json] [--quick] [--device DEVICE]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
