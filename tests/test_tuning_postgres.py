"""Two worker processes share one Optuna study in a real PostgreSQL server (Optuna's distributed mode).

The fixture starts a throw-away PostgreSQL server on 127.0.0.1 (``initdb --auth=trust`` into a temporary
folder, ``pg_ctl start``), creates a database, and stops the server afterwards. The test is skipped only
when no server can be started: the server binaries are missing (Debian: ``apt-get install postgresql``,
which puts them in ``/usr/lib/postgresql/<version>/bin``) or the server fails to start.
"""

import glob
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna", reason='tuning needs Optuna: pip install "sb3-trading[tune]"')
psycopg2 = pytest.importorskip("psycopg2", reason='a PostgreSQL storage needs psycopg2: pip install "sb3-trading[postgres]"')

from sb3_trading.tuning.study import resolve_storage_url  # noqa: E402

ENV = "sb3_trading/MultiAsset-v0"
DB_USER, DB_NAME = "sb3_trading", "optuna_test"
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``initdb`` and ``pg_ctl``, else the ones on ``PATH``."""

    def version(pg_ctl: str) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", Path(pg_ctl).parts[-3]))

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=version, reverse=True)
    for pg_ctl in candidates:
        if (Path(pg_ctl).parent / "initdb").exists():
            return Path(pg_ctl).parent
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """``postgresql://sb3_trading@127.0.0.1:<port>/optuna_test`` of a server that lives for this module."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin or on PATH")
    # initdb refuses to run as root: run the server as the `postgres` system user then
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run the PostgreSQL server as")
        as_user = ["runuser", "-u", "postgres", "--"] if shutil.which("runuser") else []
    base = Path(tempfile.mkdtemp(prefix="sb3_trading_pg_"))  # not under pytest's root-only tmp folders
    data_dir, socket_dir, log = base / "data", base / "socket", base / "server.log"
    socket_dir.mkdir()
    if owner is not None:
        for path in (base, socket_dir):
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def run(*command: str) -> subprocess.CompletedProcess:
        if owner is not None and not as_user:  # no runuser: su -c with a quoted command line
            return subprocess.run(["su", "postgres", "-c", shlex.join(command)], capture_output=True, text=True, timeout=120)
        return subprocess.run([*as_user, *command], capture_output=True, text=True, timeout=120)

    port = free_port()
    initdb = run(str(bin_dir / "initdb"), "-D", str(data_dir), "--auth=trust", f"--username={DB_USER}", "--no-sync", "-EUTF8")
    if initdb.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"initdb failed: {initdb.stderr[-1000:]}")
    options = f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
    start = run(str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-o", options, "-l", str(log), "-w", "-t", "60", "start")
    if start.returncode != 0:
        tail = log.read_text()[-1000:] if log.exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {start.stderr[-1000:]} {tail}")
    try:
        connection = psycopg2.connect(host="127.0.0.1", port=port, user=DB_USER, dbname="postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {DB_NAME}")
        connection.close()
        yield f"postgresql://{DB_USER}@127.0.0.1:{port}/{DB_NAME}"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


# each worker waits for the other (a file barrier) so both start trials together
WORKER = textwrap.dedent(
    """
    import argparse, pathlib, sys, time
    from sb3_trading.tuning.commands import add_tune_arguments, tune_from_args
    barrier, me, other, args = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
    (barrier / me).touch()
    deadline = time.monotonic() + 120
    while not (barrier / other).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    tune_from_args(add_tune_arguments(argparse.ArgumentParser()).parse_args(args + ["--worker-id", me]))
    """
)
N_TRIALS = 4


@pytest.mark.slow  # ~13 s: starts a real PostgreSQL server and two worker processes
def test_two_workers_share_one_postgresql_study(postgres_url, tmp_path):
    args = [
        "--env", ENV, "--algo", "ppo", "--n-trials", str(N_TRIALS), "--storage", postgres_url, "--study-name", "shared",
        "--timesteps", "512", "--eval-freq", "128", "--n-envs", "2", "--device", "cpu", "--heartbeat-interval", "1",
        "--grace-period", "30", "--choices", "n_steps=[64]", "batch_size=[64]", "net_arch=['tiny']", "n_epochs=[1]",
    ]  # fmt: skip
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    workers = {
        name: subprocess.Popen(
            [sys.executable, "-c", WORKER, str(barrier), name, other, *args, "--output-dir", str(tmp_path / name)],
            env=SUBPROCESS_ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, other in (("worker0", "worker1"), ("worker1", "worker0"))
    }
    outputs = {name: worker.communicate(timeout=300) for name, worker in workers.items()}
    for name, worker in workers.items():
        assert worker.returncode == 0, f"{name}: {outputs[name][1][-3000:]}"

    # the workers got the driverless URL (as a user types it); plain Optuna needs the driver named with SQLAlchemy 2.1
    study = optuna.load_study(study_name="shared", storage=resolve_storage_url(postgres_url))
    trials = study.trials
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    # no trial lost: numbers 0..n-1, every one finished; concurrent workers may overshoot by one trial each
    assert [t.number for t in trials] == list(range(len(trials)))
    assert all(t.state in finished for t in trials), [t.state for t in trials]
    assert N_TRIALS <= len(trials) <= N_TRIALS + 1
    assert {t.user_attrs["worker_id"] for t in trials} == {"worker0", "worker1"}
    # the two workers sampled different random start-up points (the sampler is seeded per trial number)
    assert len({tuple(sorted(t.params.items())) for t in trials}) == len(trials)
    for name in workers:
        assert (tmp_path / name / "best_ppo.yml").is_file()
