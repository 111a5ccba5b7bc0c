"""Command-line interface: ``python -m simulator {info,demo,bench,optimize} ...`` (also the
``gradsim`` console script). User mistakes print one ``error:`` line and exit with status 2."""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import ParameterError, output_folder

BENCHMARKS = ("rigid", "md", "mjcf")


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
        raise ParameterError(f"unknown demo {args.name!r}; available: {', '.join(DEMOS)}")
    output_folder("--out", args.out)
    module = importlib.import_module(f"simulator.demos.{args.name}")
    result = module.run(args.out, quick=args.quick, device=args.device)
    print(f"wrote {result['png']} and {result['csv']}")
    return 0


def _bench(args) -> int:
    try:
        module = importlib.import_module(f"simulator.bench.{args.name}")
    except ModuleNotFoundError as exc:
        raise ParameterError(f"benchmark {args.name!r} is not available in this version ({exc})") from exc
    forwarded = (["--json"] if args.json else []) + (["--quick"] if args.quick else [])
    forwarded += ["--device", args.device] if args.device else []
    return module.main(forwarded) or 0


def _optimize(args) -> int:
    import numpy as np

    import simulator as sim
    from simulator.scenes import list_scenes, make

    robots = ("pendulum", "cartpole", "acrobot", "hopper", "ant")
    if args.scene not in robots:
        raise ParameterError(f"scene must be a robot scene with a task: one of {', '.join(robots)}, got {args.scene!r} "
                             f"(scenes: {', '.join(list_scenes())})")
    output_folder("--out", args.out)
    options = {"precision": args.precision, "device": args.device}
    controller = None
    if args.controller == "linear":
        controller = sim.LinearJointFeedback.for_model(make(args.scene, **options).model)
    elif args.controller == "mlp":
        controller = sim.MLPJointPolicy.for_model(make(args.scene, **options).model)
    objective = sim.SceneTaskObjective(args.scene, controller=controller, num_steps=args.horizon, **options)
    estimator_options = {}
    if args.estimator in ("es", "hybrid", "auto"):
        estimator_options.update(sigma=args.sigma, population=args.population)
    if args.estimator == "truncated":
        estimator_options.update(window=args.window)
    theta0 = controller.initial_parameters() if hasattr(controller, "initial_parameters") else np.zeros(objective.num_parameters)
    result = sim.optimize(objective, theta0, estimator=args.estimator,
                          iterations=args.iterations, learning_rate=args.lr, out_dir=args.out, **estimator_options)
    if result.history:
        last = result.history[-1]
        print(f"iteration {int(last['iteration'])}: loss {float(last['loss']):.6g}; log and checkpoint in {args.out}")
    return 130 if result.interrupted else 0


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

    opt = commands.add_parser(
        "optimize",
        help="train a controller on a robot scene's task with any gradient estimator",
        description="Adam on the scene's task loss. Writes log.csv and checkpoint.npz into --out; "
        "running the same command again resumes from the checkpoint.",
    )
    opt.add_argument("scene", help="pendulum, cartpole, acrobot, hopper or ant")
    opt.add_argument("--estimator", default="analytic", help="analytic, truncated, es, hybrid or auto (default analytic)")
    opt.add_argument("--iterations", type=int, default=100, help="total iterations (default 100)")
    opt.add_argument("--lr", type=float, default=0.05, help="Adam learning rate (default 0.05)")
    opt.add_argument("--controller", choices=("open_loop", "linear", "mlp"), default="open_loop",
                     help="open-loop actions per step, linear joint feedback, or a 32x32 tanh MLP on [q, qd] (default open_loop)")
    opt.add_argument("--horizon", type=int, default=None, help="control steps (default: the task's)")
    opt.add_argument("--sigma", type=float, default=0.1, help="ES smoothing std (default 0.1)")
    opt.add_argument("--population", type=int, default=32, help="ES population, even (default 32)")
    opt.add_argument("--window", type=int, default=10, help="truncation window in steps (default 10)")
    opt.add_argument("--precision", choices=("float32", "float64"), default="float64")
    opt.add_argument("--out", default="out/optimize", help="folder for log.csv and checkpoint.npz")
    opt.add_argument("--device", default=None, help="cpu, cuda, ... (default: Warp's preferred)")
    opt.set_defaults(handler=_optimize)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "json", False):
        import warp as wp

        wp.config.quiet = True  # stdout carries one JSON object: Warp's start-up and module-load lines stay off it
    try:
        return args.handler(args)
    except (ValueError, FileNotFoundError) as exc:  # user mistakes: one clear line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
