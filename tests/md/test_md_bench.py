"""The MD benchmark's driver: JSON schema and table, with the measuring subprocesses stubbed."""

import json

from simulator.bench import md as bench


def test_bench_json_schema_and_missing_peer(monkeypatch, capsys):
    calls = []

    def fake_spawn(args, timeout=0):
        calls.append(args)
        if args[0] == "peer":
            seconds = {"plain": 0.4, "checkpointed": 0.3}[args[5]]
            return {"peer_particle_steps_per_s": 100.0, "peer_gradient_over_forward": 2.0, "peer_gradient_seconds": seconds,
                    "peer_peak_memory_mb": 50.0 if args[5] == "plain" else 5.0, "peer_gradient_config": args[5]}
        if args[0] == "es":
            assert args[1:4] == ["128", "200", "32"]  # quick: population 32, 200 FIRE steps
            return {"es_gradient_seconds": 0.5, "world_steps_per_s": 12800.0, "forward_seconds_unrecorded": 0.4,
                    "es_over_unrecorded_forward": 1.25, "device": "cpu"}
        return {"particle_steps_per_s": 500.0, "reverse_over_forward": 2.5, "gradient_over_forward": 3.5, "gradient_seconds": 0.1,
                "peak_memory_mb": 5.0, "device": "cpu"}

    monkeypatch.setattr(bench, "_spawn", fake_spawn)
    monkeypatch.setattr(bench, "_peer_available", lambda: True)
    assert bench.main(["--json", "--quick"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["benchmark"] == "md" and out["device"] == "cpu"
    keys = {"case", "n", "particle_steps_per_s", "reverse_over_forward", "peak_memory_mb", "peer",
            "peer_particle_steps_per_s", "peer_peak_memory_mb", "ratio_vs_peer"}
    assert [r["n"] for r in out["rows"]] == [4096, 512, 128]
    for row in out["rows"][:2]:
        assert keys <= set(row)
        assert row["ratio_vs_peer"] == 5.0
    # the packing ES row: no peer, its own columns
    lj, fire, es = out["rows"]
    assert es["case"] == "packing_es_2d" and es["population"] == 32 and es["peer"] is None
    assert es["es_over_unrecorded_forward"] == 1.25 and es["world_steps_per_s"] == 12800.0 and es["es_gradient_seconds"] == 0.5
    # LJ against jax-md's plain gradient; FIRE against the faster of plain and checkpointed
    assert lj["peer_gradient_config"] == "plain" and lj["gradient_ratio_vs_peer"] == 4.0
    assert fire["peer_gradient_config"] == "checkpointed" and fire["peer_peak_memory_mb"] == 5.0
    assert set(fire["peer_gradient_configs"]) == {"plain", "checkpointed"} and abs(fire["gradient_ratio_vs_peer"] - 3.0) < 1e-12
    assert sum(1 for c in calls if c[0] == "peer") == 3

    bench.run(json=False, quick=True)
    table = capsys.readouterr().out
    assert "as fast as jax-md's checkpointed" in table and "plain 0.400 s / 50 MB" in table
    assert "1.25x 32 unrecorded rollouts" in table

    monkeypatch.setattr(bench, "_peer_available", lambda: False)
    bench.run(json=False, quick=True)
    table = capsys.readouterr().out
    assert "peer missing" in table and "lj_fluid_3d" in table and "soft_sphere_fire_2d" in table and "packing_es_2d" in table


def test_packing_es_worker_measures_finite_numbers():
    """The packing ES measurement itself, on a small case (in-process)."""
    out = bench._ours_es(16, 40, 4, "cpu")
    assert out["gradient_finite"] and out["device"] == "cpu"
    for key in ("es_gradient_seconds", "forward_seconds_unrecorded", "es_over_unrecorded_forward", "world_steps_per_s"):
        assert out[key] > 0
    assert abs(out["world_steps_per_s"] * out["es_gradient_seconds"] - 4 * 40) < 1e-6
