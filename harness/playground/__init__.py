"""`harness playground`: a page where both engines learn a 2-D problem side by side.

`serve(host, port)` runs the page and its API (harness.playground.app); each tab is a session
(harness.playground.session) whose worker thread steps both engines in lockstep
(harness.playground.lockstep); the page's settings are an experiment file
(harness.playground.settings), validated as every experiment file is, and saved to MLflow by
`harness bench` itself (harness.playground.saving).
"""

from harness.playground.app import create_app, serve

__all__ = ["create_app", "serve"]
