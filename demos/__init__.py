"""Demos reproducing the paper's findings; each module has ``run(out_dir, *, quick, device)``.

Installed as ``simulator.demos`` and run with ``python -m simulator demo NAME [--quick]``; each
file also runs as a script (``python demos/NAME.py --out DIR``). Each writes ``NAME.png`` and
``NAME.csv``. Demos call only the public API.
"""

DEMOS = ("contact_softening", "landscape", "variance", "packing", "control", "lyapunov", "torch_policy", "locomotion")
