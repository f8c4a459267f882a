"""Writer processes for the atomicity tests (run as ``python tests/io/_writer.py MODE ...``).

Modes:
  loop PATH            save value A, then B, A, ... to PATH until stdin closes; prints "ready"
                       after the first save.
  count PATH WHICH N   save value WHICH (a or b) N times; counts ArtifactErrors; any other
                       exception is a failure (exit 1).
  kill PATH TRIALS SEED WARM  per trial (on a line "go a" or "go b" from stdin): fork a child that
                       saves that value and the other in turn, SIGKILL it after a random delay, print "killed"; the parent
                       test checks the path in between. WARM: a scratch path saved first.
  fork PATH            save, fork, and check the child can save and load (prints "child 0").
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time

import numpy as np

import mml


def values() -> tuple[mml.FeatureSet, mml.FeatureSet]:
    """Two values whose tables and splits both differ, so a mix of them equals neither."""
    out = []
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        fs = mml.FeatureSet.from_dict(
            {"x": rng.random((8_000, 8), dtype=np.float32), "y": rng.random(8_000)},
            features="x",
            targets="y",
            label="race",
            key=mml.random.key(seed),
        )
        out.append(fs.split(mml.RandomSplitter(ratios={"train": 0.5, "val": 0.5}, seed=seed)))
    return out[0], out[1]


def _loop_forever(path: str, a: mml.FeatureSet, b: mml.FeatureSet) -> None:
    i = 0
    while True:
        mml.save((a, b)[i % 2], path)
        i += 1


def main(argv: list[str]) -> int:
    mode, path = argv[0], argv[1]
    a, b = values()
    if mode == "loop":
        import threading

        done = threading.Event()
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
        i = 0
        while not done.is_set():
            mml.save((a, b)[i % 2], path)
            if i == 0:
                print("ready", flush=True)
            i += 1
        print(f"saves {i}", flush=True)
        return 0
    if mode == "count":
        value = a if argv[2] == "a" else b
        errors = 0
        for _ in range(int(argv[3])):
            try:
                mml.save(value, path)
            except mml.ArtifactError as exc:
                errors += 1
                print(f"ArtifactError: {exc}", file=sys.stderr, flush=True)
        print(f"artifact_errors {errors}", flush=True)
        return 0
    if mode == "kill":
        # Warm up (imports, hash threads) so the children's saves start at once; this also
        # checks that a process forked after saving can save (no thread pool lost in the fork).
        mml.save(a, argv[4])
        rng = random.Random(int(argv[3]))
        for _ in range(int(argv[2])):
            command = sys.stdin.readline().split()
            if len(command) != 2 or command[0] != "go":
                return 1
            first, second = (a, b) if command[1] == "a" else (b, a)
            pid = os.fork()
            if pid == 0:  # the child: save first, second, first, ... until killed
                try:
                    _loop_forever(path, first, second)
                finally:
                    os._exit(1)
            time.sleep(rng.uniform(0.002, 0.2))
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            print("killed", flush=True)
        return 0
    if mode == "fork":  # save (hash threads started), then fork: the child must save and load too
        mml.save(a, path)
        pid = os.fork()
        if pid == 0:
            try:
                mml.save(b, path)
                os._exit(0 if mml.load(path) == b else 3)
            finally:
                os._exit(4)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                print(f"child {os.waitstatus_to_exitcode(status)}", flush=True)
                return 0
            time.sleep(0.01)
        os.kill(pid, signal.SIGKILL)
        print("child hung", flush=True)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
