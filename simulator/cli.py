"""Command-line interface: ``python -m simulator {info,demo,bench} ...`` (also the ``gradsim`` script)."""

from __future__ import annotations

import argparse
import importlib
import sys

BENCHMARKS = ("rigid", "md")


def _info(args) -> int:
    import warp as wp

    import simulator

    wp.init()
    print(f"simulator {simulator.__version__} (warp {wp.__version__})")
    print("devices: " + ", ".join(str(d) for d in wp.get_devices()))
    print(f"preferred device: {wp.get_preferred_device()}")
    print(f"warp kernel cache: {wp.config.kernel_cache_dir}")
    return 0


def _demo(args) -> int:
    from simulator.demos import DEMOS

    if args.name not in DEMOS:
        raise ValueError(f"unknown demo {args.name!r}; available: {', '.join(DEMOS)}")
    module = importlib.import_module(f"simulator.demos.{args.name}")
    result = module.run(args.out, quick=args.quick, device=args.device)
    print(f"wrote {result['png']} and {result['csv']}")
    return 0


def _bench(args) -> int:
    try:
        module = importlib.import_module(f"simulator.bench.{args.name}")
    except ModuleNotFoundError as exc:
        raise ValueError(f"benchmark {args.name!r} is not available in this version") from exc
    forwarded = (["--json"] if args.json else []) + (["--quick"] if args.quick else [])
    forwarded += ["--device", args.device] if args.device else []
    return module.main(forwarded) or 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Differentiable rigid-body and molecular-dynamics simulation on Warp.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    info = commands.add_parser("info", help="version, devices and the Warp kernel cache")
    info.set_defaults(handler=_info)

    demo = commands.add_parser("demo", help="run a demo; writes NAME.png and NAME.csv into --out")
    demo.add_argument("name", help="demo name (contact_softening, ...)")
    demo.add_argument("--quick", action="store_true", help="smaller problem, finishes in seconds")
    demo.add_argument("--out", default="out", help="output folder (default: out)")
    demo.add_argument("--device", default=None, help="cpu, cuda, cuda:0 ... (default: Warp's preferred)")
    demo.set_defaults(handler=_demo)

    bench = commands.add_parser("bench", help="benchmarks against a peer library; prints a table")
    bench.add_argument("name", choices=BENCHMARKS, help="which benchmark")
    bench.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    bench.add_argument("--quick", action="store_true", help="smaller sizes")
    bench.add_argument("--device", default=None, help="cpu, cuda, ... (default: Warp's preferred)")
    bench.set_defaults(handler=_bench)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, FileNotFoundError) as exc:  # user mistakes: one clear line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
