"""Compaction: the files of exited workers folded into one store, exactly, whatever a reader or a kill does."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import mmap_key

from django_prodkit.metrics import compaction, merge, multiproc
from django_prodkit.metrics.files import read_values
from django_prodkit.metrics.merge import merge_directory, sum_files
from tests.test_metrics_store import as_samples, fake_worker, write_worker_file

ROOT = Path(__file__).resolve().parent.parent
OTHER = mmap_key("other_total", "other_total", [], [], "not ours")


def db_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.db"))


def fill(directory: Path, pids: range, seed: int = 3) -> None:
    rng = random.Random(seed)
    for pid in pids:
        fake_worker(directory, pid, rng)


def test_folding_keeps_every_value_and_removes_the_files(tmp_path: Path) -> None:
    fill(tmp_path, range(1, 9))
    before = as_samples(merge_directory(str(tmp_path)))
    for pid in range(1, 6):
        assert compaction.compact(str(tmp_path), pid)
    assert not compaction.compact(str(tmp_path), 5)  # nothing left to fold
    assert db_files(tmp_path) == [f"{kind}_{pid}.db" for kind in ("counter", "histogram") for pid in range(6, 9)]
    assert as_samples(merge_directory(str(tmp_path))) == before
    # The reader's cache of file layouts forgets the folded files: it stays as small as the directory.
    assert sorted(Path(path).name for path in merge._indexes if path.startswith(str(tmp_path))) == db_files(tmp_path)
    stored = compaction.read_compacted(str(tmp_path))
    assert stored.folding == frozenset()
    # Generic over every family in the files: another library's counter is folded too.
    assert stored.values["counter"][OTHER] == 25.0
    for pid in range(6, 9):
        compaction.compact(str(tmp_path), pid)
    assert db_files(tmp_path) == []
    assert as_samples(merge_directory(str(tmp_path))) == before


def test_a_reused_pid_is_counted_after_its_predecessor_was_folded(tmp_path: Path) -> None:
    key = mmap_key("prodkit_http_requests", "prodkit_http_requests_total", ["s"], ["200"], "h")
    write_worker_file(tmp_path, "counter", 7, {key: 3.0})
    compaction.compact(str(tmp_path), 7)
    write_worker_file(tmp_path, "counter", 7, {key: 2.0})
    assert sum_files(str(tmp_path))[key] == 5.0


def test_every_state_a_killed_master_can_leave_reads_exactly(tmp_path: Path) -> None:
    """The hand-over's steps, stopped after each one (what SIGKILL of the master leaves), and the recovery."""
    fill(tmp_path, range(1, 4))
    directory = str(tmp_path)
    expected = sum_files(directory)
    dead = {kind: read_values(str(tmp_path / f"{kind}_2.db")) for kind in ("counter", "histogram")}
    # Step 1 done: the totals hold pid 2 and name it in ``folding``; its files are still there.
    compaction._write(directory, compaction.Compacted(1, frozenset({"2"}), dead))
    assert sum_files(directory) == pytest.approx(expected)
    # Step 2 half done: one of its files is gone.
    (tmp_path / "counter_2.db").unlink()
    assert sum_files(directory) == pytest.approx(expected)
    # A killed writer's temporary file is ignored by readers and removed by the next compaction.
    (tmp_path / f"{compaction.TEMPORARY_PREFIX}x").write_text("partial")
    assert sum_files(directory) == pytest.approx(expected)
    compaction.compact(directory, 3)
    assert sum_files(directory) == pytest.approx(expected)
    assert db_files(tmp_path) == ["counter_1.db", "histogram_1.db"]
    assert compaction.read_compacted(directory).folding == frozenset()
    assert not list(tmp_path.glob(f"{compaction.TEMPORARY_PREFIX}*"))


def test_files_being_born_read_as_empty(tmp_path: Path) -> None:
    key = mmap_key("prodkit_http_requests", "prodkit_http_requests_total", ["s"], ["200"], "h")
    write_worker_file(tmp_path, "counter", 1, {key: 4.0})
    (tmp_path / "counter_2.db").write_bytes(b"")  # created, not yet resized
    (tmp_path / "histogram_3.db").write_bytes(b"\0" * 4096)  # resized, ``used`` not yet written
    (tmp_path / "counter_4.db").write_bytes(b"\x10\0")  # shorter than the header
    assert sum_files(str(tmp_path)) == {key: 4.0}
    for pid in (2, 3, 4):
        compaction.compact(str(tmp_path), pid)
    assert sum_files(str(tmp_path)) == {key: 4.0}


def test_nothing_follows_a_planted_link(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    outside = tmp_path / "victim"
    outside.write_text("precious")
    directory.mkdir()
    for name in (compaction.COMPACTED_FILE, multiproc.STARTED_MARKER, "counter_9.db"):
        (directory / name).symlink_to(outside)
    key = mmap_key("prodkit_http_requests", "prodkit_http_requests_total", ["s"], ["200"], "h")
    write_worker_file(directory, "counter", 1, {key: 1.0})
    # A planted compacted store is neither read nor written through (O_NOFOLLOW): the compaction refuses.
    with pytest.raises(OSError, match="symbolic links"):
        compaction.read_compacted(str(directory))
    with pytest.raises(OSError, match="symbolic links"):
        compaction.compact(str(directory), 1)
    os.remove(directory / compaction.COMPACTED_FILE)
    assert sum_files(str(directory)) == {key: 1.0}  # the linked counter file is not read
    compaction.compact(str(directory), 1)
    compaction.compact(str(directory), 9)
    assert sum_files(str(directory)) == {key: 1.0}
    assert (directory / "counter_9.db").is_symlink()  # not ours to fold
    multiproc.prepare_directory(str(directory), now=5.0)
    assert not (directory / multiproc.STARTED_MARKER).is_symlink()
    assert multiproc.read_started(str(directory)) == 5.0
    assert outside.read_text() == "precious"


READER = """
import json, os, sys
from django_prodkit.metrics.merge import sum_files
directory, stop = sys.argv[1], sys.argv[2]
expected = json.loads(sys.stdin.readline())
reads = wrong = 0
while not os.path.exists(stop) and reads < 100000:
    totals = sum_files(directory)
    reads += 1
    if any(abs(totals.get(key, 0.0) - value) > 1e-6 for key, value in expected.items()):
        wrong += 1
print(json.dumps({"reads": reads, "wrong": wrong}), flush=True)
"""


@pytest.mark.timeout(120)
def test_reads_racing_compactions_are_always_exact(tmp_path: Path) -> None:
    """A reader in another process reads while 300 workers are folded one by one: every read is exact."""
    import json

    directory = tmp_path / "metrics"
    directory.mkdir()
    fill(directory, range(1, 301), seed=5)
    expected = sum_files(str(directory))
    stop = tmp_path / "stop"
    command = [sys.executable, "-c", READER, str(directory), str(stop)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env) as reader:
        assert reader.stdin is not None
        assert reader.stdout is not None
        reader.stdin.write(json.dumps(expected) + "\n")
        reader.stdin.flush()
        time.sleep(0.3)
        for pid in range(1, 301):
            compaction.compact(str(directory), pid)
            time.sleep(0.002)  # let the reader in between compactions too
        stop.touch()
        result = json.loads(reader.stdout.readline())
        reader.wait(timeout=30)
    assert db_files(directory) == []
    assert result["reads"] > 10
    assert result["wrong"] == 0, result


@pytest.mark.timeout(60)
def test_a_killed_compactor_leaves_an_exact_directory(tmp_path: Path) -> None:
    """SIGKILL a process that compacts in a loop at a random moment, many times: every state it leaves is exact."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    fill(directory, range(1, 121), seed=6)
    expected = sum_files(str(directory))
    script = "import sys\nfrom django_prodkit.metrics.compaction import compact\n"
    script += "for pid in sys.argv[2:]:\n    compact(sys.argv[1], pid)\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = random.Random(1)
    remaining = list(range(1, 121))
    kills = 0
    while remaining and kills < 40:
        batch = [str(pid) for pid in remaining]
        with subprocess.Popen([sys.executable, "-c", script, str(directory), *batch], env=env) as compactor:
            time.sleep(rng.uniform(0.1, 0.4))
            compactor.send_signal(signal.SIGKILL)
            compactor.wait(timeout=10)
        kills += 1
        assert sum_files(str(directory)) == pytest.approx(expected)
        alive = {p.name.split("_")[1][:-3] for p in directory.glob("*.db")}
        remaining = [pid for pid in remaining if str(pid) in alive]
    for pid in remaining:
        compaction.compact(str(directory), pid)
    assert sum_files(str(directory)) == pytest.approx(expected)
    assert db_files(directory) == []
