"""Compaction: the files of dead writers folded into one store, exactly, whatever a reader, a kill or pid reuse does."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.mmap_dict import mmap_key

from django_prodkit.metrics import compaction, merge, multiproc, writers
from django_prodkit.metrics.files import read_values
from django_prodkit.metrics.merge import merge_directory, sum_files
from tests.test_metrics_store import (
    DEAD_PID_BASE,
    as_samples,
    fake_worker,
    worker_path,
    write_worker_file,
    writer_name,
)
from tests.tools import Sleepers

ROOT = Path(__file__).resolve().parent.parent
KEY = mmap_key("prodkit_http_requests", "prodkit_http_requests_total", ["s"], ["200"], "h")
OTHER = mmap_key("other_total", "other_total", [], [], "not ours")


def our_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("prodkit-*.mmap"))


def fill(directory: Path, pids: list[int] | list[str], seed: int = 3) -> None:
    rng = random.Random(seed)
    for pid in pids:
        fake_worker(directory, pid, rng)


def test_a_writer_is_its_pid_and_start_time(sleepers: Sleepers) -> None:
    me = writers.current_writer()
    assert me.pid == os.getpid()
    assert writers.is_alive(me)
    assert writers.Writer.parse(me.name) == me
    assert writers.Writer.parse("12-x-3") is None
    assert writers.Writer.parse("12-3") is None
    assert writers.Writer.parse("counter") is None
    # The same pid with another start time is a dead predecessor: the pid was reused.
    assert not writers.is_alive(me._replace(start=str(int(me.start) + 1)))
    assert not writers.is_alive(me._replace(pid=DEAD_PID_BASE + 1))
    # A writer in another pid namespace (another container sharing the directory) is never judged from here.
    assert writers.is_alive(me._replace(pid=DEAD_PID_BASE + 1, namespace=me.namespace + "1"))
    # A zombie (exited, not reaped yet) can no longer write.
    (name,) = sleepers.start(1)
    zombie = writers.Writer.parse(name)
    assert zombie is not None
    assert writers.is_alive(zombie)
    os.kill(zombie.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while writers.is_alive(zombie) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not writers.is_alive(zombie)
    assert Path(f"/proc/{zombie.pid}").exists()  # still there, as a zombie


def test_folding_keeps_every_value_deletes_no_live_file_and_leaves_other_libraries_alone(
    tmp_path: Path, sleepers: Sleepers
) -> None:
    live = sleepers.start(3)
    fill(tmp_path, [1, 2, 3, 4, 5])
    fill(tmp_path, live, seed=4)
    # Another library's counter and live gauge in the same directory, as prometheus_client writes them.
    write_other = {"counter_77.db": {OTHER: 25.0}, "gauge_livesum_77.db": {OTHER: 3.0}}
    for name, entries in write_other.items():
        from prometheus_client.mmap_dict import MmapedDict

        file = MmapedDict(str(tmp_path / name))
        for key, value in entries.items():
            file.write_value(key, value, 0.0)
        file.close()
    others = {name: (tmp_path / name).read_bytes() for name in write_other}
    before = as_samples(merge_directory(str(tmp_path)))  # the read folds the five dead writers
    assert our_files(tmp_path) == sorted(
        worker_path(tmp_path, k, w).name for k in ("counter", "histogram") for w in live
    )
    assert compaction.compact(str(tmp_path)) == 0  # nothing left to fold
    assert as_samples(merge_directory(str(tmp_path))) == before
    # The reader's cache of file layouts forgets the folded files: it stays as small as the directory.
    assert sorted(Path(path).name for path in merge._indexes if path.startswith(str(tmp_path))) == our_files(tmp_path)
    stored = compaction.read_compacted(str(tmp_path))
    assert stored.folding == frozenset()
    assert OTHER not in stored.values.get("counter", {})  # other libraries' families are never folded
    for name in live:
        sleepers.kill(name)
    assert compaction.compact(str(tmp_path)) == 3
    assert our_files(tmp_path) == []
    assert as_samples(merge_directory(str(tmp_path))) == before
    assert {name: (tmp_path / name).read_bytes() for name in write_other} == others


def test_a_reused_pid_is_another_writer(tmp_path: Path, sleepers: Sleepers) -> None:
    (live,) = sleepers.start(1)
    pid, start, namespace = live.split("-")
    predecessor = f"{pid}-{int(start) - 1}-{namespace}"  # the same pid, started earlier: it has exited
    write_worker_file(tmp_path, "counter", predecessor, {KEY: 3.0})
    write_worker_file(tmp_path, "counter", live, {KEY: 2.0})
    assert compaction.compact(str(tmp_path)) == 1
    assert our_files(tmp_path) == [worker_path(tmp_path, "counter", live).name]
    assert sum_files(str(tmp_path))[KEY] == 5.0


def test_the_compacted_cache_is_not_fooled_by_a_reused_inode(tmp_path: Path) -> None:
    """Same inode, same size, same mtime, other content: the store id and generation tell them apart."""
    directory = str(tmp_path)
    write_worker_file(tmp_path, "counter", 1, {KEY: 1.0})
    compaction.compact(directory)
    path = tmp_path / compaction.COMPACTED_FILE
    first = path.read_text()
    assert sum_files(directory)[KEY] == 1.0
    status = path.stat()
    store, generation = compaction.read_version(directory)
    # The next version, written over the same inode with the same length and the old timestamps.
    header, body = first.split("\n", 1)
    assert header.endswith(f" {store} {generation} -")
    second = f"{header[: -len(f'{generation} -')]}{generation + 2} -\n{body.replace('1.0', '3.0')}"
    assert len(second) == len(first)
    with path.open("r+") as handle:
        handle.write(second)
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (status.st_ino, status.st_size, status.st_mtime_ns)
    assert compaction.read_version(directory) == (store, generation + 2)
    assert sum_files(directory)[KEY] == 3.0


def test_every_state_a_killed_folder_can_leave_reads_exactly(tmp_path: Path, sleepers: Sleepers) -> None:
    """The hand-over's steps, stopped after each one (what SIGKILL of the folder leaves), and the recovery."""
    live = sleepers.start(2)
    fill(tmp_path, live)
    directory = str(tmp_path)
    expected = sum_files(directory)
    dead = {kind: read_values(str(worker_path(tmp_path, kind, live[1]))) for kind in ("counter", "histogram")}
    sleepers.kill(live[1])
    # Step 1 done: the totals hold the writer and name it in ``folding``; its files are still there.
    compaction._write(directory, compaction.Compacted("s", 1, frozenset({live[1]}), dead))
    assert sum_files(directory) == pytest.approx(expected)
    # Step 2 half done: one of its files is gone.
    worker_path(tmp_path, "counter", live[1]).unlink()
    assert sum_files(directory) == pytest.approx(expected)
    # A killed writer's temporary file is ignored by readers and removed by the next compaction.
    (tmp_path / f"{compaction.TEMPORARY_PREFIX}x").write_text("partial")
    assert sum_files(directory) == pytest.approx(expected)
    compaction.compact(directory)
    assert sum_files(directory) == pytest.approx(expected)
    assert our_files(tmp_path) == sorted(worker_path(tmp_path, k, live[0]).name for k in ("counter", "histogram"))
    assert compaction.read_compacted(directory).folding == frozenset()
    assert not list(tmp_path.glob(f"{compaction.TEMPORARY_PREFIX}*"))


def test_a_compacted_store_of_the_previous_format_is_carried_on(tmp_path: Path) -> None:
    (tmp_path / compaction.COMPACTED_FILE).write_text(
        "prodkit-compacted 1 4 -\n" + json.dumps({"counter": {KEY: 2.0, OTHER: 9.0}})
    )
    write_worker_file(tmp_path, "counter", 1, {KEY: 1.0})
    assert sum_files(str(tmp_path)) == {KEY: 3.0}
    assert compaction.read_version(str(tmp_path))[1] == 6


def test_files_being_born_read_as_empty(tmp_path: Path) -> None:
    write_worker_file(tmp_path, "counter", writers.current_writer().name, {KEY: 4.0})
    worker_path(tmp_path, "counter", 2).write_bytes(b"")  # created, not yet resized
    worker_path(tmp_path, "histogram", 3).write_bytes(b"\0" * 4096)  # resized, ``used`` not yet written
    worker_path(tmp_path, "counter", 4).write_bytes(b"\x10\0")  # shorter than the header
    assert sum_files(str(tmp_path)) == {KEY: 4.0}
    assert compaction.compact(str(tmp_path)) == 0
    assert sum_files(str(tmp_path)) == {KEY: 4.0}
    assert our_files(tmp_path) == [worker_path(tmp_path, "counter", writers.current_writer().name).name]


def test_nothing_follows_a_planted_link(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    outside = tmp_path / "victim"
    outside.write_text("precious")
    directory.mkdir()
    for name in (compaction.COMPACTED_FILE, multiproc.STARTED_MARKER, worker_path(directory, "counter", 9).name):
        (directory / name).symlink_to(outside)
    write_worker_file(directory, "counter", 1, {KEY: 1.0})
    # A planted compacted store is neither read nor written through (O_NOFOLLOW): the compaction refuses.
    with pytest.raises(OSError, match="symbolic links"):
        compaction.read_compacted(str(directory))
    with pytest.raises(OSError, match="symbolic links"):
        compaction.compact(str(directory))
    os.remove(directory / compaction.COMPACTED_FILE)
    assert sum_files(str(directory)) == {KEY: 1.0}  # the linked counter file is not read
    compaction.compact(str(directory))
    assert sum_files(str(directory)) == {KEY: 1.0}
    assert worker_path(directory, "counter", 9).is_symlink()  # not ours to fold
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
def test_reads_racing_compactions_are_always_exact(tmp_path: Path, sleepers: Sleepers) -> None:
    """A reader in another process reads (and folds) while 60 writers die one by one: every read is exact."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    live = sleepers.start(60)
    fill(directory, live, seed=5)
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
        for name in live:
            sleepers.kill(name)
            if random.random() < 0.5:
                compaction.compact(str(directory))  # else the reader notices first
            time.sleep(0.005)
        stop.touch()
        result = json.loads(reader.stdout.readline())
        reader.wait(timeout=30)
    compaction.compact(str(directory))
    assert our_files(directory) == []
    assert sum_files(str(directory)) == pytest.approx(expected)
    assert result["reads"] > 10
    assert result["wrong"] == 0, result


@pytest.mark.timeout(60)
def test_a_killed_folder_leaves_an_exact_directory(tmp_path: Path) -> None:
    """SIGKILL a process that folds at a random moment, many times: every state it leaves is exact."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    script = (
        "import sys\nfrom django_prodkit.metrics.compaction import compact\nwhile True:\n    compact(sys.argv[1])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = random.Random(1)
    expected: dict[str, float] = {}
    for round_number in range(25):
        pids = list(range(round_number * 8, round_number * 8 + 8))
        fill(directory, pids, seed=round_number)
        for pid in pids:
            for kind in ("counter", "histogram"):
                for key, value in read_values(str(worker_path(directory, kind, pid))).items():
                    expected[key] = expected.get(key, 0.0) + value
        with subprocess.Popen([sys.executable, "-c", script, str(directory)], env=env) as folder:
            time.sleep(rng.uniform(0.05, 0.3))
            folder.send_signal(signal.SIGKILL)
            folder.wait(timeout=10)
        assert sum_files(str(directory)) == pytest.approx(expected)
    compaction.compact(str(directory))
    assert sum_files(str(directory)) == pytest.approx(expected)
    assert our_files(directory) == []


def test_the_writer_names_in_fake_files_are_dead(tmp_path: Path) -> None:
    parsed: Any = writers.Writer.parse(writer_name(1))
    assert parsed is not None
    assert not writers.is_alive(parsed)
