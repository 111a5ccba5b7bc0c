"""Demos reproducing the package's claims; each module has ``run(out_dir, *, quick, device)``.

Installed as ``simulator.demos`` and run with ``python -m simulator demo NAME``; each file also
runs as a script (``python demos/NAME.py --out DIR``). Demos call only the public API.
"""

DEMOS = ("contact_softening",)
