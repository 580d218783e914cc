"""A store's URI is shown the same way everywhere: its password and secret query values as ***,
whatever the scheme (bench, report, ui and evaluate alike, and in MLflow's own words they quote)."""

import pytest

from harness.tracking import shown_uri
from tests.cli.test_bad_input import assert_one_clear_line, run_cli
from tests.cli.test_cli import ROOT

SECRET = "hunter2pw"
URIS = [f"mysql://u:{SECRET}@127.0.0.1:9/db", f"databricks://u:{SECRET}@host", f"http://u:{SECRET}@127.0.0.1:9",
        f"https://u:{SECRET}@127.0.0.1:9/?token={SECRET}x", f"postgresql+psycopg://u:{SECRET}@127.0.0.1:9/db?connect_timeout=1"]
COMMANDS = [["bench", ROOT / "experiments" / "xor.toml"], ["report"], ["ui"], ["evaluate", "--run", "abc"]]


@pytest.mark.parametrize("uri", URIS, ids=[u.split(":")[0] for u in URIS])
@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_no_command_prints_a_stores_password(command, uri, capsys, tmp_path, monkeypatch):
    if uri.startswith("postgresql"):
        pytest.importorskip("psycopg")
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(capsys, *command, "--tracking-uri", uri)
    assert_one_clear_line(code, err, r"u:\*\*\*@")
    assert SECRET not in err


def test_shown_uri_masks_every_form():
    assert shown_uri("mysql+pymysql://me:p%40ss@db:3306/x") == "mysql+pymysql://me:***@db:3306/x"
    assert shown_uri("https://tok:x-oauth@github.com/a?token=abc&n=1") == "https://tok:***@github.com/a?token=***&n=1"
    assert shown_uri("sqlite:///my store.db?timeout=60") == "sqlite:///my store.db?timeout=60"
    assert shown_uri("said: databricks://u:pw123@host, or pw123@host", "databricks://u:pw123@host") == \
        "said: databricks://u:***@host, or ***@host"
