"""Experiment statistics, simulated in process: `make bench` runs it (a script, never a timed test).

Two scenarios, each over many repeated experiments fed through the report the CLI prints
(sidecar/experiments/report.py): (1) variant B is truly better by Cohen's d = 0.3 on the feedback
score; with alpha 0.05 and power 0.8 a two-sided test needs about n = 2 (1.96 + 0.84)^2 / 0.3^2 = 175
calls per variant, so at n = 175 about 80 % of runs should reach significance (and far fewer at n/4);
(2) an A/A run (both variants the same) should reach significance in about alpha = 5 % of runs.
PASS when the power at n is within 0.70..0.90 and the A/A rate within 3 binomial standard errors of
alpha.
"""

from __future__ import annotations

import argparse
import math
import random
import sys

from sidecar.config.experiments import ExperimentConfig
from sidecar.experiments.report import Verdict, build_report
from sidecar.ledger.record import ExperimentRow

Z_ALPHA, Z_POWER = 1.959964, 0.841621  # two-sided alpha 0.05, power 0.8


def experiment(min_samples: int) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "route": "chat",
            "control": "a",
            "variants": {"a": {}, "b": {}},
            "min_samples": min_samples,
            "alpha": 0.05,
            "gates": {"max_cost_increase": 10.0},
        }
    )


def rows(rng: random.Random, n: int, shift: float) -> list[ExperimentRow]:
    def row(variant: str, mean: float) -> ExperimentRow:
        return ExperimentRow(variant, True, rng.uniform(0.1, 0.3), 100, 0.001, rng.gauss(mean, 1.0))

    return [row("a", 0.0) for _ in range(n)] + [row("b", shift) for _ in range(n)]


def significant_share(rng: random.Random, runs: int, n: int, shift: float) -> float:
    exp = experiment(min(n, 100))
    hits = 0
    for _ in range(runs):
        verdict = build_report("bench", exp, rows(rng, n, shift)).verdicts[0].verdict
        hits += verdict in (Verdict.PROMOTE, Verdict.REJECT)
    return hits / runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--effect", type=float, default=0.3, help="Cohen's d of the better variant")
    parser.add_argument("--runs", type=int, default=400, help="repeated experiments per scenario")
    parser.add_argument("--aa-runs", type=int, default=1000)
    args = parser.parse_args()
    rng = random.Random(11)
    n = math.ceil(2 * (Z_ALPHA + Z_POWER) ** 2 / args.effect**2)
    power = significant_share(rng, args.runs, n, args.effect)
    early = significant_share(rng, args.runs, max(2, n // 4), args.effect)
    aa = significant_share(rng, args.aa_runs, n, 0.0)
    se = math.sqrt(0.05 * 0.95 / args.aa_runs)
    out = sys.stdout
    out.write(f"experiment significance (simulated, {args.runs} runs per point, Welch's t, alpha 0.05)\n")
    out.write(f"B better by d={args.effect}: expected n per variant {n}; significant at n={n}: {power:.1%}\n")
    out.write(f"  at n={max(2, n // 4)}: {early:.1%}\n")
    out.write(
        f"A/A at n={n}, {args.aa_runs} runs: significant {aa:.1%} (alpha 5.0 %, +-{3 * se:.1%} allowed)\n"
    )
    ok = 0.70 <= power <= 0.90 and abs(aa - 0.05) <= 3 * se and early < power
    out.write(("PASS" if ok else "FAIL") + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
