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
        return {"particle_steps_per_s": 500.0, "reverse_over_forward": 2.5, "gradient_over_forward": 3.5, "gradient_seconds": 0.1,
                "peak_memory_mb": 5.0, "device": "cpu"}

    monkeypatch.setattr(bench, "_spawn", fake_spawn)
    monkeypatch.setattr(bench, "_peer_available", lambda: True)
    assert bench.main(["--json", "--quick"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["benchmark"] == "md" and out["device"] == "cpu"
    keys = {"case", "n", "particle_steps_per_s", "reverse_over_forward", "peak_memory_mb", "peer",
            "peer_particle_steps_per_s", "peer_peak_memory_mb", "ratio_vs_peer"}
    assert [r["n"] for r in out["rows"]] == [4096, 512]
    for row in out["rows"]:
        assert keys <= set(row)
        assert row["ratio_vs_peer"] == 5.0
    # LJ against jax-md's plain gradient; FIRE against the faster of plain and checkpointed
    lj, fire = out["rows"]
    assert lj["peer_gradient_config"] == "plain" and lj["gradient_ratio_vs_peer"] == 4.0
    assert fire["peer_gradient_config"] == "checkpointed" and fire["peer_peak_memory_mb"] == 5.0
    assert set(fire["peer_gradient_configs"]) == {"plain", "checkpointed"} and abs(fire["gradient_ratio_vs_peer"] - 3.0) < 1e-12
    assert sum(1 for c in calls if c[0] == "peer") == 3

    bench.run(json=False, quick=True)
    table = capsys.readouterr().out
    assert "as fast as jax-md's checkpointed" in table and "plain 0.400 s / 50 MB" in table

    monkeypatch.setattr(bench, "_peer_available", lambda: False)
    bench.run(json=False, quick=True)
    table = capsys.readouterr().out
    assert "peer missing" in table and "lj_fluid_3d" in table and "soft_sphere_fire_2d" in table
