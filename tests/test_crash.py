"""Kill -9 a real `semsearch index` at seeded random moments: the index stays consistent and the next run finishes it.

Each sequence kills 10 runs on one index while its corpus changes under it (files added, edited,
touched, renamed, deleted), checks the index after every kill, then lets one run finish and compares
the result with a clean build made once per session. benchmarks/crash_trials.py runs many more.
"""

from __future__ import annotations

import pytest
from crashkit import DEFAULT_TRIALS, clean_build, run_sequence


@pytest.fixture(scope="session")
def clean(tmp_path_factory):
    return clean_build(tmp_path_factory.mktemp("clean-build"))


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("seed", [7, 8])
def test_index_killed_at_random_moments_stays_consistent_and_finishes_like_a_clean_build(seed, clean, tmp_path):
    lines: list[str] = []
    result = run_sequence(seed, tmp_path / "killed", clean, DEFAULT_TRIALS, log=lines.append)
    report = "\n".join(lines)
    assert len(result.trials) == DEFAULT_TRIALS
    assert sum(t.killed for t in result.trials) >= DEFAULT_TRIALS // 2, report  # most runs really were killed
    assert result.inconsistent == 0, report
    assert result.final_problems == [], report
