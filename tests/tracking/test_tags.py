"""The run tags read once per process are handed out as copies: a caller that adds to them
(the bench adds its own) cannot change what the next run of the process is tagged with."""

from harness.tracking import environment_tags


def test_environment_tags_are_a_fresh_copy_each_call():
    first = environment_tags()
    assert "version.mlflow" in first and any(k.startswith("blas.") or k.startswith("cpu") for k in first)
    first["version.mlflow"] = "changed by a caller"
    first["extra"] = "added by a caller"
    again = environment_tags()
    assert again["version.mlflow"] != "changed by a caller"
    assert "extra" not in again
