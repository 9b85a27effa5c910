"""Worker of the concurrent-submit test, in a module light enough for spawned processes to import quickly."""

from __future__ import annotations

from lb_factories import KNOWN, make_run, run_text

from scalebench.leaderboard.store import submit_runs

#: Registered classification models, one per worker (the store takes registered models only).
MODELS = ("cnn", "gaussdernet", "resnet20", "resnet32", "gaussderresnet", "njetnet_resnet32")


def submit_worker(store: str, worker: int, barrier) -> list[str]:
    """Wait for every worker, then submit three runs (seeds 0-2 of model ``MODELS[worker]``) one by one."""
    barrier.wait()
    out = []
    for k in range(3):
        run = make_run(seed=k, model=MODELS[worker])
        out += [
            str(o.path) for o in submit_runs([(f"w{worker}-{k}.json", run_text(run))], store, known=KNOWN)
        ]
    return out
