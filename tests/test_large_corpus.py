"""Streaming: memory stays flat over an epoch of a corpus of a few hundred MB."""

import json
import os
import subprocess
import sys

import pytest

BENCHMARK = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "pipeline_memory.py")


@pytest.mark.slow
def test_pipeline_memory_stays_flat_over_a_large_corpus(tmp_path):
    result = subprocess.run([sys.executable, BENCHMARK, "--megabytes", "300",
                             "--workdir", str(tmp_path)],
                            capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["corpus_mb"] >= 300 and figures["pairs_seen"] > 0.99 * figures["pairs"]
    # The corpus is larger than the whole process; a pipeline that read it
    # whole would grow by hundreds of MB after the first tenth.
    assert figures["growth_mb_after_10_percent"] < 100, figures
