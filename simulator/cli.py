"""Command-line interface: ``python -m simulator {info,demo,bench,optimize,train,evaluate,render} ...``
(also the ``gradsim`` console script). User mistakes print one ``error:`` line and exit with status 2."""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import ParameterError, output_folder

BENCHMARKS = ("rigid", "md", "mjcf", "rl")


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


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--hidden must be comma-separated layer sizes such as 64,64, got {text!r}") from exc
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--hidden sizes must be positive, got {text!r}")
    return sizes


def _print_summary(summary: dict) -> None:
    print(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items()))


def _train(args) -> int:
    from simulator.rl import episode_tasks
    from simulator.rl.training import evaluate_policy, train

    if args.task not in episode_tasks():
        raise ParameterError(f"task must be one of {', '.join(episode_tasks())}, got {args.task!r}")
    output_folder("--out", args.out)
    policy = {"kind": "mlp", "hidden": list(args.hidden)} if args.policy == "mlp" else "linear"
    options = {}
    if args.estimator in ("es", "hybrid", "auto"):
        options.update(sigma=args.sigma, population=args.population)
    if args.estimator == "truncated":
        options.update(window=args.window)
    objective, result = train(args.task, policy=policy, estimator=args.estimator, iterations=args.iterations, learning_rate=args.lr,
                              horizon=args.horizon, out_dir=args.out, seed=args.seed, device=args.device, clip_norm=args.clip_norm,
                              survival_shift=args.survival_shift,
                              **options)
    summary = evaluate_policy(objective, result.theta, episodes=args.eval_episodes)
    print(f"policy and log in {args.out}; evaluation on fresh starts:")
    _print_summary(summary)
    return 130 if result.interrupted else 0


def _evaluate(args) -> int:
    from simulator.rl.training import evaluate_policy, load_policy

    objective, theta = load_policy(args.policy, device=args.device)
    horizons = [objective.num_steps] + ([args.horizon] if args.horizon and args.horizon != objective.num_steps else [])
    for horizon in horizons:
        summary = evaluate_policy(objective, theta, episodes=args.episodes, seed=args.seed, horizon=horizon)
        _print_summary({"task": objective.task.name, **summary})
    return 0


def _render(args) -> int:
    from simulator.render import save_gif
    from simulator.rl.training import load_policy, record_episode

    objective, theta = load_policy(args.policy, device=args.device)
    model, trajectory = record_episode(objective, theta, seed=args.seed, horizon=args.horizon)
    every = max(1, round(1.0 / (args.fps * trajectory.dt)))
    path = save_gif(model, trajectory, args.out, view=args.view, fps=args.fps, every=every)
    print(f"wrote {path} ({trajectory.num_steps} steps, {trajectory.num_steps * trajectory.dt:.2f} s)")
    return 0


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

    tr = commands.add_parser(
        "train",
        help="train a policy on an episodic task (hopper, walker2d, half_cheetah, ant, inverted_pendulum, swing-ups)",
        description="Adam on minus the episode return of a policy (simulator.rl). Writes log.csv, checkpoint.npz, best.npz, "
        "policy.npz and best_policy.npz into --out; running the same command again resumes.",
    )
    tr.add_argument("task", help="hopper, walker2d, half_cheetah, ant, inverted_pendulum, pendulum_swingup, cartpole_swingup, acrobot_swingup")
    tr.add_argument("--estimator", default="es", help="es (default), analytic, truncated, hybrid or auto")
    tr.add_argument("--window", type=int, default=10, help="truncation window in steps (default 10)")
    tr.add_argument("--policy", choices=("linear", "mlp"), default="linear", help="linear (ARS-style) or a tanh MLP (default linear)")
    tr.add_argument("--hidden", type=_hidden, default=(64, 64), help="MLP hidden sizes, comma-separated (default 64,64)")
    tr.add_argument("--iterations", type=int, default=200, help="total iterations (default 200)")
    tr.add_argument("--lr", type=float, default=0.02, help="Adam learning rate (default 0.02)")
    tr.add_argument("--sigma", type=float, default=0.05, help="ES smoothing std (default 0.05)")
    tr.add_argument("--population", type=int, default=32, help="ES population, even (default 32)")
    tr.add_argument("--horizon", type=int, default=None, help="episode steps at most (default: the task's)")
    tr.add_argument("--survival-shift", type=float, default=0.0,
                    help="subtract this from every step's reward in the training loss (ARS's shift; 1 for hopper, walker2d, ant)")
    tr.add_argument("--clip-norm", type=float, default=None, help="clip every gradient estimate to this norm")
    tr.add_argument("--seed", type=int, default=0, help="seed of the initial parameters, noise and starts (default 0)")
    tr.add_argument("--eval-episodes", type=int, default=8, help="episodes of the final evaluation (default 8)")
    tr.add_argument("--out", default="out/train", help="output folder (default out/train)")
    tr.add_argument("--device", default=None, help="cpu, cuda, ... (default: Warp's preferred)")
    tr.set_defaults(handler=_train)

    ev = commands.add_parser("evaluate", help="evaluate a saved policy on fresh starts")
    ev.add_argument("policy", help="a policy .npz or a train --out folder")
    ev.add_argument("--episodes", type=int, default=8, help="episodes (default 8)")
    ev.add_argument("--horizon", type=int, default=None, help="also evaluate at this horizon (e.g. twice the trained one)")
    ev.add_argument("--seed", type=int, default=1_000_000, help="seed of the starts (default 1000000)")
    ev.add_argument("--device", default=None, help="cpu, cuda, ... (default: Warp's preferred)")
    ev.set_defaults(handler=_evaluate)

    rd = commands.add_parser("render", help="render one episode of a saved policy as a GIF")
    rd.add_argument("policy", help="a policy .npz or a train --out folder")
    rd.add_argument("--out", default="out/policy.gif", help="GIF path (default out/policy.gif)")
    rd.add_argument("--horizon", type=int, default=None, help="steps (default: the policy's horizon)")
    rd.add_argument("--view", choices=("side", "front", "top"), default="side", help="projection (default side)")
    rd.add_argument("--fps", type=int, default=25, help="frames per second (default 25)")
    rd.add_argument("--seed", type=int, default=1_000_000, help="seed of the start")
    rd.add_argument("--device", default=None, help="cpu, cuda, ... (default: Warp's preferred)")
    rd.set_defaults(handler=_render)
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
