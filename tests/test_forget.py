"""`breachminer forget`: a report taken out of the warehouse leaves every table, later ingests skip its bytes
and text until it is restored, and a target the warehouse does not hold deletes nothing."""

from __future__ import annotations

import shutil

import pytest
from conftest import SAMPLES
from typer.testing import CliRunner

import warehouse.db as wh
from breachminer.cli import app
from flows.ingest import run_ingest

pytestmark = pytest.mark.usefixtures("prefect_harness")

TABLES = ("reports", "report_sources", "sentences", "mentions", "sightings")


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def rows_of(db_file, report_id: str) -> dict[str, int]:
    with wh.connect(db_file, read_only=True) as con:
        return {table: con.execute(f"SELECT count(*) FROM {table} WHERE report_id = ?", [report_id]).fetchone()[0]
                for table in TABLES}


def test_forget_takes_a_report_out_and_later_ingests_skip_it_until_restored(tmp_path, db_file,
                                                                             monkeypatch) -> None:
    monkeypatch.setenv("BREACHMINER_CLASSIFIER", "0")
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("2026-cloud-bec.txt", "2023-linux-cryptojacking.txt"):
        shutil.copy(SAMPLES / name, folder / name)
    copy = tmp_path / "elsewhere" / "bec-copy.txt"  # the same text from another place
    copy.parent.mkdir()
    copy.write_text((SAMPLES / "2026-cloud-bec.txt").read_text() + "\n")
    run_ingest([str(folder)], str(db_file), workers=1)
    with wh.connect(db_file, read_only=True) as con:
        bec = con.execute("SELECT report_id FROM report_sources WHERE source LIKE '%bec.txt'").fetchone()[0]
        before = dict(con.execute("SELECT technique_id, n_reports FROM technique_frequency "
                                  "WHERE level = 'parent'").fetchall())
        in_bec = {row[0] for row in con.execute("SELECT technique_id FROM report_techniques "
                                                "WHERE level = 'parent' AND report_id = ?", [bec]).fetchall()}
    assert all(rows_of(db_file, bec).values())

    # a target the warehouse does not hold: an error, and nothing is taken out
    wrong = invoke("forget", str(folder / "2026-cloud-bec.txt"), "no-such-report", "--db", str(db_file))
    assert wrong.exit_code == 1 and "no report or source 'no-such-report'" in wrong.output
    assert all(rows_of(db_file, bec).values())

    gone = invoke("forget", str(folder / "2026-cloud-bec.txt"), "--reason", "not ours", "--db", str(db_file))
    assert gone.exit_code == 0, gone.output
    assert f"forgot {bec}" in gone.output and "1 reports remain" in gone.output
    assert not any(rows_of(db_file, bec).values())
    with wh.connect(db_file, read_only=True) as con:
        after = dict(con.execute("SELECT technique_id, n_reports FROM technique_frequency "
                                 "WHERE level = 'parent'").fetchall())
        assert con.execute("SELECT reason FROM forgotten").fetchall() == [("not ours",)]
    expected = {technique: n - (technique in in_bec) for technique, n in before.items()}
    assert in_bec and after == {technique: n for technique, n in expected.items() if n}  # counted without it

    # the same bytes, and the same text from other bytes, are skipped; the rest is unchanged
    again = run_ingest([str(folder), str(copy)], str(db_file), workers=1)
    assert (again["new"], again["unchanged"], again["forgotten"]) == (0, 1, 2)
    assert not any(rows_of(db_file, bec).values())
    with wh.connect(db_file, read_only=True) as con:
        assert con.execute("SELECT n_forgotten FROM runs WHERE run_id = ?", [again["run_id"]]).fetchone() == (2,)
    listed = invoke("forget", "--list", "--db", str(db_file))
    assert bec in listed.output and "not ours" in listed.output

    restored = invoke("forget", "--restore", bec, "--db", str(db_file))
    assert restored.exit_code == 0 and f"restored {bec}" in restored.output
    assert invoke("forget", "--restore", bec, "--db", str(db_file)).exit_code == 1  # not forgotten any more
    back = run_ingest([str(folder)], str(db_file), workers=1)
    assert (back["new"], back["forgotten"]) == (1, 0)
    assert all(rows_of(db_file, bec).values())
