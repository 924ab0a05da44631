"""`python -m course cluster`: what it says when Redis or PostgreSQL is missing (no services)."""

from __future__ import annotations

import pytest

from course import cluster
from course.__main__ import main


def test_missing_redis_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster.shutil, "which", lambda name: None)
    with pytest.raises(cluster.ClusterError, match=r"apt-get install redis-server"):
        cluster.start(tmp_path / "c", postgres_url="postgresql://a:b@127.0.0.1:1/postgres")
    assert not (tmp_path / "c").exists(), "nothing is started or written before the checks pass"


def test_missing_postgres_url_says_which_to_pass(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(cluster.POSTGRES_ENV, raising=False)
    monkeypatch.setenv(cluster.HOME_ENV, str(tmp_path / "c"))
    monkeypatch.setattr(cluster.shutil, "which", lambda name: "/usr/bin/redis-server")
    assert main(["cluster", "start"]) == 1
    err = capsys.readouterr().err
    assert "--postgres-url postgresql://USER:PASSWORD@" in err and "COURSE_POSTGRES_URL" in err
    assert "cannot use SQLite" in err and "apt-get install postgresql" in err


@pytest.mark.parametrize("url, says", [
    ("mysql://grader:secret@127.0.0.1:3306/db", "is not a PostgreSQL URL"),
    ("postgresql://grader:secret@127.0.0.1:1/postgres", "Cannot connect to PostgreSQL at "
     "postgresql://grader:***@127.0.0.1:1/postgres"),
])
def test_bad_postgres_url_is_named_without_its_password(tmp_path, monkeypatch, url, says):
    monkeypatch.setattr(cluster.shutil, "which", lambda name: "/usr/bin/redis-server")
    with pytest.raises(cluster.ClusterError) as raised:
        cluster.start(tmp_path / "c", postgres_url=url)
    assert says in str(raised.value) and "secret" not in str(raised.value)
    assert not list(cluster.processes(tmp_path / "c"))


def test_stop_without_a_cluster_says_so(tmp_path, capsys):
    cluster.stop(tmp_path / "none")
    assert "No cluster recorded in" in capsys.readouterr().out
